"""Bulk inserts of plain rows: COPY on PostgreSQL, an executemany `INSERT` elsewhere.

The hot batches (stored gate decisions and their audit rows; a recompute's result, history and
outbox rows; a sync page's bindings, trades and regions) insert many rows that nothing reads
back in the same statement. On PostgreSQL an executemany is one Bind/Execute round of the
extended protocol per row, each row's parameters adapted in Python by the driver; `COPY ...
FROM STDIN` streams the rows in one command, which costs the driver and the server a fraction
of that. The rows stored are the same either way:
the columns a row leaves out get the model's Python-side defaults (as `insert()` would give
them) or, failing that, the server's; JSON columns are written as SQLAlchemy's `JSON` writes
them, with `jsontext` (`None` as JSON `null` unless the column says `none_as_null`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Connection, Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from connector import jsontext
from connector.storage import snapshots


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
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), list(rows))
        return
    given = list(rows[0])
    defaults = {
        column.name: column.default
        for column in table.columns
        if column.name not in given and column.default is not None
    }
    names = [*given, *defaults]
    writers = [_writer(table.c[name].type) for name in names]
    quote = connection.dialect.identifier_preparer.quote
    statement = f"COPY {quote(table.name)} ({', '.join(map(quote, names))}) FROM STDIN"
    dbapi_error = connection.dialect.loaded_dbapi.Error
    cursor = connection.connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                values = [row[name] for name in given]
                values += [_default(default) for default in defaults.values()]
                copy.write_row([write(v) for write, v in zip(writers, values, strict=True)])
    except dbapi_error as err:
        # As SQLAlchemy would raise it (IntegrityError, OperationalError, ...): callers tell a
        # refused row from a database that is away by those classes.
        raise DBAPIError.instance(
            statement, None, err, dbapi_error, hide_parameters=True, dialect=connection.dialect
        ) from err
    finally:
        cursor.close()


def _writer(column_type):
    if isinstance(column_type, JSON):
        if column_type.none_as_null:
            return lambda value: None if value is None else jsontext.dumps(value)
        return jsontext.dumps
    return _as_is


def _as_is(value: Any) -> Any:
    return value


def _default(default) -> Any:
    # A callable default is wrapped by SQLAlchemy to take the execution context; the defaults
    # of these tables (`dict`, `list`) do not look at it.
    return default.arg(None) if default.is_callable else default.arg
