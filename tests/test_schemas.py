"""Request schemas: what valid input loads to, and which field each kind of bad input names."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from marshmallow import ValidationError

from connector import schemas
from connector.compliance.model import LIMIT_KEYS


def _policy(**overrides: Any) -> dict[str, Any]:
    policy = {
        "line": "general_liability",
        "policy_number": " GL-1001 ",
        "insurer": {"name": "Acme Mutual", "naic": "12345", "am_best": "A"},
        "effective_date": "2025-01-01",
        "expiration_date": "2026-01-01",
        "limits": {"each_occurrence": 1_000_000, "general_aggregate": 2_000_000},
    }
    policy.update(overrides)
    return policy


def _certificate(*policies: dict[str, Any]) -> dict[str, Any]:
    return {
        "producer": {"name": "Broker & Co", "email": "desk@broker.example", "phone": "555-0100"},
        "insured": {"name": "Sparky Electric LLC"},
        "certificate_holder": {"name": "Big Property Co", "address": "1 Main St"},
        "policies": list(policies) or [_policy()],
    }


def _requirement_set(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Electrical work",
        "coverages": [
            {"line": "general_liability", "limits": {"each_occurrence": 1_000_000}},
            {"line": "workers_compensation", "statutory": True},
        ],
    }
    body.update(overrides)
    return body


def _gate(**overrides: Any) -> dict[str, Any]:
    body = {
        "work_order": {"system": "dispatch", "external_id": "WO-1"},
        "vendor_id": 7,
        "work_type": " Electrical ",
        "region": "TX",
        "scheduled_start": "2025-03-01",
        "scheduled_end": "2025-03-03",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def _errors(schema, data: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        schema.load(data)
    return caught.value.messages


# --- valid input ---------------------------------------------------------------------------


def test_vendor_loads_normalised_with_defaults():
    loaded = schemas.vendor_create_schema.load(
        {
            "name": "  Sparky Electric  ",
            "email": "office@sparky.example",
            "work_types": [" Electrical", "electrical", "HVAC"],
            "regions": ["TX", "tx "],
            "external_refs": [
                {"system": "salesforce", "external_id": "001A"},
                {"system": "salesforce", "external_id": "001A"},
            ],
        }
    )

    assert loaded == {
        "name": "Sparky Electric",
        "email": "office@sparky.example",
        "work_types": ["electrical", "hvac"],
        "regions": ["tx"],
        "external_refs": [{"system": "salesforce", "external_id": "001A"}],
    }


def test_certificate_loads_dates_and_defaults():
    loaded = schemas.certificate_schema.load(
        {**_certificate(), "received_at": "2025-01-02T10:00:00+02:00"}
    )

    assert loaded["source"] == "api"
    assert loaded["received_at"] == dt.datetime(2025, 1, 2, 8, 0, tzinfo=dt.UTC)
    assert loaded["policies"] == [
        {
            "line": "general_liability",
            "policy_number": "GL-1001",
            "insurer": {"name": "Acme Mutual", "naic": "12345", "am_best": "A"},
            "effective_date": dt.date(2025, 1, 1),
            "expiration_date": dt.date(2026, 1, 1),
            "limits": {"each_occurrence": 1_000_000, "general_aggregate": 2_000_000},
            "additional_insured": False,
            "waiver_of_subrogation": False,
            "primary_noncontributory": False,
            "claims_made": False,
        }
    ]


def test_workers_compensation_policy_may_be_statutory():
    policy = _policy(
        line="workers_compensation",
        limits={"statutory": True, "el_each_accident": 1_000_000},
    )

    loaded = schemas.certificate_schema.load(_certificate(policy))

    assert loaded["policies"][0]["limits"] == {"statutory": True, "el_each_accident": 1_000_000}


def test_calendar_date_keeps_the_date_part_of_a_datetime():
    policy = _policy(
        effective_date="2025-01-01T00:01:00-05:00", expiration_date="2026-01-01T00:01:00Z"
    )

    loaded = schemas.certificate_schema.load(_certificate(policy))["policies"][0]

    assert (loaded["effective_date"], loaded["expiration_date"]) == (
        dt.date(2025, 1, 1),
        dt.date(2026, 1, 1),
    )


def test_requirement_set_loads_with_defaults():
    loaded = schemas.requirement_set_schema.load(
        _requirement_set(
            applies_to={"work_types": ["Electrical"], "min_amount": 500_000},
            severity={"certificate_holder_mismatch": "warn"},
            umbrella_counts_toward=["general_liability", "general_liability"],
            effective_from="2025-06-01",
        )
    )

    assert loaded == {
        "name": "Electrical work",
        "applies_to": {
            "work_types": ["electrical"],
            "regions": [],
            "risk_tiers": [],
            "min_amount": 500_000,
        },
        "priority": 0,
        "expiring_window_days": 30,
        "coverages": [
            {
                "line": "general_liability",
                "limits": {"each_occurrence": 1_000_000},
                "additional_insured": False,
                "waiver_of_subrogation": False,
                "primary_noncontributory": False,
                "statutory": False,
            },
            {
                "line": "workers_compensation",
                "limits": {},
                "additional_insured": False,
                "waiver_of_subrogation": False,
                "primary_noncontributory": False,
                "statutory": True,
            },
        ],
        "umbrella_counts_toward": ["general_liability"],
        "severity": {"certificate_holder_mismatch": "warn"},
        "effective_from": dt.date(2025, 6, 1),
    }


def test_gate_request_loads_normalised():
    loaded = schemas.gate_request_schema.load(_gate(amount=125_000, vendor=None))

    assert loaded == {
        "work_order": {"system": "dispatch", "external_id": "WO-1"},
        "vendor_id": 7,
        "work_type": "electrical",
        "region": "tx",
        "scheduled_start": dt.date(2025, 3, 1),
        "scheduled_end": dt.date(2025, 3, 3),
        "amount": 125_000,
    }


def test_gate_request_by_external_vendor_ref():
    loaded = schemas.gate_request_schema.load(
        _gate(vendor_id=..., vendor={"system": "salesforce", "external_id": "001A"})
    )

    assert loaded["vendor"] == {"system": "salesforce", "external_id": "001A"}
    assert "vendor_id" not in loaded


def test_cancellation_notice_loads():
    loaded = schemas.cancellation_notice_schema.load(
        {
            "policy_number": "GL-1001",
            "insurer_name": " Acme Mutual ",
            "effective_date": "2025-05-01",
            "received_via": "carrier_portal",
        }
    )

    assert loaded == {
        "policy_number": "GL-1001",
        "insurer_name": "Acme Mutual",
        "effective_date": dt.date(2025, 5, 1),
        "received_via": "carrier_portal",
    }


def test_query_args_are_converted_and_defaulted():
    loaded = schemas.vendor_query_schema.load({"status": "expiring", "page": "2", "region": "TX"})

    assert loaded == {"status": "expiring", "region": "tx", "page": 2, "per_page": 50}


def test_waiver_loads():
    loaded = schemas.waiver_schema.load(
        {"code": "expired", "reason": " renewal in the mail ", "until": "2025-02-01"}
    )

    assert loaded == {
        "code": "expired",
        "reason": "renewal in the mail",
        "until": dt.date(2025, 2, 1),
    }


def test_insurer_row_loads_stripped():
    loaded = schemas.insurer_row_schema.load({"naic": " 12345 ", "name": "Acme", "am_best": "A-"})

    assert loaded == {"naic": "12345", "name": "Acme", "am_best": "A-"}


@pytest.mark.parametrize("key", ["gc", "gc-2025.v1", "a" * 64, "0_default"])
def test_valid_requirement_keys(key):
    assert schemas.validate_requirement_key(key) == key


def test_every_limit_key_of_every_line_is_accepted():
    for line, keys in LIMIT_KEYS.items():
        policy = _policy(line=line, limits=dict.fromkeys(keys, 0))
        schemas.certificate_schema.load(_certificate(policy))


# --- invalid input: each names the field -----------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "key"),
    [
        ({"each_occurence": 1}, "each_occurence"),
        ({"each_occurrence": -1}, "each_occurrence"),
        ({"each_occurrence": 1.5}, "each_occurrence"),
        ({"each_occurrence": 1_000_000.0}, "each_occurrence"),
        ({"each_occurrence": True}, "each_occurrence"),
        ({"each_occurrence": "1000000"}, "each_occurrence"),
        ({"each_occurrence": None}, "each_occurrence"),
        ({"statutory": True}, "statutory"),
        ({"el_each_accident": 1}, "el_each_accident"),
    ],
    ids=[
        "unknown",
        "negative",
        "fraction",
        "float",
        "bool",
        "string",
        "null",
        "statutory-non-wc",
        "other-line-key",
    ],
)
def test_bad_policy_limit_is_keyed_by_limit(limits, key):
    errors = _errors(schemas.certificate_schema, _certificate(_policy(limits=limits)))

    assert list(errors["policies"][0]["limits"]) == [key]


def test_statutory_must_be_boolean():
    policy = _policy(line="workers_compensation", limits={"statutory": "yes"})

    errors = _errors(schemas.certificate_schema, _certificate(policy))

    assert list(errors["policies"][0]["limits"]) == ["statutory"]


def test_unknown_coverage_line():
    errors = _errors(schemas.certificate_schema, _certificate(_policy(line="liability")))

    assert list(errors["policies"][0]) == ["line"]


def test_limit_errors_reported_with_other_field_errors():
    policy = _policy(policy_number="", limits={"each_occurrence": -5})

    errors = _errors(schemas.certificate_schema, _certificate(policy))

    assert set(errors["policies"][0]) == {"policy_number", "limits"}


@pytest.mark.parametrize("expiration", ["2024-12-31", "2025-01-01"])
def test_expiration_must_follow_effective_date(expiration):
    policy = _policy(effective_date="2025-01-01", expiration_date=expiration)

    errors = _errors(schemas.certificate_schema, _certificate(policy))

    assert list(errors["policies"][0]) == ["expiration_date"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("naic", "1234"),
        ("naic", "12a45"),
        ("naic", "\uff11\uff12\uff13\uff14\uff15"),
        ("am_best", "AAA"),
    ],
)
def test_bad_insurer_field(field, value):
    policy = _policy(insurer={"name": "Acme", field: value})

    errors = _errors(schemas.certificate_schema, _certificate(policy))

    assert list(errors["policies"][0]["insurer"]) == [field]


@pytest.mark.parametrize("count", [0, 51])
def test_certificate_policy_count(count):
    errors = _errors(
        schemas.certificate_schema, {**_certificate(), "policies": [_policy()] * count}
    )

    assert list(errors) == ["policies"]


def test_certificate_needs_insured_and_holder():
    body = _certificate()
    del body["insured"], body["certificate_holder"]

    errors = _errors(schemas.certificate_schema, body)

    assert set(errors) == {"insured", "certificate_holder"}


def test_coverage_with_unknown_line():
    body = _requirement_set(coverages=[{"line": "space_liability"}])

    errors = _errors(schemas.requirement_set_schema, body)

    assert list(errors["coverages"][0]) == ["line"]


@pytest.mark.parametrize(
    "limits",
    [{"aggregate": 1}, {"each_occurrence": -1}, {"each_occurrence": 2.5}, {"statutory": True}],
    ids=["unknown", "negative", "float", "statutory-in-limits"],
)
def test_bad_coverage_limit_is_keyed_by_limit(limits):
    body = _requirement_set(coverages=[{"line": "general_liability", "limits": limits}])

    errors = _errors(schemas.requirement_set_schema, body)

    assert list(errors["coverages"][0]["limits"]) == list(limits)


def test_statutory_coverage_on_non_wc_line():
    body = _requirement_set(coverages=[{"line": "general_liability", "statutory": True}])

    errors = _errors(schemas.requirement_set_schema, body)

    assert list(errors["coverages"][0]) == ["statutory"]


def test_duplicate_coverage_line_names_the_repeat():
    coverages = [{"line": "property"}, {"line": "cyber_liability"}, {"line": "property"}]

    errors = _errors(schemas.requirement_set_schema, _requirement_set(coverages=coverages))

    assert errors == {"coverages": {2: {"line": ["property is listed more than once."]}}}


@pytest.mark.parametrize(
    ("severity", "path"),
    [
        ({"late_paperwork": "block"}, ("late_paperwork", "key")),
        ({"expired": "fatal"}, ("expired", "value")),
    ],
)
def test_bad_severity(severity, path):
    errors = _errors(schemas.requirement_set_schema, _requirement_set(severity=severity))

    code, part = path
    assert part in errors["severity"][code]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"min_am_best": "AA"}, "min_am_best"),
        ({"coverages": []}, "coverages"),
        ({"expiring_window_days": 366}, "expiring_window_days"),
        ({"name": "   "}, "name"),
        ({"umbrella_counts_toward": ["flood"]}, "umbrella_counts_toward"),
        ({"applies_to": {"risk_tiers": ["extreme"]}}, "applies_to"),
        ({"applies_to": {"min_amount": 1.5}}, "applies_to"),
    ],
)
def test_bad_requirement_set_field(overrides, field):
    errors = _errors(schemas.requirement_set_schema, _requirement_set(**overrides))

    assert list(errors) == [field]


@pytest.mark.parametrize("key", ["", "-gc", "GC", "gc/x", "a" * 65, "gc\n"])
def test_bad_requirement_key(key):
    with pytest.raises(ValidationError) as caught:
        schemas.validate_requirement_key(key)

    assert list(caught.value.messages) == ["key"]


@pytest.mark.parametrize(
    ("schema", "body"),
    [
        (schemas.vendor_create_schema, {"name": "Acme", "colour": "red"}),
        (schemas.certificate_schema, {**_certificate(), "signature": "x"}),
        (schemas.requirement_set_schema, _requirement_set(key="gc")),
        (schemas.gate_request_schema, _gate(urgent=True)),
        (schemas.vendor_query_schema, {"sort": "name"}),
    ],
    ids=["vendor", "certificate", "requirement-set", "gate", "query"],
)
def test_unknown_top_level_field(schema, body):
    errors = _errors(schema, body)

    unknown = set(body) - set(schema.fields)
    assert set(errors) == unknown


def test_unknown_nested_field():
    policy = _policy(insurer={"name": "Acme", "rating": "A"})

    errors = _errors(schemas.certificate_schema, _certificate(policy))

    assert list(errors["policies"][0]["insurer"]) == ["rating"]


@pytest.mark.parametrize("name", ["", "   ", None])
def test_blank_vendor_name(name):
    errors = _errors(schemas.vendor_create_schema, {"name": name})

    assert list(errors) == ["name"]


def test_vendor_name_is_required():
    assert list(_errors(schemas.vendor_create_schema, {})) == ["name"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Acme", "email": "not-an-email"}, "email"),
        ({"name": "Acme", "risk_tier": "extreme"}, "risk_tier"),
        ({"name": "Acme", "work_types": ["  "]}, "work_types"),
        ({"name": "Acme", "external_refs": [{"system": "sf"}]}, "external_refs"),
    ],
)
def test_bad_vendor_field(body, field):
    assert list(_errors(schemas.vendor_create_schema, body)) == [field]


@pytest.mark.parametrize(
    "overrides",
    [
        {"vendor": {"system": "salesforce", "external_id": "001A"}},
        {"vendor_id": ...},
        {"vendor_id": None},
    ],
    ids=["both", "neither", "null-id"],
)
def test_gate_needs_exactly_one_vendor_identity(overrides):
    errors = _errors(schemas.gate_request_schema, _gate(**overrides))

    assert list(errors) == ["vendor"]


def test_gate_scheduled_end_before_start():
    body = _gate(scheduled_start="2025-03-03", scheduled_end="2025-03-02")

    errors = _errors(schemas.gate_request_schema, body)

    assert list(errors) == ["scheduled_end"]


def test_gate_single_day_window_is_fine():
    body = _gate(scheduled_start="2025-03-03", scheduled_end="2025-03-03")

    assert schemas.gate_request_schema.load(body)["scheduled_end"] == dt.date(2025, 3, 3)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": -1}, "amount"),
        ({"amount": 10.5}, "amount"),
        ({"vendor_id": 0}, "vendor_id"),
        ({"vendor_id": "7"}, "vendor_id"),
        ({"scheduled_start": "tomorrow"}, "scheduled_start"),
        ({"work_type": ""}, "work_type"),
    ],
)
def test_bad_gate_field(overrides, field):
    assert list(_errors(schemas.gate_request_schema, _gate(**overrides))) == [field]


def test_compliance_window_until_before_as_of():
    errors = _errors(
        schemas.compliance_query_schema, {"as_of": "2025-03-02", "until": "2025-03-01"}
    )

    assert list(errors) == ["until"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "late", "reason": "x", "until": "2025-01-01"}, "code"),
        ({"code": "expired", "reason": " ", "until": "2025-01-01"}, "reason"),
        ({"code": "expired", "line": "boats", "reason": "x", "until": "2025-01-01"}, "line"),
        ({"code": "expired", "reason": "x"}, "until"),
    ],
)
def test_bad_waiver_field(body, field):
    assert list(_errors(schemas.waiver_schema, body)) == [field]


def test_bad_notice_channel():
    body = {
        "policy_number": "GL-1",
        "insurer_name": "Acme",
        "effective_date": "2025-05-01",
        "received_via": "pigeon",
    }

    assert list(_errors(schemas.cancellation_notice_schema, body)) == ["received_via"]


@pytest.mark.parametrize(
    ("args", "field"), [({"per_page": "201"}, "per_page"), ({"page": "0"}, "page")]
)
def test_bad_paging(args, field):
    assert list(_errors(schemas.audit_query_schema, args)) == [field]


@pytest.mark.parametrize("data", [[], "text", None, 5])
def test_non_object_body_is_a_validation_error(data):
    with pytest.raises(ValidationError):
        schemas.gate_request_schema.load(data)


def test_loading_does_not_modify_the_input():
    body = _gate(work_type=" Electrical ")
    before = copy.deepcopy(body)

    schemas.gate_request_schema.load(body)

    assert body == before


def test_policy_limits_errors_is_shared_helper():
    errors = schemas.policy_limits_errors(
        "automobile_liability", {"combined_single_limit": 1_000_000, "aggregate": 5}
    )

    assert list(errors) == ["aggregate"]
