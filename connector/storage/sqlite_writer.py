"""One writer at a time on a SQLite file, queued in the kernel instead of by SQLite's sleeps.

SQLite lets one connection write at a time. A connection that finds the write lock taken waits in
SQLite's busy handler, which sleeps 1, 2, 5, 10, 15 ... ms between tries: a write that would
wait 0.1 ms for another process's commit sleeps 1 ms or more, and under load (web workers storing
gate decisions and webhook receipts, a sync applying pages) those sleeps become most of a
request's time and its p99.

Here every write transaction first takes an exclusive `flock` on a file beside the database
(`<database>-writer.lock`), from the statement that starts it until its commit or rollback. A
waiter sleeps in the kernel and wakes the moment the holder lets go; by then SQLite's own lock is
free, so the busy handler is not reached. Readers take nothing (WAL lets them read beside the
writer). Statements that are not SELECTs (DML, DDL) take the lock; SQLite's busy timeout stays as
the fallback for writers that do not go through this connection class (the `sqlite3` shell).

The lock is held per connection (each has its own open file description), so threads and
processes queue alike.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3

_READS = ("SELECT", "PRAGMA", "EXPLAIN", "WITH")


class _Cursor(sqlite3.Cursor):
    def execute(self, sql, parameters=(), /):
        self.connection._before(sql)
        try:
            return super().execute(sql, parameters)
        finally:
            self.connection._after()

    def executemany(self, sql, seq_of_parameters, /):
        self.connection._before(sql)
        try:
            return super().executemany(sql, seq_of_parameters)
        finally:
            self.connection._after()


class WriterLockedConnection(sqlite3.Connection):
    """A `sqlite3` connection (pass as `factory=`) that holds the writer lock of `lock_path`
    through its write transactions. Subclasses set `lock_path` (see `connection_factory`)."""

    lock_path: str

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._locked = False

    def cursor(self, factory=_Cursor):
        return super().cursor(factory)

    def execute(self, sql, parameters=(), /):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters, /):
        return self.cursor().executemany(sql, seq_of_parameters)

    def commit(self):
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self._release()

    def close(self):
        try:
            super().close()
        finally:
            self._release()
            os.close(self._lock_fd)

    def _before(self, sql: str) -> None:
        if not self._locked and not sql.lstrip()[:7].upper().startswith(_READS):
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._locked = True

    def _after(self) -> None:
        # A statement outside a transaction (DDL, or DML that failed to start one) is done.
        if self._locked and not self.in_transaction:
            self._release()

    def _release(self) -> None:
        if self._locked:
            self._locked = False
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)


def connection_factory(database: str) -> type[WriterLockedConnection] | None:
    """The connection class for a SQLite database file; None for an in-memory database."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    lock_path = os.path.abspath(database) + "-writer.lock"
    return type("WriterLockedConnection", (WriterLockedConnection,), {"lock_path": lock_path})
