"""Plain data the compliance engine reads and returns.

The engine is pure: these records carry everything it needs, so callers (services, the gate,
benchmarks) turn stored rows into them and the engine never touches storage or the clock.
Money is whole currency units; dates are calendar dates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

LINES = (
    "general_liability",
    "automobile_liability",
    "umbrella_liability",
    "excess_liability",
    "workers_compensation",
    "professional_liability",
    "pollution_liability",
    "cyber_liability",
    "property",
)

_OTHER_LINE_LIMITS = ("each_claim", "each_occurrence", "aggregate")

#: Limit keys each coverage line may carry (ACORD 25 names). `statutory` is a flag, not an amount.
LIMIT_KEYS: dict[str, tuple[str, ...]] = {
    "general_liability": (
        "each_occurrence",
        "damage_to_rented_premises",
        "medical_expense",
        "personal_advertising_injury",
        "general_aggregate",
        "products_completed_operations_aggregate",
    ),
    "automobile_liability": (
        "combined_single_limit",
        "bodily_injury_per_person",
        "bodily_injury_per_accident",
        "property_damage",
    ),
    "umbrella_liability": ("each_occurrence", "aggregate"),
    "excess_liability": ("each_occurrence", "aggregate"),
    "workers_compensation": (
        "el_each_accident",
        "el_disease_each_employee",
        "el_disease_policy_limit",
    ),
    "professional_liability": _OTHER_LINE_LIMITS,
    "pollution_liability": _OTHER_LINE_LIMITS,
    "cyber_liability": _OTHER_LINE_LIMITS,
    "property": _OTHER_LINE_LIMITS,
}

DEFICIENCY_CODES = (
    "no_certificate",
    "missing_coverage",
    "limit_below_minimum",
    "not_yet_effective",
    "expired",
    "cancelled",
    "additional_insured_missing",
    "waiver_of_subrogation_missing",
    "primary_noncontributory_missing",
    "insurer_rating_below_minimum",
    "certificate_holder_mismatch",
)

SEVERITIES = ("block", "warn")
STATUSES = ("compliant", "expiring", "non_compliant")


@dataclass(frozen=True, slots=True)
class Policy:
    """One policy as listed on a certificate, with what the service resolved around it."""

    line: str
    policy_number: str
    effective_date: date
    expiration_date: date
    limits: dict[str, int] = field(default_factory=dict)
    statutory: bool = False
    additional_insured: bool = False
    waiver_of_subrogation: bool = False
    primary_noncontributory: bool = False
    #: A.M. Best rating resolved by the caller (table by NAIC code, else the certificate's own).
    am_best: str | None = None
    insurer_naic: str | None = None
    #: Certificate holder named on the certificate that carries this policy.
    certificate_holder: str | None = None
    #: Effective date of the earliest cancellation notice matched to this policy.
    cancelled_on: date | None = None


@dataclass(frozen=True, slots=True)
class CoverageRequirement:
    line: str
    limits: dict[str, int] = field(default_factory=dict)
    additional_insured: bool = False
    waiver_of_subrogation: bool = False
    primary_noncontributory: bool = False
    statutory: bool = False


@dataclass(frozen=True, slots=True)
class AppliesTo:
    """Empty collections mean "any"; `min_amount` is in cents, compared with work-order amounts."""

    work_types: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    risk_tiers: frozenset[str] = frozenset()
    min_amount: int | None = None


@dataclass(frozen=True, slots=True)
class RequirementSet:
    key: str
    name: str
    coverages: tuple[CoverageRequirement, ...] = ()
    applies_to: AppliesTo = AppliesTo()
    priority: int = 0
    version: int = 1
    expiring_window_days: int = 30
    certificate_holder: str | None = None
    min_am_best: str | None = None
    umbrella_counts_toward: frozenset[str] = frozenset()
    #: Deficiency code -> "block" | "warn"; codes not named default to "block".
    severity: dict[str, str] = field(default_factory=dict)
    effective_from: date | None = None


@dataclass(frozen=True, slots=True)
class Waiver:
    """Suppresses one deficiency code (on one line, or on any line when `line` is None)."""

    code: str
    line: str | None = None
    until: date | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class RenewalRecord:
    """How often the vendor's renewals arrived before the old policy expired (from history)."""

    timely: int = 0
    late: int = 0


@dataclass(frozen=True, slots=True)
class Deficiency:
    code: str
    line: str | None
    field: str | None
    required: Any
    actual: Any
    severity: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "line": self.line,
            "field": self.field,
            "required": _jsonable(self.required),
            "actual": _jsonable(self.actual),
            "severity": self.severity,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Result:
    requirement_set: str
    as_of: date
    until: date
    status: str
    score: int
    score_parts: dict[str, float]
    expires_on: date | None
    deficiencies: tuple[Deficiency, ...]
    waived: tuple[Deficiency, ...] = ()
    #: Last day from `as_of` on which status and deficiencies stay as they are (None: no change
    #: ahead). A stored result answers any window inside [as_of, stable_until] without evaluating.
    stable_until: date | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "requirement_set": self.requirement_set,
            "as_of": self.as_of.isoformat(),
            "until": self.until.isoformat(),
            "status": self.status,
            "score": self.score,
            "score_parts": dict(self.score_parts),
            "expires_on": _jsonable(self.expires_on),
            "deficiencies": [d.to_dict() for d in self.deficiencies],
            "waived": [d.to_dict() for d in self.waived],
            "stable_until": _jsonable(self.stable_until),
        }


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value
