"""The compliance engine's rules, one behaviour per test (see docs/compliance-rules.md)."""

from __future__ import annotations

import math
from datetime import date, timedelta
from itertools import pairwise

import pytest

from connector.compliance import (
    STATUS_RANK,
    AppliesTo,
    CoverageRequirement,
    Policy,
    RenewalRecord,
    RequirementSet,
    Result,
    Waiver,
    evaluate,
    holder_matches,
    normalise_holder,
    rating_at_least,
    select_requirement_set,
    sets_for_vendor,
    worst,
)
from connector.compliance.ratings import AM_BEST_ORDER

JAN1 = date(2025, 1, 1)
NEXT_JAN1 = date(2026, 1, 1)
MID = date(2025, 6, 1)
M = 1_000_000


def policy(line="general_liability", start=JAN1, end=NEXT_JAN1, limits=None, **kw) -> Policy:
    return Policy(
        line=line,
        policy_number=kw.pop("number", f"{line}-{start}"),
        effective_date=start,
        expiration_date=end,
        limits={} if limits is None else limits,
        **kw,
    )


def gl(start=JAN1, end=NEXT_JAN1, occurrence=M, aggregate=2 * M, **kw) -> Policy:
    limits = {"each_occurrence": occurrence, "general_aggregate": aggregate}
    return policy("general_liability", start, end, limits, **kw)


def umbrella(start=JAN1, end=NEXT_JAN1, amount=M, line="umbrella_liability", **kw) -> Policy:
    return policy(line, start, end, {"each_occurrence": amount, "aggregate": amount}, **kw)


def requirement(*coverages: CoverageRequirement, **kw) -> RequirementSet:
    kw.setdefault("key", "std")
    kw.setdefault("name", "Standard")
    return RequirementSet(coverages=coverages, **kw)


def needs(line="general_liability", limits=None, **kw) -> CoverageRequirement:
    return CoverageRequirement(line, {} if limits is None else limits, **kw)


GL_SET = requirement(needs(limits={"each_occurrence": M, "general_aggregate": 2 * M}))


def codes(result: Result) -> list[tuple[str, str | None, str | None]]:
    return [(d.code, d.line, d.field) for d in result.deficiencies]


# --- days in force ---------------------------------------------------------------------------


def test_policy_is_in_force_on_its_effective_date():
    assert evaluate([gl()], GL_SET, JAN1).status == "compliant"


def test_expiration_date_itself_is_not_covered():
    result = evaluate([gl()], GL_SET, NEXT_JAN1)
    assert codes(result) == [("expired", "general_liability", None)]
    assert result.deficiencies[0].actual == NEXT_JAN1


def test_day_before_expiration_is_covered_and_expires_on_is_the_expiration_date():
    result = evaluate([gl()], GL_SET, date(2025, 12, 31))
    assert result.status == "expiring"
    assert result.expires_on == NEXT_JAN1


def test_renewal_starting_on_expiration_date_is_continuous():
    renewal = gl(NEXT_JAN1, date(2027, 1, 1))
    result = evaluate([gl(), renewal], GL_SET, date(2025, 12, 20), date(2026, 1, 10))
    assert result.status == "compliant"
    assert result.deficiencies == ()
    assert result.expires_on == date(2027, 1, 1)


def test_renewal_on_file_extends_expires_on_before_it_starts():
    renewal = gl(NEXT_JAN1, date(2027, 1, 1))
    assert evaluate([gl(), renewal], GL_SET, MID).expires_on == date(2027, 1, 1)


def test_renewal_starting_a_day_late_leaves_a_gap():
    late = gl(date(2026, 1, 2), date(2027, 1, 2))
    result = evaluate([gl(), late], GL_SET, date(2025, 12, 20), date(2026, 1, 10))
    assert result.status == "non_compliant"
    assert codes(result) == [("expired", "general_liability", None)]


def test_cancellation_ends_cover_on_its_effective_date():
    cancelled = gl(cancelled_on=MID)
    assert evaluate([cancelled], GL_SET, MID - timedelta(days=1)).expires_on == MID
    result = evaluate([cancelled], GL_SET, MID)
    assert codes(result) == [("cancelled", "general_liability", None)]
    assert result.deficiencies[0].actual == MID


