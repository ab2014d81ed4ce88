"""The audit log: who did what to which record, for every write."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.services.paging import paginate
from connector.storage.models import AuditEvent


def record(
    session: Session,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: object | None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEvent(
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=None if entity_id is None else str(entity_id),
            detail=detail or {},
        )
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
