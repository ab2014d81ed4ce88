"""A requirement set compiled once into the flat tuples the engine's hot loop reads.

Requirement sets are treated as immutable values: the compiled form is cached by object
identity (the services keep one `RequirementSet` object per stored version), so mutating a
set's `limits` or `severity` dicts after its first evaluation is not seen.
"""

from __future__ import annotations

from connector.compliance.holder import normalise_holder
from connector.compliance.model import DEFICIENCY_CODES, LINES, SEVERITIES, RequirementSet
from connector.compliance.ratings import rating_rank

UMBRELLA = "umbrella_liability"

#: Umbrella and excess policies are one coverage for requirements; every other line is itself.
GROUP_OF_LINE: dict[str, str] = {line: line for line in LINES}
GROUP_OF_LINE["excess_liability"] = UMBRELLA

#: Which umbrella/excess limit tops up which limit of an underlying line
#: (0 = umbrella `each_occurrence`, 1 = umbrella `aggregate`).
TOP_UP: dict[str, dict[str, int]] = {
    "general_liability": {
        "each_occurrence": 0,
        "general_aggregate": 1,
        "products_completed_operations_aggregate": 1,
    },
    "automobile_liability": {"combined_single_limit": 0},
    "workers_compensation": {
        "el_each_accident": 0,
        "el_disease_each_employee": 0,
        "el_disease_policy_limit": 1,
    },
}

#: (Policy attribute, deficiency code) for each endorsement a requirement may demand.
FLAGS: tuple[tuple[str, str], ...] = (
    ("additional_insured", "additional_insured_missing"),
    ("waiver_of_subrogation", "waiver_of_subrogation_missing"),
    ("primary_noncontributory", "primary_noncontributory_missing"),
)


class LineRule:
    """One coverage requirement, flattened."""

    __slots__ = ("checks", "flags", "group", "label", "limits", "line", "statutory")

    def __init__(
        self,
        line: str,
        limits: tuple[tuple[str, int, int | None], ...],
        flags: tuple[tuple[str, str], ...],
        statutory: bool,
        checks: int,
    ) -> None:
        self.line = line
        self.group = GROUP_OF_LINE[line]
        self.label = line.replace("_", " ")
        #: (limit key, minimum, top-up index or None)
        self.limits = limits
        self.flags = flags
        self.statutory = statutory
        #: How many deficiencies this line can produce (presence, limits, flags, ...).
        self.checks = checks


class CompiledSet:
    __slots__ = (
        "duplicate_lines",
        "group_of",
        "holder",
        "holder_key",
        "key",
        "limit_keys",
        "min_am_best",
        "min_rank",
        "rules",
        "severity",
        "total_checks",
        "window",
    )

    def __init__(self, rs: RequirementSet) -> None:
        self.key = rs.key
        self.window = rs.expiring_window_days
        self.min_am_best = rs.min_am_best
        self.min_rank = None
        if rs.min_am_best is not None:
            self.min_rank = rating_rank(rs.min_am_best)
            if self.min_rank is None:
                raise ValueError(f"{rs.key}: unknown min_am_best {rs.min_am_best!r}")
        self.holder = rs.certificate_holder or None
        self.holder_key = normalise_holder(self.holder) if self.holder else None
        for code, level in rs.severity.items():
            if code not in DEFICIENCY_CODES or level not in SEVERITIES:
                raise ValueError(f"{rs.key}: bad severity {code!r}: {level!r}")
        self.severity = {code: rs.severity.get(code, "block") for code in DEFICIENCY_CODES}
        counted = {line for line in rs.umbrella_counts_toward if line in TOP_UP}
        rules = []
        needs_umbrella = False
        for req in rs.coverages:
            if req.line not in GROUP_OF_LINE:
                raise ValueError(f"{rs.key}: unknown coverage line {req.line!r}")
            top_up = TOP_UP[req.line] if req.line in counted else {}
            limits = tuple((key, minimum, top_up.get(key)) for key, minimum in req.limits.items())
            needs_umbrella = needs_umbrella or any(t is not None for _, _, t in limits)
            flags = tuple((attr, code) for attr, code in FLAGS if getattr(req, attr))
            checks = (
                1
                + len(limits)
                + len(flags)
                + req.statutory
                + (self.min_rank is not None)
                + (self.holder_key is not None)
            )
            rules.append(LineRule(req.line, limits, flags, req.statutory, checks))
        self.rules = tuple(rules)
        self.total_checks = sum(rule.checks for rule in rules)
        self.limit_keys = sum(len(rule.limits) for rule in rules)
        self.duplicate_lines = len({rule.line for rule in rules}) < len(rules)
        groups = {rule.group for rule in rules}
        if needs_umbrella:
            groups.add(UMBRELLA)
        #: Only policies of these lines can change a result; the rest are ignored.
        self.group_of = {line: g for line, g in GROUP_OF_LINE.items() if g in groups}


_cache: dict[int, tuple[RequirementSet, CompiledSet]] = {}
_CACHE_SIZE = 1024


def compiled(rs: RequirementSet) -> CompiledSet:
    hit = _cache.get(id(rs))
    if hit is not None and hit[0] is rs:
        return hit[1]
    result = CompiledSet(rs)
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[id(rs)] = (rs, result)
    return result
