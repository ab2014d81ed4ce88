"""Process-local snapshots of what the hot paths read on every request and what changes rarely:
requirement sets, API tokens, vendors' stored results, the gate's alternatives, webhook settings.

Each snapshot names the tables it is built from (all of them in `WATCHED`). It is rebuilt only
when one of those tables changed:

- a commit made through a SQLAlchemy `Session` in this process bumps a per-table generation
  (session events below), and a snapshot built under older generations is not used: this
  process's own writes are seen by its very next request;
- the same commit raises the table's row in `change_versions`, in its own transaction; every
  `check_seconds` a worker reads those few rows and bumps the generations of the tables another
  process (another gunicorn worker, an rq worker) changed: their writes are seen within
  `check_seconds`;
- writes that bypass the `Session` (a plain `Connection.execute`, a bulk load, `psql`) raise no
  counter: a snapshot is rebuilt anyway once it is `MAX_AGE` seconds old.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable
from itertools import chain
from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import ORMExecuteState, Session

from connector.storage.models import ChangeVersion

#: The tables snapshots are built from: commits that write to them raise their counters.
WATCHED = frozenset(
    {
        "api_tokens",
        "bindings",
        "compliance_results",
        "connections",
        "mapping_versions",
        "requirement_sets",
        "vendor_regions",
        "vendor_work_types",
        "vendors",
    }
)
#: The longest a snapshot is used, for writes no counter tells of.
MAX_AGE = 300.0

#: Generation of each table, bumped after every commit that wrote to it in this process and when
#: a check finds another process changed it.
_generations: dict[str, int] = {}
_lock = threading.Lock()
#: Raised after the generations whenever a watched table's is: while it stands still, a kept
#: snapshot is current without its tables' generations being compared.
_epoch = 0
_TOUCHED = "coi.touched_tables"
_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def generation(tables: Iterable[str]) -> tuple[int, ...]:
    return tuple(_generations.get(name, 0) for name in tables)


def _bump(names: Iterable[str]) -> None:
    global _epoch
    with _lock:
        watched = False
        for name in names:
            _generations[name] = _generations.get(name, 0) + 1
            watched = watched or name in WATCHED
        if watched:
            # After the generations: a reader that sees the new epoch sees them too.
            _epoch += 1


@event.listens_for(Session, "after_flush")
def _collect_flushed(session: Session, _flush_context) -> None:
    touched = session.info.setdefault(_TOUCHED, set())
    for obj in chain(session.new, session.dirty, session.deleted):
        touched.add(obj.__table__.name)


@event.listens_for(Session, "do_orm_execute")
def _collect_statement(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if table is not None:
            note_write(state.session, table.name)


def note_write(session: Session, table: str) -> None:
    """Count a write to `table` made in the session's transaction but not through
    `Session.execute` (on its connection), as if it had been."""
    session.info.setdefault(_TOUCHED, set()).add(table)


@event.listens_for(Session, "before_commit")
def _raise_counters(session: Session) -> None:
    session.flush()  # what the commit would flush belongs to the touched tables too
    watched = sorted(session.info.get(_TOUCHED, set()) & WATCHED)
    if not watched:
        return
    connection = session.connection()
    insert = _INSERT[connection.dialect.name](ChangeVersion.__table__)
    # Sorted, so two transactions raising the same counters lock them in the same order.
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=["name"], set_={"version": ChangeVersion.__table__.c.version + 1}
        ),
        [{"name": name, "version": 1} for name in watched],
    )


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    # A rolled-back write leaves its tables in the set until the next commit: one needless
    # rebuild is cheaper than tracking savepoints.
    touched = session.info.pop(_TOUCHED, None)
    if touched:
        _bump(touched)


class Snapshots:
    """A bounded cache of values built from the database, keyed by the caller. `None` is never
    kept, so a missing row (an unknown token, say) is looked up again next time.

    With an `engine`, other processes' changes are checked every `check_seconds`; without one
    (or with `check_seconds` 0) nothing is kept: every `get` builds afresh."""

    def __init__(
        self,
        check_seconds: float,
        engine: Engine | None = None,
        *,
        max_entries: int = 4096,
        max_age: float = MAX_AGE,
    ):
        self.check_seconds = check_seconds
        self.engine = engine
        self.max_entries = max_entries
        self.max_age = max_age if engine is not None and check_seconds > 0 else 0.0
        #: key -> (built at, generations built under, value, epoch they were last found at)
        self._entries: dict[Hashable, tuple[float, tuple[int, ...], Any, int]] = {}
        self._checked_at = -float("inf")
        self._seen: dict[str, int] | None = None

    @classmethod
    def uncached(cls) -> Snapshots:
        """For callers outside a web worker: every read goes to the database."""
        return cls(0)

    def get(self, key: Hashable, tables: tuple[str, ...], build: Callable[[], Any]) -> Any:
        now = time.monotonic()
        if self.max_age and now - self._checked_at >= self.check_seconds:
            self._check(now)
        epoch = _epoch  # read before the generations (see `_bump`)
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self.max_age:
            if entry[3] == epoch:
                return entry[2]
            stamp = generation(tables)
            if entry[1] == stamp:
                self._entries[key] = (entry[0], stamp, entry[2], epoch)
                return entry[2]
        else:
            stamp = generation(tables)
        value = build()
        if value is None:
            return None
        if len(self._entries) >= self.max_entries:
            # Keys come from requests (tokens, trades, regions): never let them grow without end.
            self._entries.clear()
        self._entries[key] = (now, stamp, value, epoch)
        return value

    def _check(self, now: float) -> None:
        """Bump the generations of the tables another process changed since the last check."""
        self._checked_at = now
        with self.engine.connect() as connection:
            versions = dict(
                connection.execute(select(ChangeVersion.name, ChangeVersion.version)).all()
            )
        if self._seen is not None:
            _bump(name for name, version in versions.items() if self._seen.get(name) != version)
        else:
            # The first look: anything kept so far may predate it.
            self._entries.clear()
        self._seen = versions
