"""Process-local snapshots of what the hot paths read on every request and what changes rarely:
requirement sets, API tokens, the gate's alternatives.

Each snapshot names the tables it is built from. It is rebuilt when it is older than the time to
live, and at once when this process commits a write to one of those tables: every commit made
through a SQLAlchemy `Session` bumps a per-table generation (session events below), and a snapshot
built under older generations is stale. So a change made through this process is seen by its very
next request, and a change made by another process (another gunicorn worker, an rq worker) within
`ttl` seconds. Writes that bypass the `Session` (plain `Connection.execute`) are seen by age only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable
from itertools import chain
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

#: Generation of each table, bumped after every commit that wrote to it in this process.
_generations: dict[str, int] = {}
_lock = threading.Lock()
_TOUCHED = "coi.touched_tables"


def generation(tables: Iterable[str]) -> tuple[int, ...]:
    return tuple(_generations.get(name, 0) for name in tables)


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
            state.session.info.setdefault(_TOUCHED, set()).add(table.name)


@event.listens_for(Session, "after_commit")
def _bump(session: Session) -> None:
    # A rolled-back write leaves its tables in the set until the next commit: one needless
    # rebuild is cheaper than tracking savepoints.
    touched = session.info.pop(_TOUCHED, None)
    if touched:
        with _lock:
            for name in touched:
                _generations[name] = _generations.get(name, 0) + 1


class Snapshots:
    """A bounded cache of values built from the database, keyed by the caller. `None` is never
    kept, so a missing row (an unknown token, say) is looked up again next time."""

    def __init__(self, ttl: float, max_entries: int = 4096):
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, tuple[int, ...], Any]] = {}

    def get(self, key: Hashable, tables: tuple[str, ...], build: Callable[[], Any]) -> Any:
        now = time.monotonic()
        stamp = generation(tables)
        entry = self._entries.get(key)
        if entry is not None and entry[1] == stamp and now - entry[0] < self.ttl:
            return entry[2]
        value = build()
        if value is None:
            return None
        if len(self._entries) >= self.max_entries:
            # Keys come from requests (tokens, trades, regions): never let them grow without end.
            self._entries.clear()
        self._entries[key] = (now, stamp, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
