"""Cancellation notices: matched to policies by normalised policy number and insurer.

A notice that matches no policy yet is kept as `unmatched`; when a certificate listing that
policy arrives later, the notice is applied to it then (see `apply_pending_notices`). Either way
a match emits `policy.cancelled` (see `connector.services.events`).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.compliance import normalise_holder
from connector.services import audit, events
from connector.services.context import Context
from connector.storage import models as m

_NOT_ALNUM = re.compile(r"[^0-9A-Z]")


def normalise_policy_number(number: str) -> str:
    """`GL 123-456/a` and `gl123456A` are the same policy number."""
    return _NOT_ALNUM.sub("", number.upper())


def normalise_insurer(name: str) -> str:
    return normalise_holder(name)


def record_notice(ctx: Context, data: dict[str, Any]) -> m.CancellationNotice:
    session = ctx.session
    with session.begin():
        notice = m.CancellationNotice(
            policy_number=data["policy_number"],
            policy_number_norm=normalise_policy_number(data["policy_number"]),
            insurer_name=data["insurer_name"],
            insurer_name_norm=normalise_insurer(data["insurer_name"]),
            effective_date=data["effective_date"],
            received_via=data["received_via"],
            notes=data.get("notes"),
            status="unmatched",
        )
        session.add(notice)
        policies = session.scalars(
            select(m.Policy)
            .where(
                m.Policy.policy_number_norm == notice.policy_number_norm,
                m.Policy.insurer_name_norm == notice.insurer_name_norm,
            )
            .order_by(m.Policy.id.desc())
        ).all()
        _apply(notice, policies)
        session.flush()
        events.policy_cancelled(session, notice, policies)
        audit.record(
            session,
            ctx.actor,
            "cancellation_notice.create",
            "cancellation_notice",
            notice.id,
            {
                "status": notice.status,
                "policy_id": notice.policy_id,
                "effective_date": notice.effective_date.isoformat(),
                "vendor_ids": sorted({p.vendor_id for p in policies}),
            },
        )
        ctx.jobs.recompute(session, {p.vendor_id for p in policies})
    return notice


def apply_pending_notices(session: Session, policies: list[m.Policy]) -> None:
    """Apply notices already on file to newly recorded policies (same transaction)."""
    for policy in policies:
        notices = session.scalars(
            select(m.CancellationNotice).where(
                m.CancellationNotice.policy_number_norm == policy.policy_number_norm,
                m.CancellationNotice.insurer_name_norm == policy.insurer_name_norm,
            )
        ).all()
        for notice in notices:
            _apply(notice, [policy])
            events.policy_cancelled(session, notice, [policy])


def _apply(notice: m.CancellationNotice, policies: list[m.Policy]) -> None:
    for policy in policies:
        if policy.cancelled_on is None or notice.effective_date < policy.cancelled_on:
            policy.cancelled_on = notice.effective_date
    if policies:
        notice.status = "matched"
        if notice.policy_id is None:
            notice.policy_id = policies[0].id


def render(notice: m.CancellationNotice) -> dict[str, Any]:
    return {
        "id": notice.id,
        "status": notice.status,
        "policy_id": notice.policy_id,
        "policy_number": notice.policy_number,
        "insurer_name": notice.insurer_name,
        "effective_date": notice.effective_date.isoformat(),
        "received_via": notice.received_via,
    }
