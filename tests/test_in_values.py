"""`in_values` picks exactly the rows whose value is listed, on both databases, also when the
statement comes from SQLAlchemy's cache with other values; on PostgreSQL the list is written into
the statement (a bound list makes one prepared statement whose generic plan ignores the values),
on SQLite it is one parameter, a JSON array."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, insert, select

from connector.storage import models as m
from connector.storage.db import in_values

NAMES = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stored=st.lists(NAMES, min_size=1, max_size=8, unique=True), asked=st.sets(NAMES, max_size=8)
)
def test_the_rows_whose_value_is_listed_and_no_others(engine, stored, asked):
    t = m.Insurer.__table__
    with engine.connect() as conn:
        conn.execute(
            insert(t),
            [{"naic": f"{n:05d}", "name": s, "am_best": "A"} for n, s in enumerate(stored)],
        )
        found = conn.scalars(select(t.c.name).where(in_values(t.c.name, asked))).all()
        conn.rollback()
    assert sorted(found) == sorted(set(stored) & asked)


def test_postgresql_gets_the_values_written_in_and_sqlite_one_json_array(engine):
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    t = m.Insurer.__table__
    event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as conn:
            conn.execute(select(t.c.naic).where(in_values(t.c.name, ["Zeta Mutual", "Acme Re"])))
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = sent[-1]
    if engine.dialect.name == "postgresql":
        assert ("'Acme Re', 'Zeta Mutual'" in statement, parameters) == (True, {})
    else:
        assert ("json_each" in statement, tuple(parameters)) == (
            True,
            ('["Acme Re","Zeta Mutual"]',),
        )