def test_cancelled_takes_precedence_over_an_older_expired_policy():
    older = gl(date(2024, 1, 1), JAN1)
    assert codes(evaluate([older, gl(cancelled_on=MID)], GL_SET, date(2025, 7, 1)))[0][0] == (
        "cancelled"
    )


def test_expired_takes_precedence_over_a_future_policy():
    future = gl(date(2026, 2, 1), date(2027, 2, 1))
    result = evaluate([gl(), future], GL_SET, date(2026, 1, 15))
    assert codes(result) == [("expired", "general_liability", None)]


def test_policy_starting_later_is_not_yet_effective():
    result = evaluate([gl(start=date(2025, 7, 1), end=date(2026, 7, 1))], GL_SET, MID)
    assert codes(result) == [("not_yet_effective", "general_liability", None)]
    assert result.deficiencies[0].actual == date(2025, 7, 1)


def test_required_line_without_any_policy_is_missing_coverage():
    result = evaluate([policy("automobile_liability")], GL_SET, MID)
    assert codes(result) == [("missing_coverage", "general_liability", None)]


def test_no_policies_at_all_is_a_single_no_certificate_deficiency_scoring_zero():
    result = evaluate([], GL_SET, MID)
    assert codes(result) == [("no_certificate", None, None)]
    assert (result.status, result.score) == ("non_compliant", 0)


def test_until_before_as_of_is_an_error():
    with pytest.raises(ValueError):
        evaluate([gl()], GL_SET, MID, MID - timedelta(days=1))


# --- combining policies of a line ----------------------------------------------------------


def test_policies_of_a_line_combine_limits_by_max_and_flags_by_or():
    wanted = requirement(needs(limits={"each_occurrence": 2 * M}, additional_insured=True))
    low_with_ai = gl(occurrence=M, additional_insured=True, number="A")
    high_without = gl(occurrence=2 * M, number="B")
    assert evaluate([low_with_ai, high_without], wanted, MID).deficiencies == ()


def test_limit_below_minimum_reports_key_required_and_actual():
    result = evaluate([gl(occurrence=500_000)], GL_SET, MID)
    [deficiency] = result.deficiencies
    assert (deficiency.code, deficiency.field, deficiency.required, deficiency.actual) == (
        "limit_below_minimum",
        "each_occurrence",
        M,
        500_000,
    )


def test_limit_not_stated_is_below_minimum_with_actual_none():
    result = evaluate([policy("general_liability", limits={"each_occurrence": M})], GL_SET, MID)
    assert [(d.field, d.actual) for d in result.deficiencies] == [("general_aggregate", None)]


def test_statutory_requirement_needs_a_statutory_policy():
    wanted = requirement(needs("workers_compensation", statutory=True))
    result = evaluate([policy("workers_compensation")], wanted, MID)
    assert codes(result) == [("limit_below_minimum", "workers_compensation", "statutory")]
    assert evaluate([policy("workers_compensation", statutory=True)], wanted, MID).deficiencies == (
        ()
    )


@pytest.mark.parametrize(
    ("flag", "code"),
    [
        ("additional_insured", "additional_insured_missing"),
        ("waiver_of_subrogation", "waiver_of_subrogation_missing"),
        ("primary_noncontributory", "primary_noncontributory_missing"),
    ],
)
def test_required_endorsement_missing(flag, code):
    wanted = requirement(needs(**{flag: True}))
    assert codes(evaluate([gl()], wanted, MID)) == [(code, "general_liability", flag)]
    assert evaluate([gl(**{flag: True})], wanted, MID).deficiencies == ()


# --- umbrella / excess -----------------------------------------------------------------------

TOPPED = requirement(
    needs(limits={"each_occurrence": 2 * M}),
    umbrella_counts_toward=frozenset({"general_liability"}),
)


def test_umbrella_tops_up_a_line_it_counts_toward():
    result = evaluate([gl(occurrence=M), umbrella(amount=M)], TOPPED, MID)
    assert result.status == "compliant"


