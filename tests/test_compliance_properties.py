"""Properties of the compliance engine over generated vendors, sets, waivers and windows."""

from __future__ import annotations

import math
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.compliance import (
    DEFICIENCY_CODES,
    LIMIT_KEYS,
    SEVERITIES,
    STATUS_RANK,
    CoverageRequirement,
    Policy,
    RenewalRecord,
    RequirementSet,
    Result,
    Waiver,
    evaluate,
)

BASE = date(2025, 1, 1)
POLICY_LINES = (
    "general_liability",
    "automobile_liability",
    "umbrella_liability",
    "excess_liability",
    "workers_compensation",
)
REQUIRED_LINES = (
    "general_liability",
    "automobile_liability",
    "umbrella_liability",
    "workers_compensation",
)
TOPPED_LINES = ("general_liability", "automobile_liability", "workers_compensation")
AMOUNTS = st.sampled_from([500_000, 1_000_000, 2_000_000, 5_000_000])
MINIMUMS = st.sampled_from([250_000, 500_000, 1_000_000, 2_000_000])
PROPERTY = settings(max_examples=200, deadline=None)
# Biased so that generated vendors often satisfy generated sets: the interesting cases are near
# the boundary between compliant and not, not the ones that fail every check.
MOSTLY = st.sampled_from([True, True, True, False])
RARELY = st.sampled_from([False, False, False, True])


def day(offset: int) -> date:
    return BASE + timedelta(days=offset)


@st.composite
def policies(draw, lines=POLICY_LINES, near: int | None = None) -> Policy:
    """A policy of one of `lines`; starting anywhere, or within a few months of day `near`."""
    line = draw(st.sampled_from(lines))
    start = draw(st.integers(0, 120)) if near is None else near + draw(st.integers(-100, 5))
    keys = LIMIT_KEYS[line]
    cancelled = draw(st.integers(start - 10, start + 160)) if draw(RARELY) else None
    return Policy(
        line=line,
        policy_number=draw(st.sampled_from(["P1", "P2", "P3"])),
        effective_date=day(start),
        expiration_date=day(start + draw(st.integers(1, 200))),
        limits={key: draw(AMOUNTS) for key in keys if draw(MOSTLY)},
        statutory=draw(MOSTLY),
        additional_insured=draw(MOSTLY),
        waiver_of_subrogation=draw(MOSTLY),
        primary_noncontributory=draw(MOSTLY),
        am_best=draw(st.sampled_from([None, "NR", "A++", "A", "A", "A-", "B++", "B"])),
        certificate_holder=draw(
            st.sampled_from([None, "Acme, Inc.", "ACME Incorporated", "acme inc", "Else"])
        ),
        cancelled_on=None if cancelled is None else day(cancelled),
    )


@st.composite
def coverage_requirements(draw, line: str) -> CoverageRequirement:
    keys = LIMIT_KEYS[line]
    return CoverageRequirement(
        line=line,
        limits=draw(st.dictionaries(st.sampled_from(keys), MINIMUMS, max_size=2)),
        additional_insured=draw(RARELY),
        waiver_of_subrogation=draw(RARELY),
        primary_noncontributory=draw(RARELY),
        statutory=line == "workers_compensation" and draw(st.booleans()),
    )


@st.composite
def requirement_sets(draw, severities: bool = False) -> RequirementSet:
    lines = draw(st.lists(st.sampled_from(REQUIRED_LINES), min_size=1, max_size=3, unique=True))
    severity = {}
    if severities:
        severity = draw(
            st.dictionaries(st.sampled_from(DEFICIENCY_CODES), st.sampled_from(SEVERITIES))
        )
    return RequirementSet(
        key="generated",
        name="Generated",
        coverages=tuple(draw(coverage_requirements(line)) for line in lines),
        expiring_window_days=draw(st.integers(0, 45)),
        certificate_holder=draw(st.sampled_from([None, None, "Acme Inc"])),
        min_am_best=draw(st.sampled_from([None, None, "A", "A-", "B+"])),
        umbrella_counts_toward=draw(st.frozensets(st.sampled_from(TOPPED_LINES))),
        severity=severity,
    )


@st.composite
def waiver_lists(draw) -> list[Waiver]:
    waivers = []
    for _ in range(draw(st.integers(0, 3))):
        until = draw(st.none() | st.integers(0, 160))
        waivers.append(
            Waiver(
                code=draw(st.sampled_from(DEFICIENCY_CODES)),
                line=draw(st.none() | st.sampled_from(REQUIRED_LINES)),
                until=None if until is None else day(until),
            )
        )
    return waivers


