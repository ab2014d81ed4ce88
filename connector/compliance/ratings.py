"""A.M. Best financial strength ratings and their order.

`A++ > A+ > A > A- > B++ > B+ > B > B- > C++ > C+ > C > C- > D > E > F`. Anything else
(`None`, `NR`, an empty string, a typo) is *unknown*, and an unknown rating never meets a minimum.
"""

from __future__ import annotations

#: Worst first, so a rating's index is its rank (higher is better).
AM_BEST_ORDER: tuple[str, ...] = (
    "F",
    "E",
    "D",
    "C-",
    "C",
    "C+",
    "C++",
    "B-",
    "B",
    "B+",
    "B++",
    "A-",
    "A",
    "A+",
    "A++",
)

_RANK: dict[str, int] = {rating: rank for rank, rating in enumerate(AM_BEST_ORDER)}


def rating_rank(rating: str | None) -> int | None:
    """Rank of a rating (0 = `F` .. 14 = `A++`), or None when the rating is unknown.

    Surrounding whitespace and letter case are ignored (`" a- "` is `A-`).
    """
    if rating is None:
        return None
    rank = _RANK.get(rating)
    if rank is None:
        rank = _RANK.get(rating.strip().upper())
    return rank


def rating_at_least(actual: str | None, minimum: str) -> bool:
    """True when `actual` is `minimum` or better. An unknown `actual` is never enough.

    Raises ValueError when `minimum` itself is not a rating: that is a configuration error.
    """
    floor = rating_rank(minimum)
    if floor is None:
        raise ValueError(f"unknown A.M. Best rating {minimum!r}")
    rank = rating_rank(actual)
    return rank is not None and rank >= floor
