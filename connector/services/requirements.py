"""Requirement sets: versioned storage and conversion to the engine's records."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector.compliance.model import AppliesTo, CoverageRequirement, RequirementSet
from connector.services import audit
from connector.services.context import Context
from connector.storage.models import RequirementSetVersion, Vendor


def to_engine(row: RequirementSetVersion) -> RequirementSet:
    spec = row.spec
    applies = spec.get("applies_to") or {}
    return RequirementSet(
        key=row.key,
        name=row.name,
        version=row.version,
        priority=row.priority,
        effective_from=row.effective_from,
        applies_to=AppliesTo(
            work_types=frozenset(applies.get("work_types") or ()),
            regions=frozenset(applies.get("regions") or ()),
            risk_tiers=frozenset(applies.get("risk_tiers") or ()),
            min_amount=applies.get("min_amount"),
        ),
        expiring_window_days=spec.get("expiring_window_days", 30),
        certificate_holder=(spec.get("certificate_holder") or {}).get("name"),
        min_am_best=spec.get("min_am_best"),
        coverages=tuple(
            CoverageRequirement(
                line=c["line"],
                limits=dict(c.get("limits") or {}),
                additional_insured=c.get("additional_insured", False),
                waiver_of_subrogation=c.get("waiver_of_subrogation", False),
                primary_noncontributory=c.get("primary_noncontributory", False),
                statutory=c.get("statutory", False),
            )
            for c in spec["coverages"]
        ),
        umbrella_counts_toward=frozenset(spec.get("umbrella_counts_toward") or ()),
        severity=dict(spec.get("severity") or {}),
    )


def load_sets(session: Session) -> list[RequirementSet]:
    """Every stored version; the engine's selection picks the one in force on a date."""
    return [to_engine(row) for row in session.scalars(select(RequirementSetVersion))]


def put_set(ctx: Context, key: str, spec: dict[str, Any]) -> RequirementSetVersion:
    """Store a new version of set `key` and recompute every vendor's stored results."""
    session = ctx.session
    with session.begin():
        latest = session.scalar(
            select(func.max(RequirementSetVersion.version)).where(RequirementSetVersion.key == key)
        )
        stored_spec = _jsonable_spec(spec)
        row = RequirementSetVersion(
            key=key,
            version=(latest or 0) + 1,
            name=spec["name"],
            priority=spec.get("priority", 0),
            effective_from=spec.get("effective_from") or ctx.today,
            spec=stored_spec,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            ctx.actor,
            "requirement_set.put",
            "requirement_set",
            key,
            {"version": row.version, "effective_from": row.effective_from.isoformat()},
        )
        ctx.jobs.recompute(session, session.scalars(select(Vendor.id)).all())
    return row


def _jsonable_spec(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in spec.items()}


def render(row: RequirementSetVersion) -> dict[str, Any]:
    return {
        "key": row.key,
        "version": row.version,
        "effective_from": row.effective_from.isoformat(),
        "created_at": row.created_at.isoformat() if row.created_at else None,
        **{k: v for k, v in row.spec.items() if k != "effective_from"},
    }


def list_sets(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(RequirementSetVersion).order_by(
            RequirementSetVersion.key, RequirementSetVersion.version
        )
    )
    return [render(row) for row in rows]
