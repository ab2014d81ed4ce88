"""Where the network stands: counts by status and a table of vendors, worst first."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from connector.storage import models as m

_ORDER = case((m.Vendor.status == "non_compliant", 0), (m.Vendor.status == "expiring", 1), else_=2)


def status_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(m.Vendor.status, func.count()).where(m.Vendor.active).group_by(m.Vendor.status)
    )
    return {status or "no_requirements": count for status, count in rows}


def print_summary(session: Session, echo: Callable[[str], None], limit: int = 100) -> None:
    counts = status_counts(session)
    total = sum(counts.values())
    echo(f"\n{'status':<16}{'vendors':>8}{'share':>8}")
    for status in ("compliant", "expiring", "non_compliant", "no_requirements"):
        if status in counts:
            echo(f"{status:<16}{counts[status]:>8}{counts[status] / total:>8.0%}")
    echo(f"{'total':<16}{total:>8}\n")
    results = {
        r.vendor_id: r
        for r in session.scalars(select(m.ComplianceResult).order_by(m.ComplianceResult.score))
    }
    vendors = session.scalars(
        select(m.Vendor).where(m.Vendor.active).order_by(_ORDER, m.Vendor.score, m.Vendor.name)
    ).all()
    echo(f"{'vendor':<40}{'status':<15}{'score':>6}  {'expires':<11} first deficiency")
    for vendor in vendors[:limit]:
        result = results.get(vendor.id)
        first = ""
        if result is not None and result.body["deficiencies"]:
            first = result.body["deficiencies"][0]["message"]
        echo(
            f"{vendor.name[:39]:<40}{vendor.status or '-':<15}{vendor.score or 0:>6}  "
            f"{vendor.expires_on.isoformat() if vendor.expires_on else '-':<11} {first}"
        )
