"""The work-order gate: allow / warn / block a vendor for the days of a work order.

Hot path: it reads the stored result for (vendor, requirement set) and evaluates only when the
window reaches past what the stored result is known to hold for; no remote calls.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connector.compliance import select_requirement_set
from connector.compliance.model import RequirementSet
from connector.services import audit
from connector.services.compliance import evaluate_vendor, load_inputs, stored_result_usable
from connector.services.context import Context
from connector.services.requirements import load_sets
from connector.services.vendors import find_by_ref
from connector.storage import models as m

ALTERNATIVES = 5
MESSAGES = {
    "unknown_vendor": "the vendor is not known to the connector",
    "vendor_inactive": "the vendor is deactivated",
    "no_requirement_set": "no requirement set applies to this work; nothing was checked",
    "expiring": "coverage expires soon after the scheduled work",
}


def decide(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    session = ctx.session
    with session.begin():
        vendor = _resolve_vendor(session, request)
        requirement_set = None
        if vendor is None:
            outcome = _unknown(_fails_open(session, request))
        elif not vendor.active:
            outcome = _verdict("block", None, None, [_reason("vendor_inactive")])
        else:
            requirement_set = select_requirement_set(
                load_sets(session),
                work_type=request["work_type"],
                region=request["region"],
                risk_tier=vendor.risk_tier,
                amount=request.get("amount"),
                on=request["scheduled_start"],
            )
            if requirement_set is None:
                outcome = _verdict("warn", None, None, [_reason("no_requirement_set")])
            else:
                outcome = _judge(_result_body(session, vendor, requirement_set, request))
        outcome["vendor_id"] = vendor.id if vendor else None
        outcome["requirement_set"] = requirement_set.key if requirement_set else None
        outcome["alternatives"] = (
            _alternatives(session, requirement_set, request, vendor.id if vendor else None)
            if requirement_set is not None or vendor is None
            else []
        )
        work_order = _upsert_work_order(session, request, outcome["vendor_id"])
        row = m.GateDecision(
            work_order_id=work_order.id,
            vendor_id=outcome["vendor_id"],
            decision=outcome["decision"],
            status=outcome["status"],
            score=outcome["score"],
            requirement_set=outcome["requirement_set"],
            reasons=outcome["reasons"],
            alternatives=outcome["alternatives"],
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            ctx.actor,
            "gate.decision",
            "work_order",
            work_order.id,
            {"decision": row.decision, "vendor_id": row.vendor_id, "reasons": row.reasons},
        )
    return {
        "decision": outcome["decision"],
        "vendor_id": outcome["vendor_id"],
        "status": outcome["status"],
        "score": outcome["score"],
        "requirement_set": outcome["requirement_set"],
        "reasons": outcome["reasons"],
        "alternatives": outcome["alternatives"],
        "decision_id": row.id,
        "work_order_id": work_order.id,
    }


def _resolve_vendor(session, request: dict[str, Any]) -> m.Vendor | None:
    if request.get("vendor_id") is not None:
        return session.get(m.Vendor, request["vendor_id"])
    ref = request["vendor"]
    return find_by_ref(session, ref["system"], ref["external_id"])


def _fails_open(session, request: dict[str, Any]) -> bool:
    """Unknown vendors are blocked unless the connection they were named by fails open."""
    system = (request.get("vendor") or {}).get("system")
    if system is None:
        return False
    return bool(session.scalar(select(m.Connection.fail_open).where(m.Connection.name == system)))


def _unknown(fail_open: bool) -> dict[str, Any]:
    return _verdict("warn" if fail_open else "block", None, None, [_reason("unknown_vendor")])


def _reason(code: str, message: str | None = None) -> dict[str, str]:
    return {"code": code, "message": message or MESSAGES[code]}


def _verdict(decision: str, status: str | None, score: int | None, reasons: list) -> dict:
    return {"decision": decision, "status": status, "score": score, "reasons": reasons}


def _result_body(
    session, vendor: m.Vendor, requirement_set: RequirementSet, request: dict[str, Any]
) -> dict[str, Any]:
    start, end = request["scheduled_start"], request["scheduled_end"]
    stored = session.get(m.ComplianceResult, (vendor.id, requirement_set.key))
    if stored_result_usable(stored, requirement_set, start, end):
        return stored.body
    inputs = load_inputs(session, [vendor.id])[vendor.id]
    return evaluate_vendor(inputs, requirement_set, start, end).to_dict()


def _judge(body: dict[str, Any]) -> dict[str, Any]:
    """Turn a compliance result into a decision: block deficiencies block, the rest warn."""
    blocking = [d for d in body["deficiencies"] if d["severity"] == "block"]
    if body["status"] == "non_compliant" or blocking:
        reasons = [_reason(d["code"], d["message"]) for d in blocking]
        return _verdict("block", body["status"], body["score"], reasons)
    reasons = [_reason(d["code"], d["message"]) for d in body["deficiencies"]]
    if body["status"] == "expiring":
        expires = body.get("expires_on")
        reasons.append(_reason("expiring", f"coverage expires on {expires}"))
    decision = "warn" if reasons else "allow"
    return _verdict(decision, body["status"], body["score"], reasons)


def _alternatives(
    session, requirement_set: RequirementSet | None, request: dict[str, Any], exclude: int | None
) -> list[dict[str, Any]]:
    """Compliant or expiring vendors for the same work type and region whose stored result
    holds for the whole window, best score first (one indexed query)."""
    if requirement_set is None:
        requirement_set = select_requirement_set(
            load_sets(session),
            work_type=request["work_type"],
            region=request["region"],
            risk_tier=None,
            amount=request.get("amount"),
            on=request["scheduled_start"],
        )
        if requirement_set is None:
            return []
    r = m.ComplianceResult
    # The vendors of the trade and region (two indexed sets intersected) are matched while the
    # set's results are walked from the best score down, so the walk stops after a handful.
    candidates = (
        select(m.VendorWorkType.vendor_id)
        .where(m.VendorWorkType.work_type == request["work_type"])
        .intersect(
            select(m.VendorRegion.vendor_id).where(m.VendorRegion.region == request["region"])
        )
    )
    stmt = (
        select(m.Vendor.id, m.Vendor.name, r.score, r.status)
        .join(r, r.vendor_id == m.Vendor.id)
        .where(
            r.vendor_id.in_(candidates),
            r.requirement_set == requirement_set.key,
            r.set_version == requirement_set.version,
            r.status.in_(("compliant", "expiring")),
            r.as_of <= request["scheduled_start"],
            (r.stable_until.is_(None)) | (r.stable_until >= request["scheduled_end"]),
            m.Vendor.active.is_(True),
        )
        .order_by(r.score.desc(), r.vendor_id.desc())
        .limit(ALTERNATIVES)
    )
    if exclude is not None:
        stmt = stmt.where(m.Vendor.id != exclude)
    return [
        {"vendor_id": vid, "name": name, "score": score, "status": status}
        for vid, name, score, status in session.execute(stmt)
    ]


def _upsert_work_order(session, request: dict[str, Any], vendor_id: int | None) -> m.WorkOrder:
    ref = request["work_order"]
    fields = {
        "vendor_id": vendor_id,
        "work_type": request["work_type"],
        "region": request["region"],
        "scheduled_start": request["scheduled_start"],
        "scheduled_end": request["scheduled_end"],
        "amount": request.get("amount"),
    }
    key = (m.WorkOrder.system == ref["system"]) & (m.WorkOrder.external_id == ref["external_id"])
    work_order = session.scalar(select(m.WorkOrder).where(key))
    if work_order is None:
        try:
            with session.begin_nested():
                work_order = m.WorkOrder(
                    system=ref["system"], external_id=ref["external_id"], **fields
                )
                session.add(work_order)
                session.flush()
            return work_order
        except IntegrityError:
            # The same work order gated concurrently: the other request created it.
            work_order = session.scalar(select(m.WorkOrder).where(key))
    for name, value in fields.items():
        setattr(work_order, name, value)
    session.flush()
    return work_order
