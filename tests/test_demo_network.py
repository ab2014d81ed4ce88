"""The bundled demo network: well-formed, deterministic, and showing every scenario."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from connector.compliance import model
from connector.demo import network
from connector.demo.network import SampleNetwork, sample_network

AS_OF = date(2025, 3, 1)
CSV_PATH = Path(network.__file__).with_name("insurers.csv")
RATINGS = ("A++", "A+", "A", "A-", "B++", "B+", "B", "B-", "C++", "C+", "C", "C-", "D", "E", "F")


@pytest.fixture(scope="module")
def net() -> SampleNetwork:
    return sample_network(AS_OF)


def _policies(net: SampleNetwork):
    for entry in net.vendors:
        for certificate in entry["certificates"]:
            yield from certificate["policies"]


def _d(text: str) -> date:
    return date.fromisoformat(text)


def test_at_least_sixty_vendors_with_unique_identities(net):
    vendors = [entry["vendor"] for entry in net.vendors]
    assert len(vendors) >= 60
    assert len({v["name"] for v in vendors}) == len(vendors)
    assert len({v["tax_id"] for v in vendors}) == len(vendors)
    assert len({v["email"] for v in vendors}) == len(vendors)
    refs = [(r["system"], r["external_id"]) for v in vendors for r in v["external_refs"]]
    assert len(set(refs)) == len(refs)
    assert {system for system, _ in refs} == {"salesforce", "bc", "dispatch"}


def test_vendor_bodies_use_the_known_vocabulary(net):
    for entry in net.vendors:
        vendor = entry["vendor"]
        assert set(vendor) == {
            "name",
            "email",
            "tax_id",
            "work_types",
            "regions",
            "risk_tier",
            "external_refs",
        }
        assert vendor["work_types"] and set(vendor["work_types"]) <= set(network.TRADES)
        assert vendor["regions"] and set(vendor["regions"]) <= set(network.REGIONS)
        assert vendor["risk_tier"] in ("low", "medium", "high")
        assert len(vendor["tax_id"]) == 10 and vendor["tax_id"][2] == "-"
        assert vendor["email"].endswith(".example")


def test_every_scenario_is_present_and_compliant_is_the_largest(net):
    counts = net.scenario_counts()
    assert set(counts) == set(network.SCENARIOS) == set(network.SCENARIO_DEFICIENCY)
    assert all(counts[label] >= 1 for label in network.SCENARIOS), counts
    assert sum(counts.values()) == len(net.vendors)
    assert 0.35 <= counts["compliant"] / len(net.vendors) <= 0.45
    assert max(counts, key=counts.get) == "compliant"
    assert {entry["scenario"] for entry in net.vendors} <= set(network.SCENARIOS)


def test_policy_lines_and_limit_keys_follow_the_model(net):
    policy_numbers = []
    for policy in _policies(net):
        line = policy["line"]
        assert line in model.LINES
        for key, value in policy["limits"].items():
            if key == "statutory":
                assert line == "workers_compensation" and value is True
            else:
                assert key in model.LIMIT_KEYS[line], (line, key)
                assert type(value) is int and value > 0
        assert _d(policy["expiration_date"]) > _d(policy["effective_date"])
        for flag in (
            "additional_insured",
            "waiver_of_subrogation",
            "primary_noncontributory",
            "claims_made",
        ):
            assert type(policy[flag]) is bool
        policy_numbers.append(policy["policy_number"])
    assert len(set(policy_numbers)) == len(policy_numbers)


def test_certificates_are_acord_shaped(net):
    insurers = {i["naic"]: i["name"] for i in net.insurers}
    for entry in net.vendors:
        for certificate in entry["certificates"]:
            assert set(certificate) == {
                "producer",
                "insured",
                "certificate_holder",
                "description_of_operations",
                "received_at",
                "source",
                "policies",
            }
            assert set(certificate["producer"]) == {"name", "email", "phone"}
            assert certificate["insured"] == {"name": entry["vendor"]["name"]}
            assert set(certificate["certificate_holder"]) == {"name", "address"}
            assert certificate["source"] in ("api", "pdf", "email", "agent")
            assert certificate["received_at"].endswith("Z")
            received = datetime.fromisoformat(certificate["received_at"])
            assert received.date() < AS_OF
            for policy in certificate["policies"]:
                assert insurers[policy["insurer"]["naic"]] == policy["insurer"]["name"]
        if entry["scenario"] == "no_certificate":
            assert entry["certificates"] == []
        else:
            assert entry["certificates"]


def test_network_is_deterministic():
    assert sample_network(AS_OF) == sample_network(AS_OF)


def test_another_date_shifts_the_same_network():
    later = sample_network(AS_OF + timedelta(days=40))
    first = sample_network(AS_OF)
    assert [e["vendor"] for e in later.vendors] == [e["vendor"] for e in first.vendors]
    assert [e["scenario"] for e in later.vendors] == [e["scenario"] for e in first.vendors]
    shifted = _d(later.vendors[0]["certificates"][0]["policies"][0]["effective_date"])
    original = _d(first.vendors[0]["certificates"][0]["policies"][0]["effective_date"])
    assert shifted - original == timedelta(days=40)


def test_everything_is_json_ready(net):
    json.dumps(
        {
            "requirement_sets": net.requirement_sets,
            "insurers": net.insurers,
            "vendors": net.vendors,
            "cancellation_notices": net.cancellation_notices,
            "work_orders": net.work_orders,
            "work_order_intents": net.work_order_intents,
        }
    )


def test_insurers_csv_matches_the_insurers_list(net):
    with CSV_PATH.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["naic", "name", "am_best"]
        rows = list(reader)
    assert rows == net.insurers
    assert 10 <= len(rows) <= 14
    assert len({r["naic"] for r in rows}) == len(rows)
    assert all(len(r["naic"]) == 5 and r["naic"].isdigit() for r in rows)
    ratings = {r["am_best"] for r in rows}
    assert ratings <= set(RATINGS)
    assert {"A++", "A-", "B+", "B"} <= ratings


def test_ratings_match_scenarios(net):
    rating = {i["naic"]: i["am_best"] for i in net.insurers}
    floor = RATINGS.index("A-")
    for entry in net.vendors:
        ranks = {
            RATINGS.index(rating[p["insurer"]["naic"]])
            for c in entry["certificates"]
            for p in c["policies"]
        }
        if entry["scenario"] == "low_rated_insurer":
            assert max(ranks) > floor
        elif ranks:
            assert max(ranks) <= floor, entry["vendor"]["name"]
    low = [e for e in net.vendors if e["scenario"] == "low_rated_insurer"]
    assert any(
        rating[p["insurer"]["naic"]] == "B+" for e in low for p in e["certificates"][0]["policies"]
    )


def test_scenario_dates_relative_to_as_of(net):
    def expiries(entry):
        return [_d(p["expiration_date"]) for c in entry["certificates"] for p in c["policies"]]

    def effectives(entry):
        return [_d(p["effective_date"]) for c in entry["certificates"] for p in c["policies"]]

    for entry in net.vendors:
        scenario = entry["scenario"]
        if scenario == "compliant":
            assert min(expiries(entry)) > AS_OF + timedelta(days=60)
            assert max(effectives(entry)) <= AS_OF
        elif scenario == "expiring":
            assert AS_OF < min(expiries(entry)) <= AS_OF + timedelta(days=30)
        elif scenario == "expired":
            assert min(expiries(entry)) <= AS_OF
        elif scenario == "not_yet_effective":
            assert min(effectives(entry)) > AS_OF
    expired = [e for e in net.vendors if e["scenario"] == "expired"]
    # The expiration date itself is not covered: one policy set ends exactly on as_of.
    assert any(min(expiries(e)) == AS_OF for e in expired)


def test_renewals_start_on_the_old_expiration_date(net):
    renewals = [e for e in net.vendors if e["scenario"] == "renewal_on_file"]
    assert renewals
    for entry in renewals:
        old, new = entry["certificates"]
        old_by_line = {p["line"]: p for p in old["policies"]}
        for policy in new["policies"]:
            previous = old_by_line[policy["line"]]
            assert AS_OF < _d(previous["expiration_date"]) <= AS_OF + timedelta(days=30)
            assert policy["effective_date"] == previous["expiration_date"]
            assert policy["policy_number"] != previous["policy_number"]
        assert old["received_at"] < new["received_at"]


def test_umbrella_stacked_needs_the_umbrella(net):
    for entry in (e for e in net.vendors if e["scenario"] == "umbrella_stacked"):
        by_line = {p["line"]: p for p in entry["certificates"][0]["policies"]}
        occurrence = by_line["general_liability"]["limits"]["each_occurrence"]
        umbrella = by_line["umbrella_liability"]["limits"]["each_occurrence"]
        assert occurrence == 500_000
        assert umbrella >= 1_000_000 and occurrence + umbrella >= 1_000_000


def test_scenario_defects(net):
    for entry in net.vendors:
        scenario = entry["scenario"]
        if not entry["certificates"]:
            continue
        certificate = entry["certificates"][0]
        gl = next(p for p in certificate["policies"] if p["line"] == "general_liability")
        assert gl["additional_insured"] is (scenario != "missing_additional_insured")
        holder = certificate["certificate_holder"]["name"]
        if scenario == "wrong_certificate_holder":
            assert holder in network.WRONG_HOLDERS
        else:
            assert holder == network.HOLDER_NAME or holder in network.HOLDER_VARIANTS
    holders = {
        c["certificate_holder"]["name"]
        for e in net.vendors
        if e["scenario"] == "compliant"
        for c in e["certificates"]
    }
    assert set(network.HOLDER_VARIANTS) <= holders
    assert {"ACME FACILITIES MANAGEMENT INC", "Acme Facilities Management, Incorporated"} <= holders


def test_cancellation_notices_match_cancelled_vendors(net):
    cancelled = [e for e in net.vendors if e["scenario"] == "cancelled"]
    policies = {
        p["policy_number"]: p for e in cancelled for c in e["certificates"] for p in c["policies"]
    }
    assert len(net.cancellation_notices) == len(cancelled)
    for notice in net.cancellation_notices:
        assert set(notice) == {"policy_number", "insurer_name", "effective_date", "received_via"}
        policy = policies[notice["policy_number"]]
        assert notice["insurer_name"] == policy["insurer"]["name"]
        on = _d(notice["effective_date"])
        assert _d(policy["effective_date"]) < on < AS_OF < _d(policy["expiration_date"])


def test_requirement_sets(net):
    keys = [key for key, _ in net.requirement_sets]
    assert {"standard", "high_risk", "large_jobs"} <= set(keys)
    for _key, body in net.requirement_sets:
        assert body["certificate_holder"] == {"name": network.HOLDER_NAME}
        assert body["min_am_best"] in RATINGS
        assert set(body["applies_to"]) == {"work_types", "regions", "risk_tiers", "min_amount"}
        assert set(body["applies_to"]["work_types"]) <= set(network.TRADES)
        assert set(body["umbrella_counts_toward"]) <= set(model.LINES)
        for code, severity in body["severity"].items():
            assert code in model.DEFICIENCY_CODES and severity in model.SEVERITIES
        for coverage in body["coverages"]:
            assert coverage["line"] in model.LINES
            assert set(coverage["limits"]) <= set(model.LIMIT_KEYS[coverage["line"]])
            assert all(type(v) is int for v in coverage["limits"].values())
    bodies = dict(net.requirement_sets[:3])
    standard = bodies["standard"]
    assert standard["priority"] == 0 and standard["min_am_best"] == "A-"
    assert standard["severity"]["insurer_rating_below_minimum"] == "warn"
    assert set(standard["umbrella_counts_toward"]) == {"general_liability", "automobile_liability"}
    by_line = {c["line"]: c for c in standard["coverages"]}
    assert by_line["general_liability"]["limits"] == {
        "each_occurrence": 1_000_000,
        "general_aggregate": 2_000_000,
    }
    assert by_line["general_liability"]["additional_insured"] is True
    assert by_line["automobile_liability"]["limits"] == {"combined_single_limit": 1_000_000}
    wc = by_line["workers_compensation"]
    assert wc["statutory"] is True and wc["waiver_of_subrogation"] is True
    assert set(wc["limits"].values()) == {500_000}
    high = bodies["high_risk"]
    assert high["priority"] == 10
    assert set(high["applies_to"]["work_types"]) == {"roofing", "electrical", "hvac"}
    umbrella = next(c for c in high["coverages"] if c["line"] == "umbrella_liability")
    assert umbrella["limits"]["each_occurrence"] == 5_000_000
    large = bodies["large_jobs"]
    assert large["priority"] == 20 and large["applies_to"]["min_amount"] == 5_000_000
    future = [body for key, body in net.requirement_sets if "effective_from" in body]
    assert len(future) == 1
    assert _d(future[0]["effective_from"]) == AS_OF + timedelta(days=60)


def test_work_orders_reference_existing_vendors(net):
    refs = {
        (r["system"], r["external_id"]): entry
        for entry in net.vendors
        for r in entry["vendor"]["external_refs"]
    }
    assert 6 <= len(net.work_orders) <= 8
    unknown = []
    for order in net.work_orders:
        assert set(order) == {
            "work_order",
            "vendor",
            "work_type",
            "region",
            "scheduled_start",
            "scheduled_end",
            "amount",
        }
        assert order["work_order"]["system"] == "dispatch"
        assert type(order["amount"]) is int and order["amount"] > 0
        start, end = _d(order["scheduled_start"]), _d(order["scheduled_end"])
        assert AS_OF <= start <= end
        key = (order["vendor"]["system"], order["vendor"]["external_id"])
        if key not in refs:
            unknown.append(order)
            continue
        vendor = refs[key]["vendor"]
        assert order["work_type"] in vendor["work_types"]
        assert order["region"] in vendor["regions"]
    assert len(unknown) == 1
    ids = [o["work_order"]["external_id"] for o in net.work_orders]
    assert len(set(ids)) == len(ids)


def test_work_orders_show_allow_warn_and_block(net):
    assert [i["work_order"] for i in net.work_order_intents] == [
        o["work_order"]["external_id"] for o in net.work_orders
    ]
    intents = Counter(i["intent"] for i in net.work_order_intents)
    assert intents["allow"] >= 1 and intents["warn"] >= 1 and intents["block"] >= 3
    assert any(o["amount"] >= 5_000_000 for o in net.work_orders)

    refs = {
        (r["system"], r["external_id"]): entry
        for entry in net.vendors
        for r in entry["vendor"]["external_refs"]
    }
    scenarios = {}
    for order, intent in zip(net.work_orders, net.work_order_intents, strict=True):
        entry = refs.get((order["vendor"]["system"], order["vendor"]["external_id"]))
        scenario = entry["scenario"] if entry else "unknown_vendor"
        scenarios.setdefault(scenario, []).append((order, intent["intent"]))
        if scenario == "compliant":
            assert intent["intent"] == "allow"
    assert {"compliant", "low_rated_insurer", "expired", "cancelled", "unknown_vendor"} <= set(
        scenarios
    )
    assert {"expiring"} <= set(scenarios)
    for order, intent in scenarios["expiring"]:
        entry = refs[(order["vendor"]["system"], order["vendor"]["external_id"])]
        expires = min(
            _d(p["expiration_date"]) for c in entry["certificates"] for p in c["policies"]
        )
        assert _d(order["scheduled_start"]) < expires <= _d(order["scheduled_end"])
        assert intent == "block"


def _shortfalls(policies: list[dict], body: dict) -> set[str]:
    """Limit, endorsement and missing-line shortfalls of one policy set (dates ignored)."""
    by_line = {p["line"]: p for p in policies}
    umbrella = by_line.get("umbrella_liability", {}).get("limits", {})
    codes = set()
    for coverage in body["coverages"]:
        policy = by_line.get(coverage["line"])
        if policy is None:
            codes.add("missing_coverage")
            continue
        top_up = coverage["line"] in body["umbrella_counts_toward"]
        for key, minimum in coverage["limits"].items():
            amount = policy["limits"].get(key, 0)
            if top_up and key in ("each_occurrence", "combined_single_limit"):
                amount += umbrella.get("each_occurrence", 0)
            elif top_up and "aggregate" in key:
                amount += umbrella.get("aggregate", 0)
            if amount < minimum:
                codes.add("limit_below_minimum")
        for flag in ("additional_insured", "waiver_of_subrogation", "primary_noncontributory"):
            if coverage[flag] and not policy[flag]:
                codes.add(f"{flag}_missing")
        if coverage["statutory"] and policy["limits"].get("statutory") is not True:
            codes.add("limit_below_minimum")
    return codes


def test_each_scenario_has_only_its_own_limit_or_endorsement_defect(net):
    bodies = dict(net.requirement_sets[:3])
    expected = {
        "under_limit": {"limit_below_minimum"},
        "missing_additional_insured": {"additional_insured_missing"},
    }
    for entry in net.vendors:
        if not entry["certificates"]:
            continue
        policies = entry["certificates"][-1]["policies"]
        sets = [bodies["standard"]]
        if set(entry["vendor"]["work_types"]) & set(network.HIGH_RISK_TRADES):
            sets.append(bodies["high_risk"])
        for body in sets:
            found = _shortfalls(policies, body)
            assert found == expected.get(entry["scenario"], set()), (
                entry["scenario"],
                entry["vendor"]["name"],
                body["name"],
                found,
            )


def test_large_job_goes_to_a_vendor_meeting_the_large_jobs_set(net):
    bodies = dict(net.requirement_sets[:3])
    refs = {
        (r["system"], r["external_id"]): entry
        for entry in net.vendors
        for r in entry["vendor"]["external_refs"]
    }
    large = [o for o in net.work_orders if o["amount"] >= 5_000_000]
    assert large
    for order in large:
        entry = refs[(order["vendor"]["system"], order["vendor"]["external_id"])]
        assert entry["scenario"] == "compliant"
        assert _shortfalls(entry["certificates"][-1]["policies"], bodies["large_jobs"]) == set()