def test_excess_tops_up_like_an_umbrella():
    result = evaluate([gl(occurrence=M), umbrella(amount=M, line="excess_liability")], TOPPED, MID)
    assert result.status == "compliant"


def test_umbrella_does_not_top_up_lines_not_listed():
    not_listed = requirement(needs(limits={"each_occurrence": 2 * M}))
    result = evaluate([gl(occurrence=M), umbrella(amount=M)], not_listed, MID)
    assert [(d.field, d.actual) for d in result.deficiencies] == [("each_occurrence", M)]


def test_umbrella_never_replaces_a_missing_underlying_line():
    result = evaluate([umbrella(amount=10 * M)], TOPPED, MID)
    assert codes(result) == [("missing_coverage", "general_liability", None)]


def test_topped_up_amount_is_reported_when_still_short():
    result = evaluate([gl(occurrence=500_000), umbrella(amount=M)], TOPPED, MID)
    assert result.deficiencies[0].actual == 1_500_000


@pytest.mark.parametrize(
    ("line", "key", "umbrella_key"),
    [
        ("general_liability", "each_occurrence", "each_occurrence"),
        ("general_liability", "general_aggregate", "aggregate"),
        ("general_liability", "products_completed_operations_aggregate", "aggregate"),
        ("automobile_liability", "combined_single_limit", "each_occurrence"),
        ("workers_compensation", "el_each_accident", "each_occurrence"),
        ("workers_compensation", "el_disease_each_employee", "each_occurrence"),
        ("workers_compensation", "el_disease_policy_limit", "aggregate"),
    ],
)
def test_umbrella_top_up_uses_the_matching_umbrella_limit(line, key, umbrella_key):
    wanted = requirement(needs(line, {key: 2 * M}), umbrella_counts_toward=frozenset({line}))
    other = "aggregate" if umbrella_key == "each_occurrence" else "each_occurrence"
    cover = policy("umbrella_liability", limits={umbrella_key: M, other: 0})
    assert evaluate([policy(line, limits={key: M}), cover], wanted, MID).status == "compliant"
    wrong = policy("umbrella_liability", limits={umbrella_key: 0, other: M})
    assert evaluate([policy(line, limits={key: M}), wrong], wanted, MID).status == "non_compliant"


def test_expires_on_includes_the_umbrella_only_when_it_was_needed():
    short_umbrella = umbrella(end=date(2025, 9, 1), amount=M)
    assert evaluate([gl(occurrence=M), short_umbrella], TOPPED, MID).expires_on == date(2025, 9, 1)
    assert evaluate([gl(occurrence=2 * M), short_umbrella], TOPPED, MID).expires_on == NEXT_JAN1


def test_umbrella_and_excess_satisfy_each_other():
    pair = ("umbrella_liability", "excess_liability")
    for want, have in (pair, pair[::-1]):
        wanted = requirement(needs(want, {"each_occurrence": M}))
        assert evaluate([umbrella(line=have)], wanted, MID).status == "compliant"


# --- rating and certificate holder -----------------------------------------------------------

RATED = requirement(needs(), min_am_best="A-")


def test_rating_below_minimum_is_a_deficiency():
    [deficiency] = evaluate([gl(am_best="B++")], RATED, MID).deficiencies
    assert (deficiency.code, deficiency.actual, deficiency.required) == (
        "insurer_rating_below_minimum",
        "B++",
        "A-",
    )


def test_unknown_rating_is_below_any_minimum_and_says_unknown():
    [deficiency] = evaluate([gl(am_best=None)], RATED, MID).deficiencies
    assert deficiency.actual is None
    assert "unknown" in deficiency.message


def test_best_rating_of_the_line_counts():
    policies = [gl(am_best="B", number="1"), gl(am_best="A", number="2")]
    assert evaluate(policies, RATED, MID).deficiencies == ()


HELD = requirement(
    needs(), needs("automobile_liability"), certificate_holder="Acme Facilities, L.L.C."
)


def test_certificate_holder_matches_after_normalisation():
    policies = [
        gl(certificate_holder="ACME FACILITIES LLC"),
        policy("automobile_liability", certificate_holder="acme  facilities, llc."),
    ]
    assert evaluate(policies, HELD, MID).deficiencies == ()


