"""The audit log: who did what to which record, for every write."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.clock import utcnow
from connector.services.paging import paginate
from connector.storage.bulk import insert_rows
from connector.storage.models import AuditEvent


class Event(NamedTuple):
    actor: str
    action: str
    entity_type: str
    entity_id: object | None
    detail: dict[str, Any] | None = None
    #: When it happened, if not now (a write-behind batch stores events a moment later).
    at: datetime | None = None


def record(
    session: Session,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: object | None,
    detail: dict[str, Any] | None = None,
) -> None:
    record_many(session, [Event(actor, action, entity_type, entity_id, detail)])


def record_many(session: Session, events: list[Event]) -> None:
    # Inserted at once rather than flushed with the unit of work: the events are complete here,
    # and the hot paths (the gate) should not pay for an ORM flush.
    insert_rows(
        session,
        AuditEvent.__table__,
        [
            {
                "actor": e.actor,
                "action": e.action,
                "entity_type": e.entity_type,
                "entity_id": None if e.entity_id is None else str(e.entity_id),
                "detail": e.detail or {},
                "at": e.at or utcnow(),
            }
            for e in events
        ],
    )


def list_events(session: Session, query: dict[str, Any]) -> dict[str, Any]:
    stmt = select(AuditEvent)
    for column in ("entity_type", "entity_id", "action"):
        if query.get(column):
            stmt = stmt.where(getattr(AuditEvent, column) == str(query[column]))
    return paginate(session, stmt.order_by(AuditEvent.id.desc()), query, _render)


def _render(e: AuditEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "actor": e.actor,
        "action": e.action,
        "entity_type": e.entity_type,
        "entity_id": e.entity_id,
        "detail": e.detail,
    }
