"""Which requirement set applies: to a work order (`select_requirement_set`) or to a vendor
(`sets_for_vendor`).

Sets are versioned: for each key only the *current* version on a date counts, i.e. the highest
`version` whose `effective_from` is empty or on/before that date. A future-dated version takes
over on its `effective_from` day. Matching is done on the current version only, so an older
version never answers for a key whose current version no longer applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from connector.compliance.model import RequirementSet


def current_versions(sets: Iterable[RequirementSet], on: date) -> list[RequirementSet]:
    """The version of each key in force on `on`, in key order."""
    best: dict[str, RequirementSet] = {}
    for rs in sets:
        if rs.effective_from is not None and rs.effective_from > on:
            continue
        held = best.get(rs.key)
        if held is None or rs.version > held.version:
            best[rs.key] = rs
    return [best[key] for key in sorted(best)]


def _admits(allowed: frozenset[str], value: str | None) -> bool:
    return not allowed or value in allowed


def _admits_any(allowed: frozenset[str], values: frozenset[str]) -> bool:
    return not allowed or not allowed.isdisjoint(values)


def select_requirement_set(
    sets: Iterable[RequirementSet],
    *,
    work_type: str | None,
    region: str | None,
    risk_tier: str | None,
    amount: int | None,
    on: date,
) -> RequirementSet | None:
    """The set for one piece of work: the current versions whose `applies_to` admits the work
    type, region, risk tier and amount (empty = any; a set with `min_amount` needs an amount of
    at least that), highest `priority` first, ties by key ascending. None when nothing applies.
    """
    chosen: RequirementSet | None = None
    for rs in current_versions(sets, on):  # key order: the first of equal priority wins
        scope = rs.applies_to
        if not (
            _admits(scope.work_types, work_type)
            and _admits(scope.regions, region)
            and _admits(scope.risk_tiers, risk_tier)
        ):
            continue
        if scope.min_amount is not None and (amount is None or amount < scope.min_amount):
            continue
        if chosen is None or rs.priority > chosen.priority:
            chosen = rs
    return chosen


def sets_for_vendor(
    sets: Iterable[RequirementSet],
    *,
    work_types: Iterable[str],
    regions: Iterable[str],
    risk_tier: str | None,
    on: date,
) -> list[RequirementSet]:
    """Every current set that could apply to some work of this vendor: its `applies_to` admits
    one of the vendor's work types, one of its regions and its risk tier (`min_amount` is
    ignored: any amount may come). Highest priority first, then key ascending."""
    return admitting(
        current_versions(sets, on), work_types=work_types, regions=regions, risk_tier=risk_tier
    )


def admitting(
    current: Iterable[RequirementSet],
    *,
    work_types: Iterable[str],
    regions: Iterable[str],
    risk_tier: str | None,
) -> list[RequirementSet]:
    """`sets_for_vendor` among sets already known to be the current versions (a recompute of
    many vendors picks those once)."""
    types = frozenset(work_types)
    places = frozenset(regions)
    found = [
        rs
        for rs in current
        if _admits_any(rs.applies_to.work_types, types)
        and _admits_any(rs.applies_to.regions, places)
        and _admits(rs.applies_to.risk_tiers, risk_tier)
    ]
    found.sort(key=lambda rs: (-rs.priority, rs.key))
    return found
