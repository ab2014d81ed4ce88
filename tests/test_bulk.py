"""`insert_rows` (COPY on PostgreSQL, the driver's executemany on SQLite) stores exactly what
`insert()` stores, `insert_returning_ids` gives each row its own id, and `update_rows` stores what
the ORM's bulk update stores, on both databases; and a refused row's values stay out of the
error."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector.storage import models as m
from connector.storage.bulk import insert_returning_ids, insert_rows, update_rows
from connector.storage.snapshots import Snapshots

# What a text column can hold on both databases (PostgreSQL refuses NUL; lone surrogates cannot
# be encoded): tabs, newlines, backslashes and quotes are what COPY's text format must escape.
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
WHEN = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def _stored(conn, table, ids):
    columns = [c for c in table.columns if c.name != "id"]
    rows = conn.execute(select(*columns).where(table.c.id.in_(ids)).order_by(table.c.id)).all()
    return [tuple(row) for row in rows]


def _both_ways(engine, table, row: dict, marker_column: str):
    """Insert `row` once with `insert()` and once with `insert_rows`, in a transaction that is
    rolled back; returns both stored rows (all columns but the id)."""
    with engine.connect() as conn, conn.begin() as transaction:
        conn.execute(insert(table), [{**row, marker_column: "core"}])
        insert_rows(conn, table, [{**row, marker_column: "bulk"}])
        ids = conn.scalars(
            select(table.c.id).where(table.c[marker_column].in_(["core", "bulk"]))
        ).all()
        core, bulk = _stored(conn, table, ids)
        transaction.rollback()
    marker = [c.name for c in table.columns if c.name != "id"].index(marker_column)
    return core[:marker] + core[marker + 1 :], bulk[:marker] + bulk[marker + 1 :]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actor=TEXT, entity_id=st.none() | TEXT, detail=JSON_VALUES, at=WHEN)
def test_an_audit_row_is_stored_alike_both_ways(engine, actor, entity_id, detail, at):
    row = {
        "actor": actor,
        "action": "test.bulk",
        "entity_id": entity_id,
        "detail": detail,
        "at": at,
    }
    core, bulk = _both_ways(engine, m.AuditEvent.__table__, row, "entity_type")
    assert bulk == core


def test_left_out_columns_get_the_same_defaults_as_insert(engine):
    # `detail` has a Python-side default (an empty dict); `at` is given.
    row = {"actor": "a", "action": "test.bulk", "entity_id": None, "at": datetime.now(UTC)}
    core, bulk = _both_ways(engine, m.AuditEvent.__table__, row, "entity_type")
    assert bulk == core


def test_none_in_a_json_column_is_stored_as_insert_stores_it(engine):
    row = {
        "event": "work-order",
        "delivery_id": "d-1",
        "status": "processing",
        "response_status": None,
        "response_body": None,
        "received_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    table = m.WebhookReceipt.__table__
    with engine.connect() as conn, conn.begin() as transaction:
        conn.execute(insert(table), [{**row, "connection": "core"}])
        insert_rows(conn, table, [{**row, "connection": "bulk"}])
        nulls = dict(
            conn.execute(
                select(table.c.connection, table.c.response_body.is_(None)).where(
                    table.c.connection.in_(["core", "bulk"])
                )
            ).all()
        )
        transaction.rollback()
    assert nulls["bulk"] == nulls["core"]


def test_a_refused_row_raises_sqlalchemys_integrity_error(engine):
    # Callers (a sync page's retry, the write-behind) tell a refused row from a database that is
    # away by SQLAlchemy's exception classes, on COPY as on INSERT.
    row = {
        "connection": "c",
        "event": "work-order",
        "delivery_id": "twice",
        "status": "processing",
        "received_at": datetime(2026, 1, 2, tzinfo=UTC),
    }
    table = m.WebhookReceipt.__table__
    with engine.connect() as conn, conn.begin() as transaction:
        with pytest.raises(IntegrityError):
            insert_rows(conn, table, [row, row])
        transaction.rollback()


def test_a_refused_rows_values_stay_out_of_the_error(engine):
    # Errors are logged; the values of a refused row (personal data, a token's hash) must not be.
    # (PostgreSQL's own message names the values of the key that clashed; the rest stay out.)
    row = {
        "connection": "c",
        "event": "work-order",
        "delivery_id": "twice",
        "status": "done",
        "response_body": {"vendor": "private-4711"},
        "received_at": datetime(2026, 1, 2, tzinfo=UTC),
    }
    table = m.WebhookReceipt.__table__
    messages = []
    for write in (
        lambda conn: insert_rows(conn, table, [row]),
        lambda c: c.execute(insert(table), [row]),
    ):
        with engine.connect() as conn, conn.begin() as transaction:
            insert_rows(conn, table, [row])
            with pytest.raises(IntegrityError) as refused:
                write(conn)
            messages.append(str(refused.value))
            transaction.rollback()
    assert not [message for message in messages if "private-4711" in message]


def test_a_bulk_write_through_a_session_is_seen_by_the_snapshots(app, sessions, engine):
    # The snapshots learn of writes from the session; rows that go in by COPY must count too,
    # or a worker would keep answering from a snapshot older than them.
    cache = Snapshots(60.0, engine)

    def connection_names():
        with engine.connect() as conn:
            return conn.scalars(select(m.Connection.name)).all()

    assert cache.get("names", ("connections",), connection_names) == []
    session = sessions()
    with session, session.begin():
        insert_rows(session, m.Connection.__table__, [{"name": "bulk", "kind": "csv"}])
    assert cache.get("names", ("connections",), connection_names) == ["bulk"]


VENDOR_CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "name": TEXT.filter(bool),
        "email": st.none() | TEXT,
        "active": st.booleans(),
        "status": st.none() | st.sampled_from(["compliant", "non_compliant"]),
        "score": st.none() | st.integers(0, 100),
        "expires_on": st.none() | st.dates(date(2000, 1, 1), date(2100, 1, 1)),
    },
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(VENDOR_CHANGES, min_size=1, max_size=4))
def test_updates_are_stored_as_the_orm_bulk_update_stores_them(engine, changes):
    # Rows that change different columns (or none) go in the same call, as a sync page's do.
    table = m.Vendor.__table__
    with Session(engine) as session, session.begin() as transaction:
        ids = session.scalars(
            insert(table).returning(table.c.id, sort_by_parameter_order=True),
            [{"name": "before"}] * (2 * len(changes)),
        ).all()
        orm_ids, bulk_ids = ids[: len(changes)], ids[len(changes) :]
        session.execute(
            update(m.Vendor), [{"id": i, **c} for i, c in zip(orm_ids, changes, strict=True)]
        )
        update_rows(
            session, table, [{"id": i, **c} for i, c in zip(bulk_ids, changes, strict=True)]
        )
        columns = [c for c in table.columns if c.name not in ("id", "created_at")]

        def stored(chosen):
            query = select(*columns).where(table.c.id.in_(chosen)).order_by(table.c.id)
            return [tuple(row) for row in session.execute(query)]

        orm, bulk = stored(orm_ids), stored(bulk_ids)
        transaction.rollback()
    assert bulk == orm


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=st.integers(0, 5), drop_last=st.booleans(), count=st.integers(1, 30))
def test_inserted_rows_get_back_their_own_ids_in_order(engine, before, drop_last, count):
    # Rows already there, and the newest of them deleted (its id freed), as in real use.
    table = m.Vendor.__table__
    with Session(engine) as session, session.begin() as transaction:
        earlier = insert_returning_ids(session, table, [{"name": "earlier"}] * before)
        if drop_last and earlier:
            session.execute(table.delete().where(table.c.id == earlier[-1]))
        names = [f"new {i}" for i in range(count)]
        ids = insert_returning_ids(session, table, [{"name": n} for n in names])
        stored = dict(
            session.execute(select(table.c.id, table.c.name).where(table.c.id.in_(ids))).all()
        )
        transaction.rollback()
    assert [stored.get(i) for i in ids] == names
