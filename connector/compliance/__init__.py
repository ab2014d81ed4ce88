"""The pure compliance engine: policies and a requirement set in, a result out.

No I/O, no clock: every date is an argument. The rules are documented for compliance staff in
docs/compliance-rules.md.
"""

from connector.compliance.engine import evaluate
from connector.compliance.holder import holder_matches, normalise_holder
from connector.compliance.model import (
    DEFICIENCY_CODES,
    LIMIT_KEYS,
    LINES,
    SEVERITIES,
    STATUSES,
    AppliesTo,
    CoverageRequirement,
    Deficiency,
    Policy,
    RenewalRecord,
    RequirementSet,
    Result,
    Waiver,
)
from connector.compliance.ratings import AM_BEST_ORDER, rating_at_least, rating_rank
from connector.compliance.selection import (
    admitting,
    current_versions,
    select_requirement_set,
    sets_for_vendor,
)
from connector.compliance.status import STATUS_RANK, worst

__all__ = [
    "AM_BEST_ORDER",
    "DEFICIENCY_CODES",
    "LIMIT_KEYS",
    "LINES",
    "SEVERITIES",
    "STATUSES",
    "STATUS_RANK",
    "AppliesTo",
    "CoverageRequirement",
    "Deficiency",
    "Policy",
    "RenewalRecord",
    "RequirementSet",
    "Result",
    "Waiver",
    "admitting",
    "current_versions",
    "evaluate",
    "holder_matches",
    "normalise_holder",
    "rating_at_least",
    "rating_rank",
    "select_requirement_set",
    "sets_for_vendor",
    "worst",
]