def test_certificate_holder_mismatch_is_reported_per_line():
    policies = [
        gl(certificate_holder="Acme Facilities LLC"),
        policy("automobile_liability", certificate_holder="Acme Holdings Inc"),
    ]
    result = evaluate(policies, HELD, MID)
    assert codes(result) == [
        ("certificate_holder_mismatch", "automobile_liability", "certificate_holder")
    ]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Acme Facilities, L.L.C.", "ACME FACILITIES LLC"),
        ("Acme Inc.", "Acme Inc"),
        ("Acme Incorporated", "acme inc"),
        ("Acme Corporation", "Acme Corp."),
        ("Acme Company", "Acme Co"),
        ("Acme Limited", "ACME LTD."),
        ("Smith & Jones, L.L.P.", "Smith and Jones LLP"),
        ("Acme Holdings, L.P.", "Acme Holdings LP"),
        ("  Acme\tFacilities   Inc ", "Acme Facilities Inc"),
        ("Smith-Jones Inc", "Smith Jones Inc"),
        ("Société Générale", "Societe Generale"),
    ],
)
def test_holder_names_that_match(a, b):
    assert normalise_holder(a) == normalise_holder(b)
    assert holder_matches(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Acme LLC", "Acme Inc"),
        ("Acme Facilities Inc", "Acme Facility Inc"),
        ("Acme Inc", None),
    ],
)
def test_holder_names_that_do_not_match(a, b):
    assert not holder_matches(a, b)


# --- ratings ---------------------------------------------------------------------------------


def test_rating_order_each_step_is_strictly_better():
    expected = ["A++", "A+", "A", "A-", "B++", "B+", "B", "B-", "C++", "C+", "C", "C-", "D"]
    expected += ["E", "F"]
    assert list(reversed(AM_BEST_ORDER)) == expected
    for better, lower in pairwise(expected):
        assert rating_at_least(better, lower)
        assert not rating_at_least(lower, better)


def test_rating_meets_itself_ignoring_case_and_spaces():
    assert rating_at_least(" a- ", "A-")


@pytest.mark.parametrize("unknown", [None, "", "NR", "AA"])
def test_unknown_rating_never_meets_a_minimum(unknown):
    assert not rating_at_least(unknown, "F")


def test_unknown_minimum_rating_is_an_error():
    with pytest.raises(ValueError):
        rating_at_least("A", "AAA")


# --- severity and waivers --------------------------------------------------------------------


def test_warn_severity_keeps_status_and_costs_five_points():
    warned = requirement(
        needs(additional_insured=True), severity={"additional_insured_missing": "warn"}
    )
    clean = evaluate([gl(additional_insured=True)], warned, MID)
    result = evaluate([gl()], warned, MID)
    assert result.status == "compliant"
    assert result.deficiencies[0].severity == "warn"
    assert result.score_parts["warnings"] == -5.0
    assert result.score == clean.score - 5


def test_block_severity_is_the_default():
    result = evaluate([gl()], requirement(needs(additional_insured=True)), MID)
    assert (result.status, result.deficiencies[0].severity) == ("non_compliant", "block")


def test_waiver_moves_the_deficiency_to_waived():
    waiver = Waiver("limit_below_minimum", "general_liability", date(2025, 12, 31))
    result = evaluate([gl(occurrence=500_000)], GL_SET, MID, waivers=[waiver])
    assert result.status == "compliant"
    assert result.deficiencies == ()
    assert [(d.code, d.field) for d in result.waived] == [
        ("limit_below_minimum", "each_occurrence")
    ]


def test_waiver_without_line_covers_every_line():
    wanted = requirement(needs(), needs("automobile_liability"))
    result = evaluate([], wanted, MID, waivers=[Waiver("no_certificate")])
    assert result.deficiencies == ()
    result = evaluate([policy("property")], wanted, MID, waivers=[Waiver("missing_coverage")])
    assert [d.line for d in result.waived] == ["general_liability", "automobile_liability"]


