"""Vendors: upsert by external reference, lookups, listing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from connector.errors import APIError, NotFound
from connector.services import audit
from connector.services.context import Context
from connector.services.paging import paginate
from connector.storage import models as m


def upsert_vendor(ctx: Context, data: dict[str, Any]) -> tuple[m.Vendor, bool]:
    """Create a vendor, or update the one its external references are already bound to.

    Returns (vendor, created). References bound to two different vendors are a conflict.
    """
    session = ctx.session
    with session.begin():
        refs = data.get("external_refs") or []
        bound = {b.vendor_id for b in _bindings_for(session, refs)}
        if len(bound) > 1:
            raise APIError(
                409,
                "conflict",
                "the external references belong to different vendors",
                {"external_refs": [f"bound to vendors {sorted(bound)}"]},
            )
        vendor = session.get(m.Vendor, bound.pop()) if bound else None
        created = vendor is None
        if created:
            vendor = m.Vendor(name=data["name"])
            session.add(vendor)
        apply_fields(vendor, data)
        vendor.active, vendor.deactivated_by = True, None
        session.flush()
        known = {(b.system, b.external_id) for b in vendor.bindings}
        for ref in refs:
            if (ref["system"], ref["external_id"]) not in known:
                session.add(
                    m.Binding(
                        system=ref["system"],
                        object="vendor",
                        external_id=ref["external_id"],
                        vendor_id=vendor.id,
                    )
                )
        session.flush()
        audit.record(
            session,
            ctx.actor,
            "vendor.create" if created else "vendor.update",
            "vendor",
            vendor.id,
            {"name": vendor.name, "external_refs": refs},
        )
        ctx.jobs.recompute(session, [vendor.id])
    session.refresh(vendor)
    return vendor, created


#: Vendor columns a canonical vendor record sets as they are.
SCALAR_FIELDS = ("name", "email", "tax_id", "risk_tier")


def tag_values(values: Iterable[str]) -> list[str]:
    """Work types or regions as stored: unique, sorted."""
    return sorted(set(values))


def apply_fields(vendor: m.Vendor, data: dict[str, Any]) -> None:
    """Set the vendor fields `data` carries (validated canonical vendor fields); others stay."""
    for name in SCALAR_FIELDS:
        if name in data:
            setattr(vendor, name, data[name])
    if "work_types" in data:
        wanted_types = tag_values(data["work_types"])
        if [w.work_type for w in vendor.work_types] != wanted_types:
            vendor.work_types = [m.VendorWorkType(work_type=w) for w in wanted_types]
    if "regions" in data:
        wanted_regions = tag_values(data["regions"])
        if [r.region for r in vendor.regions] != wanted_regions:
            vendor.regions = [m.VendorRegion(region=r) for r in wanted_regions]


def _bindings_for(session: Session, refs: list[dict[str, str]]) -> list[m.Binding]:
    if not refs:
        return []
    clauses = [
        (m.Binding.system == r["system"]) & (m.Binding.external_id == r["external_id"])
        for r in refs
    ]
    return list(session.scalars(select(m.Binding).where(or_(*clauses))))


def find_by_ref(session: Session, system: str, external_id: str) -> m.Vendor | None:
    return session.scalar(
        select(m.Vendor)
        .join(m.Binding, m.Binding.vendor_id == m.Vendor.id)
        .where(m.Binding.system == system, m.Binding.external_id == external_id)
    )


def get_vendor(session: Session, vendor_id: int) -> m.Vendor:
    vendor = session.get(m.Vendor, vendor_id)
    if vendor is None:
        raise NotFound("vendor", vendor_id)
    return vendor


def render(vendor: m.Vendor) -> dict[str, Any]:
    return {
        "id": vendor.id,
        "name": vendor.name,
        "email": vendor.email,
        "tax_id": vendor.tax_id,
        "work_types": [w.work_type for w in vendor.work_types],
        "regions": [r.region for r in vendor.regions],
        "risk_tier": vendor.risk_tier,
        "active": vendor.active,
        "status": vendor.status,
        "score": vendor.score,
        "expires_on": vendor.expires_on.isoformat() if vendor.expires_on else None,
        "external_refs": [
            {"system": b.system, "external_id": b.external_id} for b in vendor.bindings
        ],
        "created_at": vendor.created_at.isoformat() if vendor.created_at else None,
    }


def list_vendors(session: Session, query: dict[str, Any]) -> dict[str, Any]:
    stmt = select(m.Vendor)
    if query.get("status"):
        stmt = stmt.where(m.Vendor.status == query["status"])
    if query.get("work_type"):
        stmt = stmt.where(
            m.Vendor.id.in_(
                select(m.VendorWorkType.vendor_id).where(
                    m.VendorWorkType.work_type == query["work_type"].strip().lower()
                )
            )
        )
    if query.get("region"):
        stmt = stmt.where(
            m.Vendor.id.in_(
                select(m.VendorRegion.vendor_id).where(
                    m.VendorRegion.region == query["region"].strip().lower()
                )
            )
        )
    if query.get("q"):
        like = "%" + _escape_like(query["q"].strip().lower()) + "%"
        stmt = stmt.where(
            or_(
                m.Vendor.name.ilike(like, escape="\\"),
                m.Vendor.email.ilike(like, escape="\\"),
                m.Vendor.tax_id.ilike(like, escape="\\"),
            )
        )
    return paginate(session, stmt.order_by(m.Vendor.id), query, render)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
