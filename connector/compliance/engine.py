"""`evaluate`: a vendor's policies against one requirement set over a window of days.

Pure: dates are arguments, nothing is read or written. Everything works on date ordinals.

How a window is evaluated without visiting every day: the deficiencies of a day depend only on
which policies are in force, which are cancelled and which waivers still run, and those change
only on *boundary* days (an effective, expiration or cancellation date, the day after a waiver
ends). Between two boundaries only `days_left` changes, and it only falls, so the status and the
score are worst on the last day of each such segment. The window's result is therefore the
combination of the results of the day before each boundary inside the window, plus `until`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from connector.compliance.holder import normalise_holder
from connector.compliance.model import (
    Deficiency,
    Policy,
    RenewalRecord,
    RequirementSet,
    Result,
    Waiver,
)
from connector.compliance.ratings import AM_BEST_ORDER, rating_rank
from connector.compliance.rules import UMBRELLA, CompiledSet, LineRule, compiled
from connector.compliance.score import (
    compliant_score,
    key_margin,
    non_compliant_score,
    timeliness,
)

# Status ranks: a lower rank is worse.
_NON_COMPLIANT, _EXPIRING, _COMPLIANT = 0, 1, 2
_STATUS_NAME = ("non_compliant", "expiring", "compliant")

_NO_RENEWALS = RenewalRecord()
_NO_CERTIFICATE_MESSAGE = "No certificate of insurance is on file."
_FLAG_TEXT = {
    "additional_insured": "the additional insured endorsement",
    "waiver_of_subrogation": "the waiver of subrogation",
    "primary_noncontributory": "the primary and non-contributory wording",
}

# A policy as the hot loop sees it: (effective, end of cover, expiration, cancelled or None,
# policy), where end of cover = min(expiration, cancellation) and cover is [effective, end).
_Entry = tuple[int, int, int, int | None, Policy]


def evaluate(
    policies: Sequence[Policy],
    requirement_set: RequirementSet,
    as_of: date,
    until: date | None = None,
    waivers: Sequence[Waiver] = (),
    renewals: RenewalRecord = _NO_RENEWALS,
) -> Result:
    """Evaluate `policies` against `requirement_set` on every day of ``[as_of, until]``.

    `until` defaults to `as_of` (a one-day window); an `until` before `as_of` is a ValueError.
    The result is the combination of the per-day results (worst status, lowest score, union of
    deficiencies); see docs/compliance-rules.md for every rule.
    """
    first = as_of.toordinal()
    if until is None:
        until = as_of
        last = first
    else:
        last = until.toordinal()
        if last < first:
            raise ValueError(f"until ({until}) is before as_of ({as_of})")
    rules = compiled(requirement_set)
    multi = last > first
    inner: set[int] = set()  # boundaries b with first < b <= last: day b-1 ends a segment
    ahead: int | None = None  # first boundary after `last`

    waiving: tuple[tuple[str, str | None, int | None], ...] = ()
    if waivers:
        waiving = tuple(
            (w.code, w.line, None if w.until is None else w.until.toordinal()) for w in waivers
        )
        for _, _, ends in waiving:
            if ends is not None:
                b = ends + 1
                if b > last:
                    if ahead is None or b < ahead:
                        ahead = b
                elif multi and b > first:
                    inner.add(b)

    by_group: dict[str, list[_Entry]] | None = None
    if policies:
        by_group = {}
        group_of = rules.group_of
        for p in policies:
            group = group_of.get(p.line)
            if group is None:
                continue
            eff = p.effective_date.toordinal()
            exp = p.expiration_date.toordinal()
            cancelled = p.cancelled_on
            if cancelled is None:
                cut = None
                end = exp
            else:
                cut = cancelled.toordinal()
                end = cut if cut < exp else exp
                if cut > last:
                    if ahead is None or cut < ahead:
                        ahead = cut
                elif multi and cut > first:
                    inner.add(cut)
            entries = by_group.get(group)
            if entries is None:
                by_group[group] = [(eff, end, exp, cut, p)]
            else:
                entries.append((eff, end, exp, cut, p))
            if eff > last:
                if ahead is None or eff < ahead:
                    ahead = eff
            elif multi and eff > first:
                inner.add(eff)
            if exp > last:
                if ahead is None or exp < ahead:
                    ahead = exp
            elif multi and exp > first:
                inner.add(exp)

    timely = timeliness(renewals)
    if not multi and not rules.duplicate_lines:
        status, score, parts, expires, deficiencies, waived = _day(
            rules, by_group, last, waiving, timely
        )
        last_status, last_expires = status, expires
        deficiencies = tuple(deficiencies)
        waived = tuple(waived)
    else:
        days = [b - 1 for b in sorted(inner)]
        days.append(last)
        status = _COMPLIANT + 1
        score = 101
        parts = {}
        expires = None
        found: list[Deficiency] = []
        found_waived: list[Deficiency] = []
        seen: set[tuple[str, str | None, str | None]] = set()
        seen_waived: set[tuple[str, str | None, str | None]] = set()
        for day in days:
            d_status, d_score, d_parts, d_expires, d_defs, d_waived = _day(
                rules, by_group, day, waiving, timely
            )
            if d_status < status:
                status = d_status
            if d_score < score:
                score, parts = d_score, d_parts
            if d_expires is not None and (expires is None or d_expires < expires):
                expires = d_expires
            _merge(found, seen, d_defs)
            _merge(found_waived, seen_waived, d_waived)
            last_status, last_expires = d_status, d_expires
        deficiencies = tuple(found)
        waived = tuple(found_waived)

    if last_status == _COMPLIANT and last_expires is not None:
        flips = last_expires - rules.window  # first day on which it would be `expiring`
        if flips > last and (ahead is None or flips < ahead):
            ahead = flips
    return Result(
        requirement_set=rules.key,
        as_of=as_of,
        until=until,
        status=_STATUS_NAME[status],
        score=score,
        score_parts=parts,
        expires_on=None if expires is None else date.fromordinal(expires),
        deficiencies=deficiencies,
        waived=waived,
        stable_until=None if ahead is None else date.fromordinal(ahead - 1),
    )


def _merge(
    into: list[Deficiency], seen: set[tuple[str, str | None, str | None]], new: list[Deficiency]
) -> None:
    for deficiency in new:
        key = (deficiency.code, deficiency.line, deficiency.field)
        if key not in seen:
            seen.add(key)
            into.append(deficiency)


def _day(
    rules: CompiledSet,
    by_group: dict[str, list[_Entry]] | None,
    d: int,
    waiving: tuple[tuple[str, str | None, int | None], ...],
    timely: float,
) -> tuple[int, int, dict[str, float], int | None, list[Deficiency], list[Deficiency]]:
    """(status rank, score, score parts, expires ordinal, deficiencies, waived) on day `d`."""
    severity = rules.severity
    deficiencies: list[Deficiency] = []
    waived: list[Deficiency] = []
    failing = 0  # checks failed by unwaived blocking deficiencies
    warnings = 0
    margin_sum = 0.0
    expires: int | None = None

    if by_group is None:
        level = _record(
            deficiencies,
            waived,
            waiving,
            d,
            severity,
            "no_certificate",
            None,
            None,
            None,
            None,
            _NO_CERTIFICATE_MESSAGE,
        )
        if level == "block":
            return _NON_COMPLIANT, 0, non_compliant_score(0, 0)[1], None, deficiencies, waived
        if level == "warn":
            warnings = 1
    else:
        umbrella: tuple[int, int, list[_Entry]] | None = None
        umbrella_looked = False
        umbrella_needed = False
        for rule in rules.rules:
            entries = by_group.get(rule.group)
            inforce = [e for e in entries if e[0] <= d < e[1]] if entries else None
            if not inforce:
                code, actual, message = _absence(rule, entries, d)
                level = _record(
                    deficiencies,
                    waived,
                    waiving,
                    d,
                    severity,
                    code,
                    rule.line,
                    None,
                    None,
                    actual,
                    message,
                )
                if level == "block":
                    failing += rule.checks
                elif level == "warn":
                    warnings += 1
                continue

            end = _run_end(entries, inforce)
            if expires is None or end < expires:
                expires = end
            only = inforce[0][4] if len(inforce) == 1 else None

            for key, minimum, top_up in rule.limits:
                if only is not None:
                    actual = only.limits.get(key)
                else:
                    actual = None
                    for e in inforce:
                        amount = e[4].limits.get(key)
                        if amount is not None and (actual is None or amount > actual):
                            actual = amount
                total = actual
                topped = 0
                if top_up is not None:
                    if not umbrella_looked:
                        umbrella = _umbrella(by_group.get(UMBRELLA), d)
                        umbrella_looked = True
                    if umbrella is not None:
                        topped = umbrella[top_up]
                        if topped:
                            total = topped + (actual or 0)
                if (total or 0) < minimum:
                    level = _record(
                        deficiencies,
                        waived,
                        waiving,
                        d,
                        severity,
                        "limit_below_minimum",
                        rule.line,
                        key,
                        minimum,
                        total,
                        _limit_message(rule, key, minimum, total),
                    )
                    if level == "block":
                        failing += 1
                    elif level == "warn":
                        warnings += 1
                else:
                    margin_sum += key_margin(total, minimum)
                    if topped and (actual or 0) < minimum:
                        umbrella_needed = True

            if rule.statutory and not _any_flag(inforce, "statutory"):
                level = _record(
                    deficiencies,
                    waived,
                    waiving,
                    d,
                    severity,
                    "limit_below_minimum",
                    rule.line,
                    "statutory",
                    True,
                    False,
                    f"The {rule.label} policy is not written at statutory limits.",
                )
                if level == "block":
                    failing += 1
                elif level == "warn":
                    warnings += 1

            for attr, code in rule.flags:
                if not (getattr(only, attr) if only is not None else _any_flag(inforce, attr)):
                    level = _record(
                        deficiencies,
                        waived,
                        waiving,
                        d,
                        severity,
                        code,
                        rule.line,
                        attr,
                        True,
                        False,
                        f"The {rule.label} policy lacks {_FLAG_TEXT[attr]}.",
                    )
                    if level == "block":
                        failing += 1
                    elif level == "warn":
                        warnings += 1

            if rules.min_rank is not None:
                best = None
                for e in inforce:
                    rank = rating_rank(e[4].am_best)
                    if rank is not None and (best is None or rank > best):
                        best = rank
                if best is None or best < rules.min_rank:
                    rating = None if best is None else AM_BEST_ORDER[best]
                    shown = "unknown" if rating is None else rating
                    level = _record(
                        deficiencies,
                        waived,
                        waiving,
                        d,
                        severity,
                        "insurer_rating_below_minimum",
                        rule.line,
                        "am_best",
                        rules.min_am_best,
                        rating,
                        f"The {rule.label} insurer's A.M. Best rating is {shown}; "
                        f"at least {rules.min_am_best} is required.",
                    )
                    if level == "block":
                        failing += 1
                    elif level == "warn":
                        warnings += 1

            holder_key = rules.holder_key
            if holder_key is not None:
                matched = False
                for e in inforce:
                    name = e[4].certificate_holder
                    if name is not None and normalise_holder(name) == holder_key:
                        matched = True
                        break
                if not matched:
                    names = sorted({e[4].certificate_holder for e in inforce} - {None})
                    shown = "; ".join(names) if names else None
                    level = _record(
                        deficiencies,
                        waived,
                        waiving,
                        d,
                        severity,
                        "certificate_holder_mismatch",
                        rule.line,
                        "certificate_holder",
                        rules.holder,
                        shown,
                        f"The {rule.label} certificate names "
                        f"{repr(shown) if shown else 'no certificate holder'}, "
                        f"not {rules.holder!r}.",
                    )
                    if level == "block":
                        failing += 1
                    elif level == "warn":
                        warnings += 1

        if umbrella_needed and umbrella is not None:
            end = _run_end(by_group[UMBRELLA], umbrella[2])
            if expires is None or end < expires:
                expires = end

        if failing:
            total_checks = rules.total_checks
            score, parts = non_compliant_score(total_checks - failing, total_checks)
            return _NON_COMPLIANT, score, parts, expires, deficiencies, waived

    days_left = None if expires is None else expires - d
    status = _EXPIRING if days_left is not None and days_left <= rules.window else _COMPLIANT
    score, parts = compliant_score(margin_sum, rules.limit_keys, days_left, timely, warnings)
    return status, score, parts, expires, deficiencies, waived


def _record(
    deficiencies: list[Deficiency],
    waived: list[Deficiency],
    waiving: tuple[tuple[str, str | None, int | None], ...],
    d: int,
    severity: dict[str, str],
    code: str,
    line: str | None,
    field: str | None,
    required: object,
    actual: object,
    message: str,
) -> str | None:
    """File a deficiency; return its severity, or None when a waiver covers it on day `d`."""
    level = severity[code]
    deficiency = Deficiency(code, line, field, required, actual, level, message)
    for w_code, w_line, w_until in waiving:
        if (
            w_code == code
            and (w_line is None or w_line == line)
            and (w_until is None or d <= w_until)
        ):
            waived.append(deficiency)
            return None
    deficiencies.append(deficiency)
    return level


def _any_flag(inforce: list[_Entry], attr: str) -> bool:
    return any(getattr(e[4], attr) for e in inforce)


def _run_end(entries: list[_Entry], inforce: list[_Entry]) -> int:
    """End of the continuous run of cover through today: renewals on file (starting no later
    than the current end) extend it."""
    end = inforce[0][1]
    for e in inforce:
        if e[1] > end:
            end = e[1]
    if len(entries) > len(inforce):
        grown = True
        while grown:
            grown = False
            for e in entries:
                if e[0] <= end < e[1]:
                    end = e[1]
                    grown = True
    return end


def _umbrella(entries: list[_Entry] | None, d: int) -> tuple[int, int, list[_Entry]] | None:
    """Best umbrella/excess in force on `d`: (each occurrence, aggregate, in-force entries)."""
    if not entries:
        return None
    inforce = [e for e in entries if e[0] <= d < e[1]]
    if not inforce:
        return None
    occurrence = aggregate = 0
    for e in inforce:
        limits = e[4].limits
        occurrence = max(occurrence, limits.get("each_occurrence") or 0)
        aggregate = max(aggregate, limits.get("aggregate") or 0)
    return occurrence, aggregate, inforce


def _absence(rule: LineRule, entries: list[_Entry] | None, d: int) -> tuple[str, date | None, str]:
    """Why a required line has no policy in force on `d`: (code, date shown, message)."""
    label = rule.label
    if not entries:
        return "missing_coverage", None, f"No {label} policy is on file."
    cancelled = expired = upcoming = None
    for eff, _end, exp, cut, _p in entries:
        if eff <= d < exp:  # in its term but not in force: cancelled on or before d
            if cancelled is None or cut > cancelled:
                cancelled = cut
        elif exp <= d:
            if expired is None or exp > expired:
                expired = exp
        elif eff > d and (upcoming is None or eff < upcoming):
            upcoming = eff
    if cancelled is not None:
        when = date.fromordinal(cancelled)
        return "cancelled", when, f"The {label} policy was cancelled effective {when}."
    if expired is not None:
        when = date.fromordinal(expired)
        return "expired", when, f"The {label} policy expired on {when}."
    if upcoming is not None:
        when = date.fromordinal(upcoming)
        return "not_yet_effective", when, f"The {label} policy only takes effect on {when}."
    return "missing_coverage", None, f"No {label} policy is on file."


def _limit_message(rule: LineRule, key: str, minimum: int, actual: int | None) -> str:
    shown = "not stated" if actual is None else f"{actual:,}"
    name = key.replace("_", " ")
    if not name.endswith("limit"):
        name += " limit"
    return f"The {rule.label} {name} is {shown}; at least {minimum:,} is required."
