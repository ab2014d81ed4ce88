"""SQLite writers queue on the writer lock instead of failing or sleeping in the busy handler."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from connector.storage.sqlite_writer import connection_factory


@pytest.fixture
def connect(tmp_path):
    path = str(tmp_path / "coi.db")
    opened = []

    def connect():
        # timeout=0: without the writer lock, a second writer fails at once ("database is locked").
        conn = sqlite3.connect(
            path, factory=connection_factory(path), timeout=0, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        opened.append(conn)
        return conn

    first = connect()
    first.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)")
    yield connect
    for conn in opened:
        conn.close()


def _in_thread(work):
    outcome = {}

    def run():
        try:
            outcome["value"] = work()
        except Exception as err:  # the test reads it
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _insert_and_commit(conn, value):
    conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
    conn.commit()
    return value


def test_a_second_writer_waits_for_the_first_to_commit(connect):
    first, second = connect(), connect()
    first.execute("INSERT INTO t (v) VALUES (1)")
    thread, outcome = _in_thread(lambda: _insert_and_commit(second, 2))
    thread.join(0.3)
    waited = thread.is_alive()
    first.commit()
    thread.join(5)
    assert (waited, outcome, sorted(v for (v,) in first.execute("SELECT v FROM t"))) == (
        True,
        {"value": 2},
        [1, 2],
    )


def test_a_reader_does_not_wait_for_a_writer(connect):
    writer, reader = connect(), connect()
    writer.execute("INSERT INTO t (v) VALUES (1)")
    thread, outcome = _in_thread(lambda: reader.execute("SELECT count(*) FROM t").fetchone())
    thread.join(5)
    writer.rollback()
    assert outcome == {"value": (0,)}


def test_a_failed_write_lets_go_once_rolled_back(connect):
    first, second = connect(), connect()
    _insert_and_commit(first, 1)
    with pytest.raises(sqlite3.IntegrityError):
        first.execute("INSERT INTO t (v) VALUES (1)")
    first.rollback()
    thread, outcome = _in_thread(lambda: _insert_and_commit(second, 2))
    thread.join(5)
    assert outcome == {"value": 2}


def test_a_statement_outside_a_transaction_lets_go_when_done(connect):
    first, second = connect(), connect()
    first.execute("CREATE TABLE u (v INTEGER)")  # DDL: autocommit, no transaction left open
    thread, outcome = _in_thread(lambda: _insert_and_commit(second, 3))
    thread.join(5)
    assert outcome == {"value": 3}


def test_an_in_memory_database_has_no_writer_lock():
    assert connection_factory(":memory:") is None
