"""Status order and picking the worst of several results."""

from __future__ import annotations

from collections.abc import Sequence

from connector.compliance.model import Result

#: Higher is better: non_compliant < expiring < compliant.
STATUS_RANK: dict[str, int] = {"non_compliant": 0, "expiring": 1, "compliant": 2}


def worst(results: Sequence[Result]) -> Result:
    """The worst result: lowest status rank, then lowest score; the first of equals.

    Raises ValueError for an empty sequence.
    """
    if not results:
        raise ValueError("worst() of no results")
    return min(results, key=lambda r: (STATUS_RANK[r.status], r.score))
