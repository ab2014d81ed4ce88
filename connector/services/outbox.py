"""Sync out through the outbox: compliance fields wait in the database until the remote system
acknowledges them.

`stage` runs inside a recompute: for every binding of a recomputed vendor whose connection pushes
that object, it maps the vendor's headline result through the connection's outbound mapping and
keeps, per remote record, only the fields that differ from what the remote last acknowledged. An
empty difference removes any pending entry, so a second push with nothing changed makes no call.

`deliver` sends due entries in batches, marks acknowledged values on the binding, and on failure
backs off exponentially (seconds up to an hour) and keeps the entry: a remote that is down for
hours loses nothing. Entries are claimed with a lease, so two workers never send the same entry
at once; a worker that dies mid-send leaves its lease to expire and the entry is sent again (the
writes are idempotent field sets).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from adapters.base import AdapterError, WriteRequest
from connector.clock import utcnow
from connector.services import connections
from connector.storage import models as m
from connector.storage.bulk import insert_rows, update_rows
from connector.storage.db import in_values
from mappings import compliance_record, jsonable

BATCH = 200
LEASE = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=1)


def backoff(attempts: int, base_seconds: float = 5.0) -> timedelta:
    return min(timedelta(seconds=base_seconds * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


class Stager:
    """Stages outbox entries for vendors during one recompute (mappings compiled once)."""

    def __init__(self, session: Session):
        self.session = session
        self.pushing: dict[tuple[str, str], tuple[Any, bool]] = {}
        for connection in session.scalars(select(m.Connection).where(m.Connection.active)):
            for cfg in connection.objects:
                if cfg.get("push"):
                    mapping = connections.mapping_for(session, connection, cfg, "out")
                    block = bool(connection.settings.get("block_payment"))
                    self.pushing[(connection.name, cfg["remote"])] = (mapping, block)
        #: The outbox entries `prefetch` looked up, by remote record (None: it has none).
        self._entries: dict[tuple[str, str, str], m.OutboxEntry | None] = {}
        #: New entries of prefetched records, inserted together by `write`, made at `_now`.
        self._new: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._now = utcnow()
        #: Per pushed object, the last headline staged and its fields: vendors that share a
        #: headline body (a recompute shares one among vendors with nothing on file) share them.
        self._last: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}

    def prefetch(self, vendors: Iterable[m.Vendor]) -> None:
        """Look up the outbox entries of these vendors' pushed records at once, so that staging
        them makes no query per record."""
        self._now = utcnow()
        wanted: dict[tuple[str, str], set[str]] = {}
        for vendor in vendors:
            for b in vendor.bindings:
                if (b.system, b.object) in self.pushing:
                    wanted.setdefault((b.system, b.object), set()).add(b.external_id)
        self._entries = {}
        for (connection, remote_object), ids in wanted.items():
            self._entries.update(dict.fromkeys((connection, remote_object, i) for i in ids))
            # On PostgreSQL a bound list made a prepared statement whose generic plan scanned
            # every entry of the connection (see `in_values`).
            found = self.session.scalars(
                select(m.OutboxEntry).where(
                    m.OutboxEntry.connection == connection,
                    m.OutboxEntry.object == remote_object,
                    in_values(m.OutboxEntry.external_id, ids),
                )
            )
            for entry in found:
                self._entries[(connection, remote_object, entry.external_id)] = entry

    def stage(self, vendor: m.Vendor, headline: dict[str, Any] | None) -> None:
        if not self.pushing or headline is None:
            return
        for binding in vendor.bindings:
            pushed = (binding.system, binding.object)
            if pushed not in self.pushing:
                continue
            fields = self._fields(pushed, headline)
            acknowledged = binding.pushed_values or {}
            changed = {k: v for k, v in fields.items() if acknowledged.get(k, _MISSING) != v}
            key = (binding.system, binding.object, binding.external_id)
            if key not in self._entries:
                _put(self.session, binding, vendor.id, changed)
            elif self._entries[key] is not None:
                self._entries[key] = _put_entry(
                    self.session, self._entries[key], *key, changed, vendor_id=vendor.id
                )
            elif changed:
                self._new[key] = _new_entry(*key, changed, vendor.id, self._now)
            else:
                self._new.pop(key, None)

    def _fields(self, pushed: tuple[str, str], headline: dict[str, Any]) -> dict[str, Any]:
        """The remote fields the outbound mapping makes of `headline` for this object."""
        last = self._last.get(pushed)
        if last is not None and last[0] is headline:
            return last[1]
        mapping, block = self.pushing[pushed]
        fields = jsonable(mapping.apply(compliance_record(headline, block_payments=block)).values)
        self._last[pushed] = (headline, fields)
        return fields

    def write(self) -> None:
        """Insert the new entries staged since the last `write` (one statement, no objects)."""
        if self._new:
            insert_rows(self.session, m.OutboxEntry.__table__, list(self._new.values()))
            self._new = {}


_MISSING = object()


def _put(session: Session, binding: m.Binding, vendor_id: int, fields: dict[str, Any]) -> None:
    stage_record(
        session, binding.system, binding.object, binding.external_id, fields, vendor_id=vendor_id
    )


def stage_record(
    session: Session,
    connection: str,
    remote_object: str,
    external_id: str,
    fields: dict[str, Any],
    *,
    vendor_id: int | None = None,
) -> None:
    """Stage field values for one remote record (in the caller's transaction): they replace any
    pending values of that record; no fields removes its pending entry. `deliver` sends them."""
    entry = session.scalar(
        select(m.OutboxEntry).where(
            m.OutboxEntry.connection == connection,
            m.OutboxEntry.object == remote_object,
            m.OutboxEntry.external_id == external_id,
        )
    )
    _put_entry(session, entry, connection, remote_object, external_id, fields, vendor_id=vendor_id)


def _put_entry(
    session: Session,
    entry: m.OutboxEntry | None,
    connection: str,
    remote_object: str,
    external_id: str,
    fields: dict[str, Any],
    *,
    vendor_id: int | None,
) -> m.OutboxEntry | None:
    """`stage_record` once the record's entry (or None) is known; returns its entry now."""
    if not fields:
        if entry is not None and entry.status != "sending":
            session.delete(entry)
            return None
        return entry
    now = utcnow()
    if entry is None:
        entry = m.OutboxEntry(
            **_new_entry(connection, remote_object, external_id, fields, vendor_id, now)
        )
        session.add(entry)
    elif entry.fields != fields:
        entry.fields = fields
        entry.updated_at = now
        if entry.status == "failed":
            entry.status, entry.attempts, entry.next_attempt_at = "pending", 0, now
    return entry


def _new_entry(
    connection: str,
    remote_object: str,
    external_id: str,
    fields: dict[str, Any],
    vendor_id: int | None,
    now,
) -> dict[str, Any]:
    return {
        "connection": connection,
        "object": remote_object,
        "external_id": external_id,
        "vendor_id": vendor_id,
        "fields": fields,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
    }


def deliver(sessions: sessionmaker[Session], connection_name: str) -> dict[str, int]:
    """Send every due entry of one connection; returns counts (sent, failed, retry, calls)."""
    counts = {"sent": 0, "failed": 0, "retry": 0, "calls": 0}
    session = sessions()
    with session:
        with session.begin():
            connection = connections.get(session, connection_name)
            adapter = connections.adapter_for(connection)
            base = float(connection.settings.get("retry_base_seconds", 5.0))
        try:
            while True:
                claimed = _claim(session, connection_name)
                if not claimed:
                    break
                if not _send(session, connection_name, adapter, claimed, counts, base):
                    break
        finally:
            adapter.close()
    return counts


def _claim(session: Session, connection: str) -> list[m.OutboxEntry]:
    now = utcnow()
    with session.begin():
        ids = session.scalars(
            select(m.OutboxEntry.id)
            .where(
                m.OutboxEntry.connection == connection,
                m.OutboxEntry.status.in_(("pending", "sending")),
                m.OutboxEntry.next_attempt_at <= now,
            )
            .order_by(m.OutboxEntry.next_attempt_at, m.OutboxEntry.id)
            .limit(BATCH)
        ).all()
        if not ids:
            return []
        claim = uuid.uuid4().hex
        # Rows, not objects: a batch's entries are only read and written here.
        t = m.OutboxEntry.__table__
        session.execute(
            update(t)
            .where(t.c.id.in_(ids), t.c.next_attempt_at <= now)
            .values(status="sending", next_attempt_at=now + LEASE, claimed_by=claim)
        )
        claimed = session.execute(
            select(t.c.id, t.c.object, t.c.external_id, t.c.fields).where(
                t.c.id.in_(ids), t.c.claimed_by == claim
            )
        ).all()
    return [tuple(row) for row in claimed]


def _send(
    session: Session, connection: str, adapter, claimed, counts: dict[str, int], base: float
) -> bool:
    """Send one claimed batch; False when the remote is unreachable (stop for now)."""
    by_object: dict[str, list] = {}
    for item in claimed:
        by_object.setdefault(item[1], []).append(item)
    for remote_object, items in by_object.items():
        requests = [WriteRequest(external_id=i[2], fields=i[3]) for i in items]
        counts["calls"] += 1
        try:
            results = adapter.write(remote_object, requests)
        except AdapterError as err:
            _retry_all(session, [i[0] for i in items], str(err), base)
            counts["retry"] += len(items)
            return False
        with session.begin():
            acknowledged = []
            for item, result in zip(items, results, strict=True):
                entry_id = item[0]
                if result.ok:
                    acknowledged.append(item)
                    counts["sent"] += 1
                elif result.retryable:
                    _reschedule(session, entry_id, result.error, base)
                    counts["retry"] += 1
                else:
                    session.execute(
                        update(m.OutboxEntry)
                        .where(m.OutboxEntry.id == entry_id)
                        .values(status="failed", last_error=result.error)
                    )
                    counts["failed"] += 1
            _acknowledge(session, connection, remote_object, acknowledged)
    return True


def _acknowledge(session: Session, connection: str, remote_object: str, items: list) -> None:
    """Record what the remote acknowledged of these sent entries (id, object, external id,
    fields), a batch at a time: the values on their bindings, so they are not staged again; the
    entries gone, or, for an entry staged again while it was being sent, only what is still
    unacknowledged left in it."""
    if not items:
        return
    b = m.Binding.__table__
    pushed = session.execute(
        select(b.c.id, b.c.external_id, b.c.pushed_values).where(
            b.c.system == connection,
            b.c.object == remote_object,
            in_values(b.c.external_id, {item[2] for item in items}),
        )
    ).all()
    sent = {external_id: fields for _, _, external_id, fields in items}
    update_rows(
        session,
        b,
        [
            {"id": row.id, "pushed_values": {**(row.pushed_values or {}), **sent[row.external_id]}}
            for row in pushed
        ],
    )
    t = m.OutboxEntry.__table__
    staged = dict(
        session.execute(
            select(t.c.id, t.c.fields).where(in_values(t.c.id, [item[0] for item in items]))
        ).all()
    )
    done, left = [], []
    for entry_id, _, _, fields in items:
        now_staged = staged.get(entry_id)
        if now_staged is None or now_staged == fields:
            done.append(entry_id)
        else:
            # Changed again while we were sending: keep what is still unacknowledged.
            unacknowledged = {k: v for k, v in now_staged.items() if fields.get(k, _MISSING) != v}
            left.append(
                {
                    "id": entry_id,
                    "fields": unacknowledged,
                    "status": "pending",
                    "next_attempt_at": utcnow(),
                }
            )
    update_rows(session, t, left)
    if done:
        session.execute(delete(t).where(in_values(t.c.id, done)))


def _reschedule(session: Session, entry_id: int, error: str | None, base: float) -> None:
    entry = session.get(m.OutboxEntry, entry_id)
    entry.attempts += 1
    entry.status = "pending"
    entry.last_error = error
    entry.next_attempt_at = utcnow() + backoff(entry.attempts, base)


def _retry_all(session: Session, ids: Iterable[int], error: str, base: float) -> None:
    with session.begin():
        for entry_id in ids:
            _reschedule(session, entry_id, error, base)


def pending_count(session: Session, connection: str) -> int:
    return session.scalar(
        select(func.count()).where(
            m.OutboxEntry.connection == connection, m.OutboxEntry.status != "failed"
        )
    )


def next_due(session: Session, connection: str):
    """When the next pending entry of the connection is due (None: nothing waits)."""
    return session.scalar(
        select(func.min(m.OutboxEntry.next_attempt_at)).where(
            m.OutboxEntry.connection == connection, m.OutboxEntry.status != "failed"
        )
    )
