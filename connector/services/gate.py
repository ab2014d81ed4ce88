"""The work-order gate: allow / warn / block a vendor for the days of a work order.

Hot path: it reads the stored result for (vendor, requirement set) and evaluates only when the
window reaches past what the stored result is known to hold for; no remote calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import date, datetime
from itertools import islice
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from connector.clock import utcnow
from connector.compliance import select_requirement_set
from connector.compliance.model import RequirementSet
from connector.services import audit, events
from connector.services.compliance import stored_or_evaluated
from connector.services.context import Context
from connector.services.requirements import load_sets
from connector.services.write_behind import WriteBehind
from connector.storage import models as m
from connector.storage.bulk import insert_rows
from connector.storage.snapshots import Snapshots

ALTERNATIVES = 5
SETS_TABLES = ("requirement_sets",)
VENDOR_TABLES = ("vendors", "bindings", "compliance_results")
ALTERNATIVES_TABLES = (
    "compliance_results",
    "vendors",
    "vendor_work_types",
    "vendor_regions",
    "requirement_sets",
)
MESSAGES = {
    "unknown_vendor": "the vendor is not known to the connector",
    "vendor_inactive": "the vendor is deactivated",
    "no_requirement_set": "no requirement set applies to this work; nothing was checked",
    "expiring": "coverage expires soon after the scheduled work",
}


def decide(
    ctx: Context,
    request: dict[str, Any],
    snapshots: Snapshots | None = None,
    write_behind: WriteBehind | None = None,
    then: Callable[[Session, int, dict[str, Any]], None] | None = None,
) -> dict:
    """Decide, store the work order and the decision, audit it; returns the decision.

    A web worker passes its `snapshots` (sets, vendors' stored results, alternatives kept between
    requests) and its `write_behind` (the decision is stored within a moment, in a batch);
    without them everything is read afresh and the decision is stored before this returns.
    `then(session, work_order_id, decision)` runs in the same transaction as the stored decision
    (what must commit with it, such as a writeback); it needs the decision stored in the
    request, so not with `write_behind`."""
    if then is not None and write_behind is not None:
        raise ValueError("`then` runs with the stored decision: not with write_behind")
    snapshots = snapshots or Snapshots.uncached()

    def session() -> Session:
        return ctx.session

    # Behind a write-behind, a decision served from the snapshots touches no database: the
    # session is opened only if a snapshot must be rebuilt, and the caller closes it.
    with ctx.session.begin() if write_behind is None else nullcontext():
        sets = snapshots.get("requirement_sets", SETS_TABLES, lambda: load_sets(session()))
        vendor = snapshots.get(
            _vendor_key(request), VENDOR_TABLES, lambda: _vendor_view(session(), request)
        )
        requirement_set = None
        if vendor is UNKNOWN:
            vendor = None
            outcome = _unknown(_fails_open(session, request, snapshots))
            # Still worth naming who could take the work: the set the job itself calls for.
            wanted = _select(sets, request, risk_tier=None)
        elif not vendor.active:
            outcome = _verdict("block", None, None, [_reason("vendor_inactive")])
            wanted = None
        else:
            requirement_set = wanted = _select(sets, request, vendor.risk_tier)
            if requirement_set is None:
                outcome = _verdict("warn", None, None, [_reason("no_requirement_set")])
            else:
                outcome = _judge(_result_body(session, vendor, requirement_set, request))
        outcome["vendor_id"] = vendor.id if vendor else None
        outcome["requirement_set"] = requirement_set.key if requirement_set else None
        outcome["alternatives"] = (
            []
            if wanted is None
            else alternatives(
                session,
                wanted,
                [request["work_type"]],
                [request["region"]],
                request["scheduled_start"],
                request["scheduled_end"],
                exclude=outcome["vendor_id"],
                snapshots=snapshots,
            )
        )
        now = utcnow()
        decision = Decision(decision_id(now), now, ctx.actor, request, outcome)
        answer = {
            "decision": outcome["decision"],
            "vendor_id": outcome["vendor_id"],
            "status": outcome["status"],
            "score": outcome["score"],
            "requirement_set": outcome["requirement_set"],
            "reasons": outcome["reasons"],
            "alternatives": outcome["alternatives"],
            "decision_id": decision.id,
        }
        if write_behind is None:
            [work_order_id] = store(ctx.session, [decision])
            if then is not None:
                then(ctx.session, work_order_id, answer)
    if write_behind is not None:
        write_behind.add(store, decision)
    return answer


def decision_id(at: datetime) -> str:
    """A UUID version 7 (RFC 9562) as 32 hex digits: the time in milliseconds, then random bits.
    Ids that grow with time are appended to the unique index on `gate_decisions.uid` instead of
    landing on a random page of it, which made every decision dirty a page of its own (15 µs
    of a stored decision on SQLite)."""
    millis = int(at.timestamp() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits, of which 74 are used
    value = (
        (millis & (2**48 - 1)) << 80
        | 0x7 << 76  # version
        | (rand >> 68) << 64  # rand_a, 12 bits
        | 0b10 << 62  # variant
        | rand & (2**62 - 1)  # rand_b
    )
    return f"{value:032x}"


def _select(
    sets: list[RequirementSet], request: dict[str, Any], risk_tier: str | None
) -> RequirementSet | None:
    return select_requirement_set(
        sets,
        work_type=request["work_type"],
        region=request["region"],
        risk_tier=risk_tier,
        amount=request.get("amount"),
        on=request["scheduled_start"],
    )


class VendorView(NamedTuple):
    """What the gate needs of a vendor: its flags and its stored results by set key."""

    id: int
    active: bool
    risk_tier: str | None
    results: dict[str, Any]


def _vendor_key(request: dict[str, Any]) -> tuple:
    if request.get("vendor_id") is not None:
        return ("vendor", request["vendor_id"])
    return ("vendor", request["vendor"]["system"], request["vendor"]["external_id"])


#: What the snapshot keeps for a reference no vendor answers to (a miss is kept like a hit: a
#: vendor or binding written later changes the tables it was read from).
UNKNOWN = VendorView(0, False, None, {})


def _vendor_view(session: Session, request: dict[str, Any]) -> VendorView:
    """The vendor named by id or by external reference, with its stored results (one query);
    `UNKNOWN` when there is none."""
    connection = session.connection()
    if request.get("vendor_id") is not None:
        rows = connection.execute(_VIEW_BY_ID, {"vendor_id": request["vendor_id"]}).all()
    else:
        rows = connection.execute(_VIEW_BY_REF, request["vendor"]).all()
    if not rows:
        return UNKNOWN
    first = rows[0]
    # One reference may be bound to two vendors through two objects of a system (as
    # `find_by_ref` allows): like it, the lowest vendor id answers.
    results = {row.requirement_set: row for row in rows if row.id == first.id}
    results.pop(None, None)
    return VendorView(first.id, first.active, first.risk_tier, results)


def _fails_open(
    session: Callable[[], Session], request: dict[str, Any], snapshots: Snapshots
) -> bool:
    """Unknown vendors are blocked unless the connection they were named by fails open."""
    system = (request.get("vendor") or {}).get("system")
    if system is None:
        return False
    return snapshots.get(
        ("fails_open", system),
        ("connections",),
        lambda: bool(
            session().scalar(select(m.Connection.fail_open).where(m.Connection.name == system))
        ),
    )


def _unknown(fail_open: bool) -> dict[str, Any]:
    return _verdict("warn" if fail_open else "block", None, None, [_reason("unknown_vendor")])


def _reason(code: str, message: str | None = None) -> dict[str, str]:
    return {"code": code, "message": message or MESSAGES[code]}


def _verdict(decision: str, status: str | None, score: int | None, reasons: list) -> dict:
    return {"decision": decision, "status": status, "score": score, "reasons": reasons}


def _result_body(
    session: Callable[[], Session],
    vendor: VendorView,
    requirement_set: RequirementSet,
    request: dict[str, Any],
) -> dict[str, Any]:
    body, _ = stored_or_evaluated(
        session,
        vendor.id,
        vendor.results.get(requirement_set.key),
        requirement_set,
        request["scheduled_start"],
        request["scheduled_end"],
    )
    return body


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


def alternatives(
    session: Callable[[], Session],
    requirement_set: RequirementSet,
    work_types: Sequence[str],
    regions: Sequence[str],
    start: date,
    end: date,
    *,
    exclude: int | None = None,
    snapshots: Snapshots | None = None,
) -> list[dict[str, Any]]:
    """Compliant or expiring vendors for one of the work types and one of the regions whose
    stored result holds for the whole window, best score first. Kept in the worker's snapshot:
    a change made by another process shows here within `COI_SNAPSHOT_SECONDS`. `session` opens
    the session, when the snapshot must be built."""
    work_types, regions = tuple(sorted(work_types)), tuple(sorted(regions))
    key = ("alternatives", requirement_set.key, requirement_set.version, work_types, regions)
    ranked = (snapshots or Snapshots.uncached()).get(
        (*key, start, end),
        ALTERNATIVES_TABLES,
        lambda: _ranked(session(), requirement_set, work_types, regions, start, end),
    )
    # The ranked list holds every vendor of the trade and region: stop at the first few.
    return list(islice((alt for alt in ranked if alt["vendor_id"] != exclude), ALTERNATIVES))


def _ranked(
    session: Session,
    requirement_set: RequirementSet,
    work_types: tuple[str, ...],
    regions: tuple[str, ...],
    start: date,
    end: date,
) -> list[dict[str, Any]]:
    if not work_types or not regions:
        return []
    params = {
        "work_types": work_types,
        "regions": regions,
        "set_key": requirement_set.key,
        "set_version": requirement_set.version,
        "start": start,
        "end": end,
    }
    return [
        {"vendor_id": vid, "name": name, "score": score, "status": status}
        for vid, name, score, status in session.connection().execute(_RANKED, params)
    ]


class Decision(NamedTuple):
    """A decision as answered, waiting to be stored."""

    id: str
    at: datetime
    actor: str
    request: dict[str, Any]
    outcome: dict[str, Any]


def store(session: Session, decisions: list[Decision]) -> list[int]:
    """Upsert the decisions' work orders, insert the decisions and their audit events, and emit
    `gate.blocked` for the blocks: a few statements for the whole batch. Returns each decision's
    work order id."""
    connection = session.connection()
    orders = {}
    for d in decisions:
        ref = d.request["work_order"]
        # A work order gated twice in one batch is upserted once, as it was last gated.
        orders[ref["system"], ref["external_id"]] = {
            "system": ref["system"],
            "external_id": ref["external_id"],
            "vendor_id": d.outcome["vendor_id"],
            "work_type": d.request["work_type"],
            "region": d.request["region"],
            "scheduled_start": d.request["scheduled_start"],
            "scheduled_end": d.request["scheduled_end"],
            "amount": d.request.get("amount"),
            "created_at": d.at,
        }
    upsert, as_arrays = _UPSERT_WORK_ORDER[connection.dialect.name]
    rows = list(orders.values())
    params = {name: [row[name] for row in rows] for name in _ORDER_COLUMNS} if as_arrays else rows
    ids = {
        (system, external_id): work_order_id
        for work_order_id, system, external_id in connection.execute(upsert, params)
    }
    order_id = [
        ids[d.request["work_order"]["system"], d.request["work_order"]["external_id"]]
        for d in decisions
    ]
    insert_rows(
        connection,
        m.GateDecision.__table__,
        [
            {
                "uid": d.id,
                "work_order_id": work_order_id,
                "vendor_id": d.outcome["vendor_id"],
                "decision": d.outcome["decision"],
                "status": d.outcome["status"],
                "score": d.outcome["score"],
                "requirement_set": d.outcome["requirement_set"],
                "reasons": d.outcome["reasons"],
                "alternatives": d.outcome["alternatives"],
                "created_at": d.at,
            }
            for d, work_order_id in zip(decisions, order_id, strict=True)
        ],
    )
    audit.record_many(
        session,
        [
            audit.Event(
                d.actor,
                "gate.decision",
                "work_order",
                work_order_id,
                {
                    "decision_id": d.id,
                    "decision": d.outcome["decision"],
                    "vendor_id": d.outcome["vendor_id"],
                    "reasons": d.outcome["reasons"],
                },
                d.at,
            )
            for d, work_order_id in zip(decisions, order_id, strict=True)
        ],
    )
    emitter = events.Emitter(session)
    for d, work_order_id in zip(decisions, order_id, strict=True):
        events.gate_blocked(emitter, d.request, d.outcome, d.id, work_order_id)
    return order_id


# The hot path's statements are built once: building and keying a statement costs more than
# running it on an indexed lookup.
_r = m.ComplianceResult
_VIEW = select(
    m.Vendor.id,
    m.Vendor.active,
    m.Vendor.risk_tier,
    _r.requirement_set,
    _r.set_version,
    _r.as_of,
    _r.stable_until,
    _r.body,
).outerjoin(_r, _r.vendor_id == m.Vendor.id)
_VIEW_BY_ID = _VIEW.where(m.Vendor.id == bindparam("vendor_id")).order_by(m.Vendor.id)
_VIEW_BY_REF = (
    _VIEW.join(m.Binding, m.Binding.vendor_id == m.Vendor.id)
    .where(
        m.Binding.system == bindparam("system"),
        m.Binding.external_id == bindparam("external_id"),
    )
    .order_by(m.Vendor.id)
)
# The vendors of the trade and region (two indexed sets intersected) are matched while the set's
# results are walked from the best score down, so the walk stops after a handful.
_RANKED = (
    select(m.Vendor.id, m.Vendor.name, _r.score, _r.status)
    .join(_r, _r.vendor_id == m.Vendor.id)
    .where(
        _r.vendor_id.in_(
            select(m.VendorWorkType.vendor_id)
            .where(m.VendorWorkType.work_type.in_(bindparam("work_types", expanding=True)))
            .intersect(
                select(m.VendorRegion.vendor_id).where(
                    m.VendorRegion.region.in_(bindparam("regions", expanding=True))
                )
            )
        ),
        _r.requirement_set == bindparam("set_key"),
        _r.set_version == bindparam("set_version"),
        _r.status.in_(("compliant", "expiring")),
        _r.as_of <= bindparam("start"),
        (_r.stable_until.is_(None)) | (_r.stable_until >= bindparam("end")),
        m.Vendor.active.is_(True),
    )
    .order_by(_r.score.desc(), _r.vendor_id.desc())
    # One more than shown, so the vendor being gated can be left out afterwards.
    .limit(ALTERNATIVES + 1)
)


_ORDER_COLUMNS = (
    "system",
    "external_id",
    "vendor_id",
    "work_type",
    "region",
    "scheduled_start",
    "scheduled_end",
    "amount",
    "created_at",
)


def _upsert_work_order(dialect_insert, source=None) -> Any:
    """One statement, also when the same work order is gated concurrently: for executemany of
    the rows, or (with `source`) inserting what `source` selects."""
    stmt = dialect_insert(m.WorkOrder.__table__)
    if source is not None:
        stmt = stmt.from_select(_ORDER_COLUMNS, source)
    updated = ("vendor_id", "work_type", "region", "scheduled_start", "scheduled_end", "amount")
    return stmt.on_conflict_do_update(
        index_elements=["system", "external_id"],
        set_={name: stmt.excluded[name] for name in updated},
    ).returning(m.WorkOrder.id, m.WorkOrder.system, m.WorkOrder.external_id)


# PostgreSQL takes the batch as one array per column, unnested into rows: the statement's text
# is the same for every batch, so the driver parses and prepares it once, where an executemany
# with RETURNING is sent as one multi-row VALUES statement per batch size (its text parsed
# anew each time: ~50 µs a decision in batches of 150).
_ORDER_ARRAYS = select(
    *(
        func.unnest(bindparam(name, type_=ARRAY(m.WorkOrder.__table__.c[name].type))).label(name)
        for name in _ORDER_COLUMNS
    )
)
#: Dialect -> (statement, whether it takes the rows as arrays).
_UPSERT_WORK_ORDER = {
    "postgresql": (_upsert_work_order(postgresql.insert, _ORDER_ARRAYS), True),
    "sqlite": (_upsert_work_order(sqlite.insert), False),
}
