"""Waivers: a reasoned, dated exception that suppresses one deficiency of one vendor."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connector.clock import utcnow
from connector.errors import NotFound
from connector.services import audit
from connector.services.context import Context
from connector.services.vendors import get_vendor
from connector.storage import models as m


def grant(ctx: Context, vendor_id: int, data: dict[str, Any]) -> m.Waiver:
    session = ctx.session
    with session.begin():
        vendor = get_vendor(session, vendor_id)
        waiver = m.Waiver(
            vendor_id=vendor.id,
            code=data["code"],
            line=data.get("line"),
            reason=data["reason"],
            granted_by=data.get("granted_by") or ctx.actor,
            until=data["until"],
        )
        session.add(waiver)
        session.flush()
        audit.record(session, ctx.actor, "waiver.grant", "waiver", waiver.id, render(waiver))
        ctx.jobs.recompute(session, [vendor.id])
    return waiver


def revoke(ctx: Context, vendor_id: int, waiver_id: int) -> None:
    session = ctx.session
    with session.begin():
        waiver = session.scalar(
            select(m.Waiver).where(
                m.Waiver.id == waiver_id,
                m.Waiver.vendor_id == vendor_id,
                m.Waiver.revoked_at.is_(None),
            )
        )
        if waiver is None:
            raise NotFound("waiver", waiver_id)
        waiver.revoked_at = utcnow()
        audit.record(session, ctx.actor, "waiver.revoke", "waiver", waiver.id, render(waiver))
        ctx.jobs.recompute(session, [vendor_id])


def render(waiver: m.Waiver) -> dict[str, Any]:
    return {
        "id": waiver.id,
        "vendor_id": waiver.vendor_id,
        "code": waiver.code,
        "line": waiver.line,
        "reason": waiver.reason,
        "granted_by": waiver.granted_by,
        "until": waiver.until.isoformat(),
    }