def test_waiver_for_another_line_does_not_apply():
    waiver = Waiver("limit_below_minimum", "automobile_liability")
    assert evaluate([gl(occurrence=500_000)], GL_SET, MID, waivers=[waiver]).status == (
        "non_compliant"
    )


def test_expired_waiver_does_not_apply():
    waiver = Waiver("limit_below_minimum", "general_liability", MID - timedelta(days=1))
    result = evaluate([gl(occurrence=500_000)], GL_SET, MID, waivers=[waiver])
    assert result.status == "non_compliant"
    assert result.waived == ()


def test_waiver_applies_on_its_last_day_and_window_past_it_is_not_covered():
    waiver = Waiver("limit_below_minimum", "general_liability", MID)
    short = [gl(occurrence=500_000)]
    assert evaluate(short, GL_SET, MID, waivers=[waiver]).status == "compliant"
    spanning = evaluate(short, GL_SET, MID, MID + timedelta(days=1), waivers=[waiver])
    assert spanning.status == "non_compliant"
    assert len(spanning.waived) == 1 and len(spanning.deficiencies) == 1


# --- statuses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_left", "status"), [(31, "compliant"), (30, "expiring"), (1, "expiring")]
)
def test_expiring_when_days_left_are_at_most_the_window(days_left, status):
    day = NEXT_JAN1 - timedelta(days=days_left)
    assert evaluate([gl()], GL_SET, day).status == status


def test_expiring_window_comes_from_the_set():
    narrow = requirement(*GL_SET.coverages, expiring_window_days=10)
    assert evaluate([gl()], narrow, NEXT_JAN1 - timedelta(days=11)).status == "compliant"


def test_window_takes_the_worst_day():
    result = evaluate([gl(end=date(2025, 6, 10))], GL_SET, MID, date(2025, 6, 20))
    assert result.status == "non_compliant"
    assert codes(result) == [("expired", "general_liability", None)]
    assert result.expires_on == date(2025, 6, 10)


def test_window_collects_deficiencies_of_every_day_once():
    policies = [gl(end=date(2025, 6, 10)), gl(date(2025, 6, 15), NEXT_JAN1, occurrence=500_000)]
    result = evaluate(policies, GL_SET, MID, date(2025, 6, 20))
    assert codes(result) == [
        ("expired", "general_liability", None),
        ("limit_below_minimum", "general_liability", "each_occurrence"),
    ]


def test_worst_orders_by_status_then_score():
    def res(status, score):
        return Result("s", MID, MID, status, score, {}, None, ())

    assert worst([res("compliant", 60), res("expiring", 90), res("expiring", 70)]).score == 70
    assert worst([res("compliant", 50), res("non_compliant", 40)]).status == "non_compliant"
    assert STATUS_RANK["non_compliant"] < STATUS_RANK["expiring"] < STATUS_RANK["compliant"]
    with pytest.raises(ValueError):
        worst([])


# --- stable_until ----------------------------------------------------------------------------


def test_stable_until_is_the_day_before_the_expiring_threshold():
    result = evaluate([gl()], GL_SET, MID)
    assert result.stable_until == NEXT_JAN1 - timedelta(days=31)
    assert evaluate([gl()], GL_SET, result.stable_until + timedelta(days=1)).status == "expiring"


def test_stable_until_is_the_day_before_the_next_boundary():
    upcoming = gl(date(2025, 7, 1), NEXT_JAN1, occurrence=5 * M)
    assert evaluate([gl(), upcoming], GL_SET, MID).stable_until == date(2025, 6, 30)
    expiring = evaluate([gl(cancelled_on=date(2025, 9, 1))], GL_SET, date(2025, 8, 15))
    assert expiring.status == "expiring"
    assert expiring.stable_until == date(2025, 8, 31)


def test_stable_until_counts_a_waiver_ending():
    waiver = Waiver("limit_below_minimum", "general_liability", date(2025, 7, 1))
    result = evaluate([gl(occurrence=500_000)], GL_SET, MID, waivers=[waiver])
    assert result.stable_until == date(2025, 7, 1)


