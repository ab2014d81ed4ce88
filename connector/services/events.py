"""Outbound events: what happened, put in the database for every subscription that wants it.

`Emitter.emit` runs in the caller's transaction (a transactional outbox): the change and its event
commit together or not at all. Each active, unpaused subscription that asked for the event type
gets its own `WebhookDelivery` with a fresh event id (`msg_` + random, the `webhook-id` header,
the same on every retry) and the Standard Webhooks payload `{"type", "timestamp", "data"}`.
Nothing is sent here: `webhooks.delivery` sends (an rq job queued after the
commit when Redis is configured, the periodic job, or `coi webhooks deliver`).

The four event types and where they come from:

* `vendor.compliance_changed`: a recompute changed a vendor's headline status, score or expiry;
* `gate.blocked`: the gate stored a `block` decision;
* `policy.cancelled`: a cancellation notice matched a vendor's policy (when the notice is
  recorded, or later when a certificate listing that policy arrives);
* `policy.expiring`: the daily `announce_expiring` found a policy that the vendor's headline
  requirement set needs running out within that set's `expiring_window_days`, with no renewal
  on file; announced once per policy and expiration date (the audit log remembers it).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.clock import utcnow
from connector.compliance.model import RequirementSet
from connector.services import audit
from connector.storage import models as m

COMPLIANCE_CHANGED = "vendor.compliance_changed"
GATE_BLOCKED = "gate.blocked"
POLICY_CANCELLED = "policy.cancelled"
POLICY_EXPIRING = "policy.expiring"
EVENT_TYPES = (COMPLIANCE_CHANGED, GATE_BLOCKED, POLICY_CANCELLED, POLICY_EXPIRING)

#: `Jobs` puts itself here (see `connector.jobs`), so an emit can have delivery queued.
JOBS_KEY = "coi_jobs"
#: Audit action that remembers an announced expiry (the de-duplication of `policy.expiring`).
EXPIRING_ANNOUNCED = "event.policy_expiring"


def new_event_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def payload(event_type: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {"type": event_type, "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data}


# Built once, run on the connection: every batch of gate decisions reads it.
_SUBSCRIPTIONS = select(m.WebhookSubscription.id, m.WebhookSubscription.events).where(
    m.WebhookSubscription.active.is_(True), m.WebhookSubscription.paused_at.is_(None)
)


class Emitter:
    """Emits into one transaction; reads the subscriptions once, on the first event."""

    def __init__(self, session: Session):
        self.session = session
        self._subscriptions: list[tuple[int, frozenset[str]]] | None = None

    def subscribers(self, event_type: str) -> list[int]:
        """Ids of the active, unpaused subscriptions that want this event type."""
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        if self._subscriptions is None:
            rows = self.session.connection().execute(_SUBSCRIPTIONS)
            self._subscriptions = [(sid, frozenset(events)) for sid, events in rows]
        return [sid for sid, events in self._subscriptions if event_type in events]

    def emit(self, event_type: str, data: dict[str, Any]) -> int:
        """Queue one event for every subscription that wants it; returns how many."""
        wanting = self.subscribers(event_type)
        if not wanting:
            return 0
        now = utcnow()
        body = payload(event_type, data, now)
        self.session.add_all(
            m.WebhookDelivery(
                subscription_id=sid,
                event_id=new_event_id(),
                event_type=event_type,
                payload=body,
                status="pending",
                attempts=0,
                next_attempt_at=now,
            )
            for sid in wanting
        )
        jobs = self.session.info.get(JOBS_KEY)
        if jobs is not None:
            jobs.deliver_webhooks_after_commit(self.session)
        return len(wanting)


# --------------------------------------------------------------------------------------------
# What the events carry
# --------------------------------------------------------------------------------------------


def vendor_ref(vendor: m.Vendor) -> dict[str, Any]:
    return {
        "id": vendor.id,
        "name": vendor.name,
        "external_refs": [
            {"system": b.system, "object": b.object, "external_id": b.external_id}
            for b in vendor.bindings
        ],
    }


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def headline_state(status: str | None, score: int | None, expires_on: date | None) -> dict:
    return {"status": status, "score": score, "expires_on": _day(expires_on)}


def compliance_changed(
    emitter: Emitter, vendor: m.Vendor, before: dict[str, Any], result: dict[str, Any] | None
) -> None:
    """Emit `vendor.compliance_changed` when the vendor's headline moved (`before` is
    `headline_state` of the vendor before the recompute, `result` the new headline body)."""
    after = headline_state(vendor.status, vendor.score, vendor.expires_on)
    if after == before or not emitter.subscribers(COMPLIANCE_CHANGED):
        return
    emitter.emit(
        COMPLIANCE_CHANGED,
        {
            "vendor": vendor_ref(vendor),
            "requirement_set": result["requirement_set"] if result else None,
            "previous": before,
            "current": after,
            "deficiencies": [
                {k: d.get(k) for k in ("code", "line", "field", "severity", "message")}
                for d in (result or {}).get("deficiencies", ())
            ],
        },
    )


def gate_blocked(
    emitter: Emitter,
    request: dict[str, Any],
    outcome: dict[str, Any],
    decision_id: str,
    work_order_id: int,
) -> None:
    """Emit `gate.blocked` for a stored gate decision when it is a block (else nothing).
    `request` is the loaded gate request, `outcome` the decision as answered; one `emitter`
    serves a whole batch of decisions."""
    if outcome["decision"] != "block" or not emitter.subscribers(GATE_BLOCKED):
        return
    session = emitter.session
    vendor = session.get(m.Vendor, outcome["vendor_id"]) if outcome["vendor_id"] else None
    named = request.get("vendor")
    emitter.emit(
        GATE_BLOCKED,
        {
            "decision_id": decision_id,
            "work_order": {
                "id": work_order_id,
                "system": request["work_order"]["system"],
                "external_id": request["work_order"]["external_id"],
                "work_type": request["work_type"],
                "region": request["region"],
                "scheduled_start": _day(request["scheduled_start"]),
                "scheduled_end": _day(request["scheduled_end"]),
                "amount": request.get("amount"),
            },
            # An unknown vendor is named as the caller named it.
            "vendor": vendor_ref(vendor) if vendor else {"id": None, "requested": named},
            "status": outcome["status"],
            "score": outcome["score"],
            "requirement_set": outcome["requirement_set"],
            "reasons": outcome["reasons"],
            "alternatives": outcome["alternatives"],
        },
    )


def policy_ref(policy: m.Policy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "line": policy.line,
        "policy_number": policy.policy_number,
        "insurer": {"name": policy.insurer_name, "naic": policy.insurer_naic},
        "effective_date": _day(policy.effective_date),
        "expiration_date": _day(policy.expiration_date),
    }


def policy_cancelled(
    session: Session, notice: m.CancellationNotice, policies: Sequence[m.Policy]
) -> None:
    """Emit `policy.cancelled` once per vendor whose policy this notice matched (the newest
    row stands for the policy when several certificates list it)."""
    newest: dict[int, m.Policy] = {}
    for p in policies:
        if p.vendor_id not in newest or (p.id or 0) > (newest[p.vendor_id].id or 0):
            newest[p.vendor_id] = p
    emitter = Emitter(session)
    if not newest or not emitter.subscribers(POLICY_CANCELLED):
        return
    for vendor_id, p in sorted(newest.items()):
        emitter.emit(
            POLICY_CANCELLED,
            {
                "vendor": vendor_ref(session.get(m.Vendor, vendor_id)),
                "policy": policy_ref(p),
                "cancelled_on": _day(notice.effective_date),
                "notice": {
                    "id": notice.id,
                    "received_via": notice.received_via,
                    "policy_number": notice.policy_number,
                    "insurer_name": notice.insurer_name,
                },
            },
        )


# --------------------------------------------------------------------------------------------
# policy.expiring (daily)
# --------------------------------------------------------------------------------------------


def expiring_unrenewed(
    policies: Iterable[m.Policy], lines: set[str], today: date, window_days: int
) -> list[m.Policy]:
    """The policies of one vendor on the needed `lines` that are in force today and expire
    within `window_days` (expiration date after today, at most `window_days` away), with no
    other policy of the line taking over on or before that date; cancelled ones are not
    expiring (they end early and have their own event)."""
    policies = list(policies)
    found = []
    for p in policies:
        if p.line not in lines or not (p.effective_date <= today < p.expiration_date):
            continue
        if p.expiration_date - today > timedelta(days=window_days):
            continue
        if p.cancelled_on is not None and p.cancelled_on < p.expiration_date:
            continue
        renewed = any(
            q.line == p.line
            and q is not p
            and q.effective_date <= p.expiration_date < q.expiration_date
            and (q.cancelled_on is None or q.cancelled_on > p.expiration_date)
            for q in policies
        )
        if not renewed:
            found.append(p)
    return found


def _expiry_key(p: m.Policy) -> str:
    """One real policy and expiration date (the same policy may sit on several certificates)."""
    raw = f"{p.vendor_id}|{p.line}|{p.policy_number_norm}|{p.expiration_date.isoformat()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def announce_expiring(session: Session, today: date) -> int:
    """Emit `policy.expiring` for every newly expiring policy of an active vendor (see the
    module docstring); runs in the caller's transaction, returns how many it announced."""
    from connector.services.compliance import applicable_sets, headline
    from connector.services.requirements import load_sets

    sets = load_sets(session)
    horizon = max((s.expiring_window_days for s in sets), default=0)
    if horizon <= 0:
        return 0
    p = m.Policy
    vendor_ids = session.scalars(
        select(p.vendor_id)
        .join(m.Vendor, m.Vendor.id == p.vendor_id)
        .where(
            m.Vendor.active.is_(True),
            p.effective_date <= today,
            p.expiration_date > today,
            p.expiration_date <= today + timedelta(days=horizon),
        )
        .distinct()
    ).all()
    if not vendor_ids:
        return 0
    emitter = Emitter(session)
    announced = 0
    vendor_ids = sorted(vendor_ids)
    for start in range(0, len(vendor_ids), 500):
        chunk = vendor_ids[start : start + 500]
        by_vendor: dict[int, list[m.Policy]] = {vid: [] for vid in chunk}
        for policy in session.scalars(select(p).where(p.vendor_id.in_(chunk))):
            by_vendor[policy.vendor_id].append(policy)
        candidates: dict[str, tuple[m.Vendor, m.Policy, RequirementSet]] = {}
        for vendor in session.scalars(select(m.Vendor).where(m.Vendor.id.in_(chunk))):
            chosen = headline([(s, s) for s in applicable_sets(sets, vendor, today)])
            if chosen is None:
                continue
            lines = {c.line for c in chosen.coverages}
            for policy in expiring_unrenewed(
                by_vendor[vendor.id], lines, today, chosen.expiring_window_days
            ):
                key = _expiry_key(policy)
                if key not in candidates or policy.id > candidates[key][1].id:
                    candidates[key] = (vendor, policy, chosen)
        done = set(
            session.scalars(
                select(m.AuditEvent.entity_id).where(
                    m.AuditEvent.entity_type == "policy_expiry",
                    m.AuditEvent.entity_id.in_(list(candidates)),
                    m.AuditEvent.action == EXPIRING_ANNOUNCED,
                )
            )
        )
        for key, (vendor, policy, chosen) in sorted(candidates.items()):
            if key in done:
                continue
            days_left = (policy.expiration_date - today).days
            emitter.emit(
                POLICY_EXPIRING,
                {
                    "vendor": vendor_ref(vendor),
                    "policy": policy_ref(policy),
                    "expires_on": _day(policy.expiration_date),
                    "days_left": days_left,
                    "requirement_set": chosen.key,
                    "expiring_window_days": chosen.expiring_window_days,
                },
            )
            audit.record(
                session,
                "system",
                EXPIRING_ANNOUNCED,
                "policy_expiry",
                key,
                {
                    "vendor_id": vendor.id,
                    "policy_id": policy.id,
                    "expiration_date": _day(policy.expiration_date),
                },
            )
            announced += 1
    session.flush()
    return announced
