"""Stored compliance results: building the engine's inputs from storage, recomputing, reading.

`recompute` is the only writer of `compliance_results` and of the vendor's denormalised status;
it works in batches (one query per table per batch) so a full re-evaluation stays fast.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from connector import collector
from connector.clock import utcnow
from connector.compliance import (
    admitting,
    current_versions,
    evaluate,
    sets_for_vendor,
)
from connector.compliance.model import Policy, RenewalRecord, RequirementSet, Result, Waiver
from connector.compliance.renewals import PolicyReceipt, renewal_record
from connector.services import events
from connector.services.outbox import Stager
from connector.services.requirements import load_sets
from connector.storage import models as m
from connector.storage.bulk import insert_rows, update_rows
from connector.storage.db import in_values

BATCH = 500
T = TypeVar("T")


@dataclass
class VendorInputs:
    """Everything the engine needs about one vendor."""

    policies: list[Policy] = field(default_factory=list)
    waivers: list[Waiver] = field(default_factory=list)
    renewals: RenewalRecord = field(default_factory=RenewalRecord)


def load_inputs(session: Session, vendor_ids: Sequence[int]) -> dict[int, VendorInputs]:
    inputs: dict[int, VendorInputs] = {vid: VendorInputs() for vid in vendor_ids}
    ratings = dict(session.execute(select(m.Insurer.naic, m.Insurer.am_best)).all())
    receipts: dict[int, list[PolicyReceipt]] = defaultdict(list)
    rows = session.execute(
        select(m.Policy, m.Certificate.holder_name, m.Certificate.received_at)
        .join(m.Certificate, m.Certificate.id == m.Policy.certificate_id)
        .where(in_values(m.Policy.vendor_id, vendor_ids))
    )
    for p, holder, received_at in rows:
        inputs[p.vendor_id].policies.append(
            Policy(
                line=p.line,
                policy_number=p.policy_number,
                effective_date=p.effective_date,
                expiration_date=p.expiration_date,
                limits=p.limits,
                statutory=p.statutory,
                additional_insured=p.additional_insured,
                waiver_of_subrogation=p.waiver_of_subrogation,
                primary_noncontributory=p.primary_noncontributory,
                am_best=ratings.get(p.insurer_naic) or p.am_best,
                insurer_naic=p.insurer_naic,
                certificate_holder=holder,
                cancelled_on=p.cancelled_on,
            )
        )
        receipts[p.vendor_id].append(
            PolicyReceipt(
                p.line,
                p.policy_number_norm,
                p.effective_date,
                p.expiration_date,
                received_at.date(),
            )
        )
    for vid, vendor_receipts in receipts.items():
        inputs[vid].renewals = renewal_record(vendor_receipts)
    waivers = session.scalars(
        select(m.Waiver).where(
            in_values(m.Waiver.vendor_id, vendor_ids), m.Waiver.revoked_at.is_(None)
        )
    )
    for w in waivers:
        inputs[w.vendor_id].waivers.append(Waiver(code=w.code, line=w.line, until=w.until, id=w.id))
    return inputs


def evaluate_vendor(
    inputs: VendorInputs, requirement_set: RequirementSet, as_of: date, until: date | None = None
) -> Result:
    return evaluate(
        inputs.policies,
        requirement_set,
        as_of,
        until,
        waivers=inputs.waivers,
        renewals=inputs.renewals,
    )


def applicable_sets(
    sets: Iterable[RequirementSet], vendor: m.Vendor, on: date
) -> list[RequirementSet]:
    return sets_for_vendor(
        sets,
        work_types=[w.work_type for w in vendor.work_types],
        regions=[r.region for r in vendor.regions],
        risk_tier=vendor.risk_tier,
        on=on,
    )


def recompute(session: Session, vendor_ids: Iterable[int], today: date) -> int:
    """Re-evaluate these vendors against their applicable sets as of `today` and store it.

    Runs inside the caller's transaction. Returns how many vendors it evaluated.
    """
    current = current_versions(load_sets(session), today)
    stager = Stager(session)
    emitter = events.Emitter(session)
    ids = sorted(set(vendor_ids))
    nothing_on_file: dict[tuple[str, int], _Evaluated] = {}
    applicable: dict[tuple[Any, ...], list[RequirementSet]] = {}
    inserts = _Inserts()
    done = 0
    for start in range(0, len(ids), BATCH):
        with collector.paused():  # the batch's rows outlive young collections
            chunk = ids[start : start + BATCH]
            vendors = _load_vendors(session, chunk)
            headlines = {v.id: (v.status, v.score, v.expires_on) for v in vendors}
            stager.prefetch(vendors)
            inputs = load_inputs(session, chunk)
            stored = {
                (r.vendor_id, r.requirement_set): r
                for r in session.scalars(
                    select(m.ComplianceResult).where(in_values(m.ComplianceResult.vendor_id, chunk))
                )
            }
            now = utcnow()  # one instant per batch: its rows were computed together
            for vendor in vendors:
                evaluated = [
                    (s, _evaluate(inputs[vendor.id], s, today, nothing_on_file))
                    for s in _applicable(current, vendor, applicable)
                ]
                before = events.headline_state(vendor.status, vendor.score, vendor.expires_on)
                body = _store(session, vendor, evaluated, stored, inserts, now)
                stager.stage(vendor, body)
                events.compliance_changed(emitter, vendor, before, body)
                done += 1
            inserts.write(session)
            stager.write()
            _write_headlines(session, vendors, headlines)
    session.flush()
    return done


@dataclass(eq=False)
class _VendorRow:
    """What a recompute reads and writes of one vendor, as plain values: loading vendors as ORM
    objects with their collections, and flushing them, was most of a large recompute's cost.
    The attributes are the model's, so `applicable_sets`, the outbox and events read it as
    they read a `Vendor`; work types, regions and bindings are rows of their tables."""

    id: int
    name: str
    risk_tier: str | None
    status: str | None
    score: int | None
    expires_on: date | None
    work_types: list[Any] = field(default_factory=list)
    regions: list[Any] = field(default_factory=list)
    bindings: list[Any] = field(default_factory=list)


def _load_vendors(session: Session, ids: Sequence[int]) -> list[_VendorRow]:
    v = m.Vendor.__table__
    vendors = {
        r.id: _VendorRow(r.id, r.name, r.risk_tier, r.status, r.score, r.expires_on)
        for r in session.execute(
            select(v.c.id, v.c.name, v.c.risk_tier, v.c.status, v.c.score, v.c.expires_on)
            .where(in_values(v.c.id, ids))
            .order_by(v.c.id)
        )
    }
    for model, attr, order in (
        (m.VendorWorkType, "work_types", "work_type"),
        (m.VendorRegion, "regions", "region"),
        (m.Binding, "bindings", "id"),
    ):
        table = model.__table__
        rows = session.execute(
            select(table).where(in_values(table.c.vendor_id, ids)).order_by(table.c[order])
        )
        for row in rows:
            getattr(vendors[row.vendor_id], attr).append(row)
    return list(vendors.values())


def _write_headlines(
    session: Session, vendors: list[_VendorRow], before: dict[int, tuple[Any, ...]]
) -> None:
    """Store the headlines that changed, in one statement; a `Vendor` of this session (the
    caller's) sees the new values too."""
    changed = [
        {"id": v.id, "status": v.status, "score": v.score, "expires_on": v.expires_on}
        for v in vendors
        if (v.status, v.score, v.expires_on) != before[v.id]
    ]
    if not changed:
        return
    update_rows(session, m.Vendor.__table__, changed)
    for values in changed:
        loaded = session.identity_map.get(identity_key(m.Vendor, values["id"]))
        if loaded is not None:
            for name in ("status", "score", "expires_on"):
                set_committed_value(loaded, name, values[name])


@dataclass
class _Inserts:
    """New result and history rows of a recompute batch, inserted together (no ORM objects:
    a first sync adds two rows per vendor, and building and flushing objects was most of its
    cost)."""

    results: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    def write(self, session: Session) -> None:
        insert_rows(session, m.ComplianceResult.__table__, self.results)
        insert_rows(session, m.ComplianceHistory.__table__, self.history)
        self.results, self.history = [], []


def _applicable(
    current: list[RequirementSet],
    vendor: _VendorRow,
    seen: dict[tuple[Any, ...], list[RequirementSet]],
) -> list[RequirementSet]:
    """`applicable_sets` among the `current` versions, chosen once per combination of work
    types, regions and risk tier."""
    work_types = [w.work_type for w in vendor.work_types]
    regions = [r.region for r in vendor.regions]
    key = (*work_types, None, *regions, None, vendor.risk_tier)
    found = seen.get(key)
    if found is None:
        found = seen[key] = admitting(
            current, work_types=work_types, regions=regions, risk_tier=vendor.risk_tier
        )
    return found


class _Evaluated(NamedTuple):
    """A result with its stored body (`Result.to_dict()`), made once. Vendors that share a
    result share this too: nothing downstream changes a body."""

    result: Result
    body: dict[str, Any]


def _evaluate(
    inputs: VendorInputs,
    requirement_set: RequirementSet,
    today: date,
    nothing_on_file: dict[tuple[str, int], _Evaluated],
) -> _Evaluated:
    """`evaluate_vendor` as of `today`. Vendors with no policy and no waiver (every vendor a
    first sync brings in) all get the same result from the pure engine: evaluated once per set
    and kept in `nothing_on_file`."""
    shared = not (inputs.policies or inputs.waivers)
    key = (requirement_set.key, requirement_set.version)
    if shared and key in nothing_on_file:
        return nothing_on_file[key]
    result = evaluate_vendor(inputs, requirement_set, today)
    made = _Evaluated(result, result.to_dict())
    if shared:
        nothing_on_file[key] = made
    return made


def _store(
    session: Session,
    vendor: _VendorRow,
    evaluated: list[tuple[RequirementSet, _Evaluated]],
    stored: dict[tuple[int, str], m.ComplianceResult],
    inserts: _Inserts,
    now: datetime,
) -> dict[str, Any] | None:
    """Store the results computed at `now` (new rows through `inserts`), drop those of sets
    that no longer apply, update the vendor's headline; returns the headline result's body."""
    keep = set()
    for requirement_set, (result, body) in evaluated:
        keep.add(result.requirement_set)
        row = stored.get((vendor.id, result.requirement_set))
        if row is None:
            inserts.results.append(
                {
                    "vendor_id": vendor.id,
                    "requirement_set": result.requirement_set,
                    "set_version": requirement_set.version,
                    "as_of": result.as_of,
                    "until": result.until,
                    "status": result.status,
                    "score": result.score,
                    "expires_on": result.expires_on,
                    "stable_until": result.stable_until,
                    "body": body,
                    "computed_at": now,
                }
            )
            inserts.history.append(_history_row(vendor.id, result, body, now))
            continue
        changed = (
            row.status != result.status
            or row.score != result.score
            or (row.body or {}).get("deficiencies") != body["deficiencies"]
        )
        row.set_version = requirement_set.version
        row.as_of, row.until = result.as_of, result.until
        row.status, row.score = result.status, result.score
        row.expires_on, row.stable_until = result.expires_on, result.stable_until
        row.body, row.computed_at = body, now
        if changed:
            inserts.history.append(_history_row(vendor.id, result, body, now))
    gone = [key for (vid, key) in stored if vid == vendor.id and key not in keep]
    if gone:
        session.execute(
            delete(m.ComplianceResult).where(
                m.ComplianceResult.vendor_id == vendor.id,
                m.ComplianceResult.requirement_set.in_(gone),
            )
        )
    overall = headline(evaluated)
    vendor.status = overall.result.status if overall else None
    vendor.score = overall.result.score if overall else None
    vendor.expires_on = overall.result.expires_on if overall else None
    return overall.body if overall else None


def _history_row(
    vendor_id: int, result: Result, body: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "vendor_id": vendor_id,
        "requirement_set": result.requirement_set,
        "status": result.status,
        "score": result.score,
        "as_of": result.as_of,
        "body": body,
        "computed_at": now,
    }


def headline(evaluated: list[tuple[RequirementSet, T]]) -> T | None:
    """The vendor's headline result: that of the highest-priority applicable set that does not
    depend on a work order's amount (sets with `min_amount` only judge large jobs at the gate).

    `evaluated` is in `sets_for_vendor` order (priority first)."""
    for requirement_set, result in evaluated:
        if requirement_set.applies_to.min_amount is None:
            return result
    return evaluated[0][1] if evaluated else None


def stored_result_usable(
    row: m.ComplianceResult | None, requirement_set: RequirementSet, start: date, end: date
) -> bool:
    """A stored result answers a window when it was made for the same set version, before the
    window starts, and nothing changes before the window ends."""
    return (
        row is not None
        and row.set_version == requirement_set.version
        and row.as_of <= start
        and (row.stable_until is None or end <= row.stable_until)
    )


def stored_or_evaluated(
    session: Callable[[], Session],
    vendor_id: int,
    stored: Any,
    requirement_set: RequirementSet,
    start: date,
    end: date,
) -> tuple[dict[str, Any], bool]:
    """The stored result's body when it holds for the window, else the vendor evaluated now;
    and whether it was evaluated now. `session` opens the session, only for an evaluation."""
    if stored_result_usable(stored, requirement_set, start, end):
        return stored.body, False
    inputs = load_inputs(session(), [vendor_id])[vendor_id]
    return evaluate_vendor(inputs, requirement_set, start, end).to_dict(), True


def vendor_compliance(
    session: Session,
    vendor: m.Vendor,
    requirement_set_key: str | None,
    as_of: date,
    until: date | None,
) -> dict[str, Any]:
    """Results for one vendor over a window: stored ones where they still hold, else evaluated."""
    sets = load_sets(session)
    chosen = applicable_sets(sets, vendor, as_of)
    if requirement_set_key is not None:
        chosen = [s for s in current_versions(sets, as_of) if s.key == requirement_set_key]
    end = until or as_of
    stored = {
        r.requirement_set: r
        for r in session.scalars(
            select(m.ComplianceResult).where(m.ComplianceResult.vendor_id == vendor.id)
        )
    }
    inputs = None
    bodies: list[tuple[RequirementSet, dict[str, Any]]] = []
    for s in chosen:
        row = stored.get(s.key)
        if stored_result_usable(row, s, as_of, end) and row.as_of == as_of and row.until == end:
            bodies.append((s, row.body))
            continue
        if inputs is None:
            inputs = load_inputs(session, [vendor.id])[vendor.id]
        bodies.append((s, evaluate_vendor(inputs, s, as_of, end).to_dict()))
    overall = headline(bodies)
    return {
        "vendor_id": vendor.id,
        "as_of": as_of.isoformat(),
        "until": end.isoformat(),
        "status": overall["status"] if overall else None,
        "score": overall["score"] if overall else None,
        "results": [{"vendor_id": vendor.id, **b} for _, b in bodies],
    }
