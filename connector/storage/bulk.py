"""Bulk inserts of plain rows: COPY on PostgreSQL, an executemany `INSERT` elsewhere.

The hot batches (stored gate decisions and their audit rows; a recompute's result, history and
outbox rows; a sync page's bindings, trades and regions) insert many rows that nothing reads
back in the same statement. On PostgreSQL an executemany is one Bind/Execute round of the
extended protocol per row, each row's parameters adapted in Python by the driver; `COPY ...
FROM STDIN` streams the rows in one command, which costs the driver and the server a fraction
of that. On SQLite the rows go to the driver's own `executemany` as tuples, each value passed
through its column type's bind processor once: SQLAlchemy's executemany of an `insert()` built
the same values but spent as long again per row on its own bookkeeping (a quarter of a sync
page's time). The rows stored are the same every way:
the columns a row leaves out get the model's Python-side defaults (as `insert()` would give
them) or, failing that, the server's; values are converted as SQLAlchemy converts them (JSON
with `jsontext`, `None` as JSON `null` unless the column says `none_as_null`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Connection, Table
from sqlalchemy.orm import Session

from connector import jsontext
from connector.storage import snapshots
from connector.storage.db import driver_error


def insert_rows(target: Session | Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts of column values, all with the same keys) into `table` in the
    transaction of `target`. Through a `Session`, the write counts for the snapshots as one
    through `Session.execute` does."""
    if not rows:
        return
    if isinstance(target, Session):
        snapshots.note_write(target, table.name)
        connection = target.connection()
    else:
        connection = target
    given = list(rows[0])
    defaults = {
        column.name: column.default
        for column in table.columns
        if column.name not in given and column.default is not None
    }
    names = [*given, *defaults]
    quote = connection.dialect.identifier_preparer.quote
    columns = ", ".join(map(quote, names))
    get = _picker(given)
    if defaults:

        def pick(row: dict[str, Any]) -> tuple[Any, ...]:
            return (*get(row), *(_default(default) for default in defaults.values()))

    else:
        pick = get

    if connection.dialect.name != "postgresql":  # SQLite, the other database we run on
        writers = [_bind(table.c[name].type, connection.dialect) for name in names]
        marks = ", ".join("?" * len(names))
        connection.exec_driver_sql(
            f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({marks})",
            list(_params(rows, pick, writers)),
        )
        return
    statement = f"COPY {quote(table.name)} ({columns}) FROM STDIN"
    dbapi_error = connection.dialect.loaded_dbapi.Error
    cursor = connection.connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            writers = [_writer(table.c[name].type) for name in names]
            for row in _params(rows, pick, writers):
                copy.write_row(row)
    except dbapi_error as err:
        raise driver_error(statement, err, connection.dialect) from err
    finally:
        cursor.close()


def insert_returning_ids(
    session: Session, table: Table, rows: Sequence[dict[str, Any]]
) -> list[int]:
    """`insert_rows` for a table with an integer `id` the database assigns; returns the new
    ids in the order of `rows`. (SQLAlchemy's `INSERT ... RETURNING` sorted back into the
    order of the rows inserted them one statement each on SQLite, which does not promise
    RETURNING in VALUES order, and on PostgreSQL as statements of thousands of parameters that
    the driver spent longer parsing than the server running.)

    On PostgreSQL the ids are drawn from the column's sequence first and the rows go in by COPY
    with them. On SQLite the rows go in by one executemany and the ids are worked out: SQLite
    gives a row without an id the largest id in the table plus one, and from the executemany's
    first row until the commit no other connection can write, so the rows got consecutive ids
    ending at this connection's `last_insert_rowid()`."""
    if not rows:
        return []
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        ids = list(
            connection.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                (table.name, len(rows)),
            ).scalars()
        )
        insert_rows(session, table, [{**row, "id": i} for row, i in zip(rows, ids, strict=True)])
        return ids
    insert_rows(session, table, rows)
    last = connection.exec_driver_sql("SELECT last_insert_rowid()").scalar_one()
    return list(range(last - len(rows) + 1, last + 1))


def update_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Update rows of `table` by primary key: each of `rows` holds the row's `id` and the
    values it gets. One `UPDATE` per set of columns given, sent by the driver's executemany
    with values converted as SQLAlchemy converts them: the ORM's bulk update by primary key sent
    the same statements and spent as long again per row on its own bookkeeping. Like
    `insert_rows` through a session, the write counts for the snapshots; objects of the session
    are not refreshed (the caller does that where it keeps any)."""
    if not rows:
        return
    snapshots.note_write(session, table.name)
    connection = session.connection()
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_columns[tuple(name for name in row if name != "id")].append(row)
    by_columns.pop((), None)  # rows that change nothing
    for names, group in by_columns.items():
        writers = [*(_bind(table.c[name].type, dialect) for name in names), None]
        assignments = ", ".join(f"{quote(name)} = {mark}" for name in names)
        connection.exec_driver_sql(
            f"UPDATE {quote(table.name)} SET {assignments} WHERE id = {mark}",
            list(_params(group, _picker([*names, "id"]), writers)),
        )


def _picker(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """The values of these keys of a row, as a tuple."""
    if len(names) == 1:
        (name,) = names
        return lambda row: (row[name],)
    return itemgetter(*names)


def _params(
    rows: Iterable[dict[str, Any]],
    pick: Callable[[dict[str, Any]], tuple[Any, ...]],
    writers: list[Callable[[Any], Any] | None],
) -> Iterator[tuple[Any, ...]]:
    """Each row's values as `pick` takes them, each converted by its writer (None: as it is)."""
    convert = [(i, write) for i, write in enumerate(writers) if write is not None]
    if not convert:
        yield from map(pick, rows)
        return
    for row in rows:
        out = list(pick(row))
        for i, write in convert:
            out[i] = write(out[i])
        yield tuple(out)


def _writer(column_type) -> Callable[[Any], Any] | None:
    """COPY's conversion of a value of this type (None: as it is)."""
    if isinstance(column_type, JSON):
        if column_type.none_as_null:
            return lambda value: None if value is None else jsontext.dumps(value)
        return jsontext.dumps
    return None


def _bind(column_type, dialect) -> Callable[[Any], Any] | None:
    """SQLAlchemy's conversion of a value of this type for `dialect` (None: as it is). Dates
    and times repeat within a batch (a recompute's `computed_at`, a sync's `last_synced_at`):
    each is converted once."""
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    if process is None or isinstance(column_type, JSON):
        return process
    seen: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            converted = seen[value] = process(value)
            return converted

    return convert


def _default(default) -> Any:
    # A callable default is wrapped by SQLAlchemy to take the execution context; the defaults
    # of these tables (`dict`, `list`) do not look at it.
    return default.arg(None) if default.is_callable else default.arg
