"""Engine and session factory, and schema migrations (Alembic) run from code."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Engine,
    Text,
    bindparam,
    create_engine,
    event,
    func,
    inspect,
    make_url,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from connector import jsontext
from connector.storage import (
    # Registers the session events that keep per-process snapshots honest about this process's
    # writes.
    snapshots,  # noqa: F401
    sqlite_writer,
)


def make_engine(url: str) -> Engine:
    """The connector's engine for `url`. Its errors leave out the statement's parameters: they
    end up in logs, and the values may be personal data or a token's hash."""
    if url.startswith("sqlite"):
        connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": 30}
        factory = sqlite_writer.connection_factory(make_url(url).database or "")
        if factory is not None:
            connect_args["factory"] = factory
        engine = create_engine(
            url, connect_args=connect_args, json_serializer=jsontext.dumps, hide_parameters=True
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        json_serializer=jsontext.dumps,
        hide_parameters=True,
    )


#: How the claim engine's connections show in `pg_stat_activity`.
CLAIM_APPLICATION_NAME = "coi-webhook-claims"


def driver_error(
    statement: str, err: Exception, dialect: Dialect, *, connection_invalidated: bool = False
) -> DBAPIError:
    """A driver's error from a statement sent past SQLAlchemy's execution (COPY, the webhook
    claim), as SQLAlchemy raises it: IntegrityError, OperationalError, ... (callers tell a
    refused row from a database that is away by those classes), its parameters left out."""
    return DBAPIError.instance(
        statement,
        None,
        err,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=connection_invalidated,
        dialect=dialect,
    )


def make_claim_engine(engine: Engine) -> Engine:
    """A PostgreSQL engine for claims: single statements that other processes must see at once
    but that need not wait for the disk (webhook delivery claims). Autocommit, so a claim is one
    round trip; no ping before use (a connection the server dropped fails once and is replaced:
    the caller tries again); `synchronous_commit` off for its sessions, so a commit does not wait
    for its WAL flush. Other sessions see the row at commit as ever, and WAL is flushed in order,
    so any later commit that waits (acting on the claim, the write-behind's batch) makes it
    durable too. What that gives up: a server crash in the moment before the claim reaches the
    disk (at most 3 x `wal_writer_delay`) forgets it (docs/webhooks.md)."""
    return create_engine(
        engine.url,
        isolation_level="AUTOCOMMIT",
        hide_parameters=True,
        pool_size=2,
        max_overflow=8,
        connect_args={
            "options": "-c synchronous_commit=off",
            "application_name": CLAIM_APPLICATION_NAME,
        },
    )


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class _InValues(ColumnElement[bool]):
    """`column IN (values)`, written for each database (see `in_values`). Both forms of the list
    are bound parameters of the element, so a cached statement takes each run's values."""

    inherit_cache = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("listed", InternalTraversal.dp_clauseelement),
        ("as_json", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column, values: list[Any]) -> None:
        self.column = column
        self.listed = bindparam(None, values, expanding=True, literal_execute=True)
        self.as_json = bindparam(None, callable_=lambda: jsontext.dumps(values), type_=Text())


@compiles(_InValues)
def _written_in(element: _InValues, compiler, **kw: Any) -> str:
    return compiler.process(element.column.in_(element.listed), **kw)


@compiles(_InValues, "sqlite")
def _json_each(element: _InValues, compiler, **kw: Any) -> str:
    listed = func.json_each(element.as_json).table_valued("value")
    return compiler.process(element.column.in_(select(listed.c.value)), **kw)


def in_values(column, values: Iterable[Any]):
    """`column IN (values)` for a batch's list of ids, names or keys (integers or strings).

    On PostgreSQL the values are written into the statement: bound, a batch's list makes the
    same statement every batch, which the driver prepares after a few runs, and the server's
    generic plan for it, blind to the values, may scan the table. On SQLite the list is one
    parameter, a JSON array read by `json_each` (the lookup still goes through the column's
    index): SQLAlchemy expands a bound list into a parameter per value, and writing or binding
    a page's thousands of values that way cost three times the query itself."""
    return _InValues(column, sorted(values))


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("connector.storage") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def upgrade_if_empty(engine: Engine) -> bool:
    """Create the schema on a database that has none; returns True when it did."""
    if inspect(engine).has_table("alembic_version"):
        return False
    upgrade(engine)
    return True