def test_stable_until_is_none_when_nothing_lies_ahead():
    assert evaluate([], GL_SET, MID).stable_until is None
    assert evaluate([gl()], GL_SET, date(2026, 3, 1)).stable_until is None


# --- score -----------------------------------------------------------------------------------


def _parts_round_to_score(result: Result) -> bool:
    return math.floor(sum(result.score_parts.values()) + 0.5) == result.score


def test_compliant_score_parts():
    result = evaluate(
        [gl(occurrence=2 * M, aggregate=3 * M)],
        GL_SET,
        NEXT_JAN1 - timedelta(days=73),
        renewals=RenewalRecord(timely=2, late=0),
    )
    parts = result.score_parts
    assert parts["base"] == 50
    assert parts["margin"] == pytest.approx(20 * (1.0 + 0.5) / 2)  # 2x and 1.5x the minimums
    assert parts["time_left"] == pytest.approx(20 * 73 / 365)
    assert parts["timeliness"] == pytest.approx(10 * 3 / 4)
    assert parts["warnings"] == 0
    assert result.score == 50 + 15 + 4 + 8  # 76.5 rounds half up to 77
    assert _parts_round_to_score(result)


def test_margin_is_ten_when_the_set_requires_no_limits():
    assert evaluate([gl()], requirement(needs()), MID).score_parts["margin"] == 10


def test_time_left_is_capped_at_a_year():
    far = evaluate([gl(end=date(2027, 1, 1))], GL_SET, MID)
    assert far.score_parts["time_left"] == 20


def test_non_compliant_score_is_the_share_of_passed_checks():
    wanted = requirement(
        needs(limits={"each_occurrence": M}, additional_insured=True),
        needs("automobile_liability", {"combined_single_limit": M}),
    )  # checks: GL presence, limit, AI = 3; auto presence, limit = 2
    result = evaluate([gl(occurrence=M)], wanted, MID)  # AI missing (1) + auto missing (2)
    assert result.status == "non_compliant"
    assert result.score == math.floor(40 * 2 / 5)
    assert _parts_round_to_score(result)


def test_waived_check_counts_as_passed_in_the_non_compliant_score():
    wanted = requirement(needs(additional_insured=True), needs("automobile_liability"))
    waiver = Waiver("additional_insured_missing")
    assert evaluate([gl()], wanted, MID, waivers=[waiver]).score == math.floor(40 * 2 / 3)


def test_warnings_never_take_a_compliant_score_below_fifty():
    noisy = requirement(
        needs(additional_insured=True, waiver_of_subrogation=True, primary_noncontributory=True),
        severity={
            "additional_insured_missing": "warn",
            "waiver_of_subrogation_missing": "warn",
            "primary_noncontributory_missing": "warn",
        },
    )
    result = evaluate([gl()], noisy, date(2025, 12, 31), renewals=RenewalRecord(0, 50))
    assert result.status == "expiring"
    assert result.score == 50
    assert _parts_round_to_score(result)


# --- selection -------------------------------------------------------------------------------


def rset(key, *, priority=0, version=1, effective_from=None, **applies) -> RequirementSet:
    scope = AppliesTo(**{k: (frozenset(v) if k != "min_amount" else v) for k, v in applies.items()})
    return RequirementSet(
        key=key,
        name=key,
        priority=priority,
        version=version,
        effective_from=effective_from,
        applies_to=scope,
    )


def select(sets, work_type="plumbing", region="north", risk_tier=None, amount=None, on=MID):
    chosen = select_requirement_set(
        sets, work_type=work_type, region=region, risk_tier=risk_tier, amount=amount, on=on
    )
    return None if chosen is None else (chosen.key, chosen.version)


def test_future_dated_version_takes_effect_on_its_date():
    sets = [rset("std", version=1), rset("std", version=2, effective_from=date(2025, 7, 1))]
    assert select(sets, on=date(2025, 6, 30)) == ("std", 1)
    assert select(sets, on=date(2025, 7, 1)) == ("std", 2)


def test_highest_priority_wins_and_ties_go_to_the_lower_key():
    sets = [rset("b", priority=5), rset("a", priority=5), rset("z", priority=1)]
    assert select(sets) == ("a", 1)
    assert select([*sets, rset("y", priority=9)]) == ("y", 1)


