"""Certificates of insurance (ACORD 25 shaped) and the policies they list."""

from __future__ import annotations

from typing import Any

from connector.clock import utcnow
from connector.services import audit
from connector.services.cancellations import (
    apply_pending_notices,
    normalise_insurer,
    normalise_policy_number,
)
from connector.services.context import Context
from connector.services.vendors import get_vendor
from connector.storage import models as m


def add_certificate(ctx: Context, vendor_id: int, data: dict[str, Any]) -> m.Certificate:
    session = ctx.session
    with session.begin():
        vendor = get_vendor(session, vendor_id)
        cert = m.Certificate(
            vendor_id=vendor.id,
            producer=data.get("producer"),
            insured_name=data["insured"]["name"],
            holder_name=data["certificate_holder"]["name"],
            holder_address=data["certificate_holder"].get("address"),
            description_of_operations=data.get("description_of_operations"),
            received_at=data.get("received_at") or utcnow(),
            source=data.get("source", "api"),
        )
        cert.policies = [_policy(vendor.id, p) for p in data["policies"]]
        session.add(cert)
        session.flush()
        apply_pending_notices(session, cert.policies)
        audit.record(
            session,
            ctx.actor,
            "certificate.create",
            "certificate",
            cert.id,
            {
                "vendor_id": vendor.id,
                "source": cert.source,
                "policies": [p.policy_number for p in cert.policies],
            },
        )
        ctx.jobs.recompute(session, [vendor.id])
    return cert


def _policy(vendor_id: int, p: dict[str, Any]) -> m.Policy:
    limits = dict(p.get("limits") or {})
    statutory = bool(limits.pop("statutory", False))
    insurer = p["insurer"]
    return m.Policy(
        vendor_id=vendor_id,
        line=p["line"],
        policy_number=p["policy_number"],
        policy_number_norm=normalise_policy_number(p["policy_number"]),
        insurer_name=insurer["name"],
        insurer_name_norm=normalise_insurer(insurer["name"]),
        insurer_naic=insurer.get("naic"),
        am_best=insurer.get("am_best"),
        effective_date=p["effective_date"],
        expiration_date=p["expiration_date"],
        limits=limits,
        statutory=statutory,
        additional_insured=p.get("additional_insured", False),
        waiver_of_subrogation=p.get("waiver_of_subrogation", False),
        primary_noncontributory=p.get("primary_noncontributory", False),
        claims_made=p.get("claims_made", False),
    )


def render(cert: m.Certificate) -> dict[str, Any]:
    return {
        "id": cert.id,
        "vendor_id": cert.vendor_id,
        "received_at": cert.received_at.isoformat(),
        "source": cert.source,
        "certificate_holder": {"name": cert.holder_name, "address": cert.holder_address},
        "policies": [
            {
                "id": p.id,
                "line": p.line,
                "policy_number": p.policy_number,
                "effective_date": p.effective_date.isoformat(),
                "expiration_date": p.expiration_date.isoformat(),
                "cancelled_on": p.cancelled_on.isoformat() if p.cancelled_on else None,
            }
            for p in cert.policies
        ],
    }