SIBLINGS = {"umbrella_liability": ("umbrella_liability", "excess_liability")}


@st.composite
def scenarios(draw, severities: bool = False):
    """(policies, requirement set, as_of, until): policies of the required lines placed around
    the window, so every outcome from compliant to missing coverage is common, plus strays."""
    rs = draw(requirement_sets(severities))
    first = draw(st.integers(0, 150))
    as_of, until = day(first), day(first + draw(st.integers(0, 20)))
    vendor = []
    for line in [c.line for c in rs.coverages] + ["umbrella_liability"]:
        lines = SIBLINGS.get(line, (line,))
        vendor += draw(st.lists(policies(lines, near=first), min_size=1, max_size=2))
    vendor += draw(st.lists(policies(), max_size=2))
    if draw(RARELY) and draw(RARELY):
        vendor = []  # no certificate at all
    return draw(st.permutations(vendor)), rs, as_of, until


renewal_records = st.builds(RenewalRecord, st.integers(0, 6), st.integers(0, 6))


def keys(deficiencies) -> list[tuple[str, str | None, str | None]]:
    return [(d.code, d.line, d.field) for d in deficiencies]


def rank(result: Result) -> int:
    return STATUS_RANK[result.status]


@PROPERTY
@given(scenarios(), policies(), renewal_records)
def test_adding_a_policy_never_worsens_the_result(scenario, extra, renewals):
    vendor, rs, as_of, until = scenario
    before = evaluate(vendor, rs, as_of, until, renewals=renewals)
    after = evaluate([*vendor, extra], rs, as_of, until, renewals=renewals)
    assert rank(after) >= rank(before)
    assert after.score >= before.score


@PROPERTY
@given(scenarios(severities=True), waiver_lists(), renewal_records)
def test_compliant_and_expiring_always_score_above_non_compliant(scenario, waivers, renewals):
    vendor, rs, as_of, until = scenario
    result = evaluate(vendor, rs, as_of, until, waivers=waivers, renewals=renewals)
    if result.status == "non_compliant":
        assert 0 <= result.score <= 40
    else:
        assert 50 <= result.score <= 100
    assert math.floor(sum(result.score_parts.values()) + 0.5) == result.score


@PROPERTY
@given(st.data(), scenarios(severities=True), waiver_lists())
def test_result_does_not_depend_on_policy_order(data, scenario, waivers):
    vendor, rs, as_of, until = scenario
    shuffled = data.draw(st.permutations(vendor))
    assert evaluate(shuffled, rs, as_of, until, waivers=waivers) == evaluate(
        vendor, rs, as_of, until, waivers=waivers
    )


@PROPERTY
@given(scenarios(severities=True), waiver_lists(), renewal_records)
def test_window_result_is_the_worst_of_its_days(scenario, waivers, renewals):
    vendor, rs, as_of, until = scenario
    result = evaluate(vendor, rs, as_of, until, waivers=waivers, renewals=renewals)

    daily = [
        evaluate(vendor, rs, d, waivers=waivers, renewals=renewals)
        for d in (as_of + timedelta(days=n) for n in range((until - as_of).days + 1))
    ]
    found: list = []
    waived: list = []
    for one in daily:
        found += [k for k in keys(one.deficiencies) if k not in found]
        waived += [k for k in keys(one.waived) if k not in waived]
    expiries = [one.expires_on for one in daily if one.expires_on is not None]

    assert rank(result) == min(rank(one) for one in daily)
    assert result.score == min(one.score for one in daily)
    assert keys(result.deficiencies) == found
    assert keys(result.waived) == waived
    assert result.expires_on == (min(expiries) if expiries else None)


@PROPERTY
@given(scenarios(severities=True), waiver_lists())
def test_status_and_deficiencies_hold_until_stable_until(scenario, waivers):
    vendor, rs, as_of, until = scenario
    result = evaluate(vendor, rs, as_of, until, waivers=waivers)
    last_day = evaluate(vendor, rs, until, waivers=waivers)
    stable = until + timedelta(days=3000) if result.stable_until is None else result.stable_until
    assert stable >= until
    # every day of the next two months up to stable_until, and stable_until itself
    days = [until + timedelta(days=n) for n in range(1, min((stable - until).days, 60) + 1)]
    for later_day in [*days, stable]:
        later = evaluate(vendor, rs, later_day, waivers=waivers)
        assert later.status == last_day.status
        assert keys(later.deficiencies) == keys(last_day.deficiencies)
        assert keys(later.waived) == keys(last_day.waived)