def test_applies_to_filters_and_empty_means_any():
    sets = [rset("roofing", work_types={"roofing"}, priority=9), rset("any")]
    assert select(sets, work_type="plumbing") == ("any", 1)
    assert select(sets, work_type="roofing") == ("roofing", 1)
    assert select([rset("north", regions={"north"})], region="south") is None


def test_min_amount_needs_an_amount_at_least_that():
    sets = [rset("big", min_amount=100_000, priority=9), rset("std")]
    assert select(sets, amount=None) == ("std", 1)
    assert select(sets, amount=99_999) == ("std", 1)
    assert select(sets, amount=100_000) == ("big", 1)


def test_current_version_that_no_longer_applies_hides_older_versions():
    sets = [rset("std", work_types={"plumbing"}), rset("std", version=2, work_types={"roofing"})]
    assert select(sets, work_type="plumbing") is None


def test_sets_for_vendor_matches_any_work_type_and_ignores_amount():
    sets = [
        rset("roofing", work_types={"roofing"}, priority=1),
        rset("big", min_amount=10**9, priority=5),
        rset("south", regions={"south"}, priority=9),
        rset("all", priority=5),
        rset("later", effective_from=date(2030, 1, 1)),
    ]
    found = sets_for_vendor(
        sets, work_types=["plumbing", "roofing"], regions=["north"], risk_tier=None, on=MID
    )
    assert [s.key for s in found] == ["all", "big", "roofing"]


# --- the worked example of docs/compliance-rules.md ----------------------------------------

DOCS_SET = requirement(
    needs(limits={"each_occurrence": M, "general_aggregate": 2 * M}, additional_insured=True),
    needs("automobile_liability", {"combined_single_limit": M}),
    key="facilities-standard",
    min_am_best="A-",
    certificate_holder="Acme Facilities, Inc.",
    umbrella_counts_toward=frozenset({"general_liability", "automobile_liability"}),
    severity={"certificate_holder_mismatch": "warn"},
)
DOCS_VENDOR = [
    gl(
        date(2025, 3, 1),
        date(2026, 3, 1),
        additional_insured=True,
        am_best="A+",
        certificate_holder="ACME Facilities Inc",
    ),
    policy(
        "automobile_liability",
        date(2025, 1, 15),
        date(2026, 1, 15),
        {"combined_single_limit": 500_000},
        am_best="A",
        certificate_holder="Acme Facilities Incorporated",
    ),
    umbrella(date(2025, 2, 1), date(2026, 2, 1), amount=M, am_best="A-"),
]
DOCS_RENEWALS = RenewalRecord(timely=3, late=1)


def test_worked_example_one_day():
    result = evaluate(DOCS_VENDOR, DOCS_SET, date(2025, 11, 1), renewals=DOCS_RENEWALS)
    assert (result.status, result.score, result.expires_on, result.stable_until) == (
        "compliant",
        74,
        date(2026, 1, 15),
        date(2025, 12, 15),
    )
    assert result.score_parts["margin"] == pytest.approx(20 * 2 / 3)


def test_worked_example_window_over_the_auto_expiration():
    result = evaluate(
        DOCS_VENDOR, DOCS_SET, date(2025, 11, 1), date(2026, 1, 20), renewals=DOCS_RENEWALS
    )
    assert (result.status, result.score) == ("non_compliant", 24)
    assert codes(result) == [("expired", "automobile_liability", None)]


def test_worked_example_with_the_auto_renewal_on_file():
    renewal = policy(
        "automobile_liability",
        date(2026, 1, 15),
        date(2027, 1, 15),
        {"combined_single_limit": 500_000},
        am_best="A",
        certificate_holder="Acme Facilities Incorporated",
    )
    result = evaluate(
        [*DOCS_VENDOR, renewal],
        DOCS_SET,
        date(2025, 11, 1),
        date(2026, 1, 20),
        renewals=DOCS_RENEWALS,
    )
    assert (result.status, result.score, result.expires_on) == ("expiring", 71, date(2026, 2, 1))
