"""The compliance score (0-100) and its parts.

Two bands that never overlap, so every compliant or expiring vendor ranks above every
non-compliant one:

* non-compliant: ``base`` = floor(40 x passed checks / total checks), 0 without a certificate;
* compliant / expiring: ``base`` 50 + ``margin`` (0-20) + ``time_left`` (0-20) +
  ``timeliness`` (0-10) + ``warnings`` (-5 per open warning, never taking the total below 50).

The parts are returned as floats and their sum, rounded half up, is the score.
"""

from __future__ import annotations

from math import floor

from connector.compliance.model import RenewalRecord

NON_COMPLIANT_MAX = 40
COMPLIANT_BASE = 50
MARGIN_MAX = 20
#: Margin part when the requirement set names no limits at all.
MARGIN_WITHOUT_LIMITS = 10
#: A limit at or above this multiple of its minimum earns the full margin for that key.
MARGIN_CAP_RATIO = 2
TIME_LEFT_MAX = 20
TIME_HORIZON_DAYS = 365
TIMELINESS_MAX = 10
WARNING_PENALTY = 5

PART_NAMES = ("base", "margin", "time_left", "timeliness", "warnings")


def key_margin(actual: int | None, required: int) -> float:
    """One limit key's margin term in [0, 1]: ``min(actual / required, 2) - 1``.

    A limit short of its minimum (only possible when that shortfall is waived or a warning)
    counts 0. A minimum of zero or less is met by any positive amount with the full term.
    """
    if actual is None:
        return 0.0
    if required <= 0:
        return 1.0 if actual > 0 else 0.0
    if actual <= required:
        return 0.0
    ratio = actual / required
    return 1.0 if ratio >= MARGIN_CAP_RATIO else ratio - 1.0


def timeliness(renewals: RenewalRecord) -> float:
    """``10 x (timely + 1) / (timely + late + 2)``: 5 with no history, towards 10 when punctual."""
    timely = max(renewals.timely, 0)
    late = max(renewals.late, 0)
    return TIMELINESS_MAX * (timely + 1) / (timely + late + 2)


def non_compliant_score(passed: int, total: int) -> tuple[int, dict[str, float]]:
    """``floor(40 x passed / total)``; 0 when there is nothing to pass (no certificate)."""
    base = (NON_COMPLIANT_MAX * passed) // total if total > 0 and passed > 0 else 0
    parts = {
        "base": float(base),
        "margin": 0.0,
        "time_left": 0.0,
        "timeliness": 0.0,
        "warnings": 0.0,
    }
    return base, parts


def compliant_score(
    margin_sum: float,
    limit_keys: int,
    days_left: int | None,
    timeliness_part: float,
    warnings: int,
) -> tuple[int, dict[str, float]]:
    """Score of a compliant or expiring day.

    `margin_sum` is the sum of `key_margin` over the set's `limit_keys` required limits;
    `days_left` is None when no required policy runs out (nothing in force to expire).
    """
    margin = MARGIN_MAX * margin_sum / limit_keys if limit_keys else float(MARGIN_WITHOUT_LIMITS)
    if days_left is None or days_left >= TIME_HORIZON_DAYS:
        time_left = float(TIME_LEFT_MAX)
    else:
        time_left = TIME_LEFT_MAX * max(days_left, 0) / TIME_HORIZON_DAYS
    earned = margin + time_left + timeliness_part
    penalty = -float(min(WARNING_PENALTY * warnings, earned)) if warnings else 0.0
    parts = {
        "base": float(COMPLIANT_BASE),
        "margin": margin,
        "time_left": time_left,
        "timeliness": timeliness_part,
        "warnings": penalty,
    }
    total = COMPLIANT_BASE + margin + time_left + timeliness_part + penalty
    return max(COMPLIANT_BASE, floor(total + 0.5)), parts
