"""The work-order gate: decisions, reasons, alternatives, storage."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from uuid import RFC_4122, UUID

import pytest
from sqlalchemy import select

from connector.app import create_app, runtime
from connector.clock import utcnow
from connector.config import Settings
from connector.services.gate import decision_id
from connector.storage import models as m
from tests.conftest import (
    STANDARD_SET,
    JSONClient,
    certificate,
    day,
    good_certificate,
    policy,
)


def gate(api, vendor_ref: str, start: int = 1, end: int = 2, **extra) -> dict:
    body = {
        "work_order": {"system": "dispatch", "external_id": extra.pop("wo", "WO-1")},
        "vendor": {"system": "dispatch", "external_id": vendor_ref},
        "work_type": "plumbing",
        "region": "us-east",
        "scheduled_start": day(start),
        "scheduled_end": day(end),
        **extra,
    }
    response = api.post("/api/v1/gate", body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_compliant_vendor_is_allowed(api, standard_set, make_vendor):
    make_vendor(cert=good_certificate())

    decision = gate(api, "P-1")

    assert (decision["decision"], decision["status"], decision["reasons"]) == (
        "allow",
        "compliant",
        [],
    )


def test_non_compliant_vendor_is_blocked_with_reasons(api, standard_set, make_vendor):
    cert = certificate(
        policy(
            "general_liability",
            "GL-1",
            -10,
            300,
            limits={"each_occurrence": 500_000, "general_aggregate": 2_000_000},
        ),
        policy("automobile_liability", "AU-1", -10, 300),
    )
    make_vendor(cert=cert)

    decision = gate(api, "P-1")

    assert decision["decision"] == "block"
    assert [r["code"] for r in decision["reasons"]] == ["limit_below_minimum"]


def test_expiring_vendor_gets_a_warning(api, standard_set, make_vendor):
    make_vendor(cert=good_certificate(end=20))

    decision = gate(api, "P-1")

    assert (decision["decision"], [r["code"] for r in decision["reasons"]]) == (
        "warn",
        ["expiring"],
    )


def test_window_reaching_past_expiry_is_evaluated_and_blocked(api, standard_set, make_vendor):
    make_vendor(cert=good_certificate(end=20))

    decision = gate(api, "P-1", start=15, end=25)

    assert (decision["decision"], {r["code"] for r in decision["reasons"]}) == (
        "block",
        {"expired"},
    )


def test_warn_severity_deficiency_warns_instead_of_blocking(api, make_vendor):
    lenient = {**STANDARD_SET, "severity": {"additional_insured_missing": "warn"}}
    api.put("/api/v1/requirement-sets/standard", lenient)
    cert = certificate(
        policy("general_liability", "GL-1", -10, 300, additional_insured=False),
        policy("automobile_liability", "AU-1", -10, 300),
    )
    make_vendor(cert=cert)

    decision = gate(api, "P-1")

    assert (decision["decision"], [r["code"] for r in decision["reasons"]]) == (
        "warn",
        ["additional_insured_missing"],
    )


def test_unknown_vendor_is_blocked(api, standard_set):
    decision = gate(api, "NOBODY")

    assert (decision["decision"], decision["vendor_id"], decision["reasons"][0]["code"]) == (
        "block",
        None,
        "unknown_vendor",
    )


def test_a_vendor_created_after_an_unknown_vendor_answer_is_known_at_once(
    api, standard_set, make_vendor
):
    assert gate(api, "P-1")["reasons"][0]["code"] == "unknown_vendor"
    vendor_id = make_vendor(cert=good_certificate())  # bound as P-1

    decision = gate(api, "P-1", wo="WO-2")

    assert (decision["decision"], decision["vendor_id"]) == ("allow", vendor_id)


def test_alternatives_are_compliant_same_trade_and_region_best_first(
    api, standard_set, make_vendor
):
    blocked = make_vendor("Blocked")
    modest = make_vendor("Modest", cert=good_certificate(end=100))
    strong = make_vendor("Strong", cert=good_certificate(end=360))
    make_vendor("Other trade", work_types=["roofing"], cert=good_certificate())
    make_vendor("Other region", regions=["us-west"], cert=good_certificate())
    make_vendor("Also blocked")

    decision = gate(api, "P-1")

    assert decision["vendor_id"] == blocked
    assert [a["vendor_id"] for a in decision["alternatives"]] == [strong, modest]


def test_at_most_five_alternatives_are_named_never_the_vendor_itself(
    api, standard_set, make_vendor
):
    gated = make_vendor("Gated", cert=good_certificate(end=360))
    others = {make_vendor(f"Other {n}", cert=good_certificate(end=360)) for n in range(6)}

    decision = gate(api, "P-1")

    named = [a["vendor_id"] for a in decision["alternatives"]]
    assert (decision["vendor_id"], len(named), set(named) <= others) == (gated, 5, True)


def test_decision_and_work_order_are_stored_and_audited(
    app, api, standard_set, make_vendor, sessions
):
    make_vendor(cert=good_certificate())

    before = utcnow()
    first = gate(api, "P-1", wo="WO-7")
    second = gate(api, "P-1", wo="WO-7", start=3, end=4, amount=1_250_00)
    runtime(app).write_behind.flush()

    with sessions() as session:
        work_orders = session.scalars(select(m.WorkOrder)).all()
        decisions = session.scalars(select(m.GateDecision.uid).order_by(m.GateDecision.id)).all()
        audited = session.scalars(
            select(m.AuditEvent.detail).where(m.AuditEvent.action == "gate.decision")
        ).all()
    # One work order, as the second decision left it, each column as the model types it.
    columns = ("external_id", "vendor_id", "work_type", "region")
    columns += ("scheduled_start", "scheduled_end", "amount")
    assert [tuple(getattr(w, c) for c in columns) for w in work_orders] == [
        (
            "WO-7",
            first["vendor_id"],
            "plumbing",
            "us-east",
            *map(date.fromisoformat, (day(3), day(4))),
            1_250_00,
        )
    ]
    with sessions() as session:  # stored in the form the database compares times in
        made = select(m.WorkOrder.id).where(m.WorkOrder.created_at.between(before, utcnow()))
        assert session.scalars(made).all() == [work_orders[0].id]
    assert decisions == [first["decision_id"], second["decision_id"]]
    assert sorted(a["decision_id"] for a in audited) == sorted(decisions)


def test_decisions_reach_the_database_without_being_asked(api, standard_set, make_vendor, sessions):
    make_vendor(cert=good_certificate())

    decision = gate(api, "P-1", wo="WO-8")

    # The worker's background writer stores it within its interval (100 ms by default).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sessions() as session:
            stored = session.scalar(
                select(m.GateDecision.decision).where(m.GateDecision.uid == decision["decision_id"])
            )
        if stored is not None:
            break
        time.sleep(0.02)
    assert stored == "allow"


def test_decisions_are_stored_in_the_request_when_write_behind_is_off(
    engine, database_url, make_token, standard_set
):
    settings = Settings(database_url=database_url, write_behind_ms=0)
    app = create_app(settings, engine=engine)
    client = JSONClient(app.test_client(), make_token("admin"))
    client.post(
        "/api/v1/vendors",
        {
            "name": "Ridgeline Plumbing LLC",
            "work_types": ["plumbing"],
            "regions": ["us-east"],
            "external_refs": [{"system": "dispatch", "external_id": "P-9"}],
        },
    )

    decision = gate(client, "P-9", wo="WO-9")

    with runtime(app).sessions() as session:
        stored = session.scalar(
            select(m.GateDecision.decision).where(m.GateDecision.uid == decision["decision_id"])
        )
    assert stored == "block"


@pytest.mark.parametrize(
    ("amount", "expected_set"), [(100_00, "standard"), (10_000_000_00, "large_jobs")]
)
def test_large_jobs_use_the_set_that_applies_to_their_amount(
    api, standard_set, make_vendor, amount, expected_set
):
    large = {**STANDARD_SET, "priority": 20, "applies_to": {"min_amount": 5_000_000_00}}
    api.put("/api/v1/requirement-sets/large_jobs", large)
    make_vendor(cert=good_certificate())

    decision = gate(api, "P-1", amount=amount)

    assert decision["requirement_set"] == expected_set


def test_gate_by_vendor_id(api, standard_set, make_vendor):
    vendor_id = make_vendor(cert=good_certificate())
    body = {
        "work_order": {"system": "dispatch", "external_id": "WO-9"},
        "vendor_id": vendor_id,
        "work_type": "plumbing",
        "region": "us-east",
        "scheduled_start": day(1),
        "scheduled_end": day(1),
    }

    assert api.post("/api/v1/gate", body).get_json()["decision"] == "allow"


def test_unknown_vendor_of_a_fail_open_connection_is_a_warning(api, standard_set):
    api.post(
        "/api/v1/connections",
        {"name": "dispatch", "kind": "dispatch", "settings": {}, "fail_open": True},
    )

    decision = gate(api, "NOBODY")

    assert (decision["decision"], decision["reasons"][0]["code"]) == ("warn", "unknown_vendor")


def test_decision_ids_are_uuid7_that_grow_with_time():
    at = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    later = [decision_id(at + timedelta(milliseconds=ms)) for ms in (1, 2, 1000, 86_400_000)]
    first = decision_id(at)

    parsed = UUID(first)
    assert (parsed.version, parsed.variant) == (7, RFC_4122)
    assert int(first[:12], 16) == int(at.timestamp() * 1000)
    assert [first, *later] == sorted([first, *later])
    assert len({decision_id(at) for _ in range(1000)}) == 1000
