"""Bad input: malformed JSON is a 400, schema violations a 422 naming the field, oversized bodies
a 413, unknown records a 404 (or a `block` at the gate). None of it is ever a 500 and none of it
writes half a record. Every error is JSON `{"error": {"code", "message", "fields"}}`."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from connector.app import create_app
from connector.config import Settings
from connector.storage import models as m
from tests.conftest import certificate, day, good_certificate, policy

MIB = 1024 * 1024
MAX_INT64 = 2**63 - 1

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def error_of(response, status: int) -> dict:
    """The `error` object of a JSON error response with this status (checks the shape)."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["fields"], dict)
    return body["error"]


def messages_at(fields: dict, path: tuple) -> list:
    """The messages at a field path of `error.fields` (list indexes come back as strings)."""
    node = fields
    for key in path:
        assert isinstance(node, dict) and str(key) in node, (path, fields)
        node = node[str(key)]
    return node


def post_raw(api, path: str, raw: bytes, method: str = "POST"):
    return api.call(method, path, data=raw, content_type="application/json")


def counts(sessions, *models) -> tuple[int, ...]:
    with sessions() as session:
        return tuple(session.scalar(select(func.count()).select_from(t)) for t in models)


def gate_body(**changes) -> dict:
    body = {
        "work_order": {"system": "dispatch", "external_id": "WO-1"},
        "vendor": {"system": "dispatch", "external_id": "P-1"},
        "work_type": "plumbing",
        "region": "us-east",
        "scheduled_start": day(1),
        "scheduled_end": day(3),
        "amount": 125_000,
    }
    body.update(changes)
    return body


def gate_by_id(vendor_id, **changes) -> dict:
    body = gate_body(vendor_id=vendor_id, **changes)
    del body["vendor"]
    return body


def with_policy(index: int, **changes) -> dict:
    cert = good_certificate()
    cert["policies"][index].update(changes)
    return cert


def with_limits(**limits) -> dict:
    return with_policy(0, limits={"each_occurrence": 1_000_000, **limits})


def vendor_body(**changes) -> dict:
    body = {
        "name": "Hostile Input Plumbing LLC",
        "email": "ops@hostile.example",
        "work_types": ["plumbing"],
        "regions": ["us-east"],
        "external_refs": [{"system": "erp", "external_id": "V-100"}],
    }
    body.update(changes)
    return body


REQUIREMENT_SET = {
    "name": "Bad input set",
    "coverages": [{"line": "general_liability", "limits": {"each_occurrence": 1_000_000}}],
}

NOTICE = {
    "policy_number": "GL-1",
    "insurer_name": "Keystone Mutual Insurance Co.",
    "effective_date": day(10),
    "received_via": "mail",
}


# --------------------------------------------------------------------------------------------
# 400: malformed JSON
# --------------------------------------------------------------------------------------------

MALFORMED = {
    "empty": b"",
    "truncated": b'{"name": "Acme Plumbing", "work_types": ["plumb',
    "trailing_garbage": b'{"name": "Acme Plumbing"} trailing',
    "two_documents": b'{"name": "a"}{"name": "b"}',
    "single_quotes": b"{'name': 'Acme'}",
    "trailing_comma": b'{"name": "Acme",}',
    "nan": b'{"name": "Acme", "amount": NaN}',
    "infinity": b'{"name": "Acme", "amount": Infinity}',
    "minus_infinity": b'{"name": "Acme", "amount": -Infinity}',
    "invalid_utf8": b'{"name": "Acme \xff\xfe Plumbing"}',
    "overlong_utf8": b'{"name": "\xc0\xaf"}',
    "nested_100k_open": b"[" * 100_000,
    "nested_100k_closed": b"[" * 100_000 + b"]" * 100_000,
    "escaped_nul_in_value": b'{"name": "Acme\\u0000Plumbing"}',
    "escaped_nul_in_key": b'{"na\\u0000me": "Acme"}',
    "escaped_nul_deep": b'{"work_order": {"system": "d", "external_id": ["x\\u0000"]}}',
    "raw_nul_in_string": b'{"name": "Acme\x00Plumbing"}',
    "too_many_digits": b'{"amount": ' + b"9" * 5000 + b"}",
}

BODY_ROUTES = ("/api/v1/vendors", "/api/v1/gate")


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_json_is_a_400(api, raw):
    codes = {path: error_of(post_raw(api, path, raw), 400)["code"] for path in BODY_ROUTES}

    assert codes == dict.fromkeys(BODY_ROUTES, "malformed")


DEEP_BUT_COMPLETE = {
    "list_600": b"[" * 600 + b"]" * 600,
    "object_600": b'{"a":' * 600 + b"1" + b"}" * 600,
}


@pytest.mark.parametrize("path", BODY_ROUTES)
@pytest.mark.parametrize("raw", DEEP_BUT_COMPLETE.values(), ids=DEEP_BUT_COMPLETE.keys())
def test_deeply_nested_but_complete_json_is_refused_not_a_crash(api, path, raw):
    response = post_raw(api, path, raw)

    assert response.status_code in (400, 422), response.get_data(as_text=True)[:200]


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/v1/vendors", b'{"name": "Acme \\ud800 Plumbing"}'),
        (
            "/api/v1/gate",
            b'{"work_order": {"system": "dispatch", "external_id": "\\udfff"},'
            b' "vendor": {"system": "dispatch", "external_id": "P-1"},'
            b' "work_type": "plumbing", "region": "us-east",'
            b' "scheduled_start": "2030-01-01", "scheduled_end": "2030-01-02"}',
        ),
    ],
    ids=["vendor_name", "gate_work_order"],
)
def test_lone_surrogate_in_a_string_is_malformed(api, sessions, make_vendor, path, raw):
    make_vendor()
    before = counts(sessions, m.Vendor, m.WorkOrder, m.AuditEvent)

    error = error_of(post_raw(api, path, raw), 400)

    assert (error["code"], counts(sessions, m.Vendor, m.WorkOrder, m.AuditEvent)) == (
        "malformed",
        before,
    )


# --------------------------------------------------------------------------------------------
# 422: schema violations name the field
# --------------------------------------------------------------------------------------------

VIOLATIONS = [
    pytest.param(
        "POST",
        "/api/v1/vendors/{vendor_id}/certificates",
        with_policy(1, line="earthquake_liability"),
        ("policies", 1, "line"),
        id="certificate-unknown-line",
    ),
    pytest.param(
        "POST",
        "/api/v1/vendors/{vendor_id}/certificates",
        with_limits(per_sandwich=5),
        ("policies", 0, "limits", "per_sandwich"),
        id="certificate-unknown-limit-key",
    ),
    pytest.param(
        "POST",
        "/api/v1/vendors/{vendor_id}/certificates",
        with_limits(combined_single_limit=1_000_000),
        ("policies", 0, "limits", "combined_single_limit"),
        id="certificate-limit-key-of-another-line",
    ),
    pytest.param(
        "POST",
        "/api/v1/vendors/{vendor_id}/certificates",
        with_limits(general_aggregate=-1),
        ("policies", 0, "limits", "general_aggregate"),
        id="certificate-negative-limit",
    ),
    pytest.param(
        "POST",
        "/api/v1/vendors/{vendor_id}/certificates",
        with_limits(general_aggregate=10**30),
        ("policies", 0, "limits", "general_aggregate"),
        id="certificate-huge-limit",
    ),
    pytest.param(
        "POST",
        "/api/v1/vendors/{vendor_id}/certificates",
        with_limits(general_aggregate=2_000_000.5),
        ("policies", 0, "limits", "general_aggregate"),
        id="certificate-fractional-limit",
    ),
    pytest.param(
        "POST",
        "/api/v1/vendors/{vendor_id}/certificates",
        with_policy(0, effective_date=day(10), expiration_date=day(5)),
        ("policies", 0, "expiration_date"),
        id="certificate-expiration-before-effective",
    ),
    pytest.param(
        "POST",
        "/api/v1/vendors/{vendor_id}/certificates",
        with_policy(0, effective_date=day(10), expiration_date=day(10)),
        ("policies", 0, "expiration_date"),
        id="certificate-expiration-on-effective",
    ),
    pytest.param(
        "POST",
        "/api/v1/vendors/{vendor_id}/certificates",
        with_policy(0, effective_date="2025-02-30"),
        ("policies", 0, "effective_date"),
        id="certificate-impossible-date",
    ),
    pytest.param(
        "POST",
        "/api/v1/vendors/{vendor_id}/certificates",
        [good_certificate()],
        ("_schema",),
        id="certificate-list-body",
    ),
    pytest.param(
        "POST",
        "/api/v1/gate",
        gate_body(scheduled_start=day(5), scheduled_end=day(4)),
        ("scheduled_end",),
        id="gate-end-before-start",
    ),
    pytest.param(
        "POST", "/api/v1/gate", gate_body(amount=10**30), ("amount",), id="gate-huge-amount"
    ),
    pytest.param(
        "POST", "/api/v1/gate", gate_body(amount=-1), ("amount",), id="gate-negative-amount"
    ),
    pytest.param(
        "POST", "/api/v1/gate", gate_body(amount=99.5), ("amount",), id="gate-float-amount"
    ),
    pytest.param(
        "POST", "/api/v1/gate", gate_body(amount="100"), ("amount",), id="gate-string-amount"
    ),
    pytest.param(
        "POST", "/api/v1/gate", gate_by_id(10**30), ("vendor_id",), id="gate-huge-vendor-id"
    ),
    pytest.param(
        "POST", "/api/v1/gate", gate_body(vendor_id=1), ("vendor",), id="gate-vendor-and-id"
    ),
    pytest.param("POST", "/api/v1/gate", [gate_body()], ("_schema",), id="gate-list-body"),
    pytest.param(
        "POST", "/api/v1/vendors", vendor_body(nickname="Ace"), ("nickname",), id="vendor-unknown"
    ),
    pytest.param(
        "POST",
        "/api/v1/vendors",
        vendor_body(external_refs=[{"system": "erp", "external_id": "V-1", "extra": 1}]),
        ("external_refs", 0, "extra"),
        id="vendor-unknown-nested-field",
    ),
    pytest.param("POST", "/api/v1/vendors", vendor_body(name="   "), ("name",), id="vendor-blank"),
    pytest.param(
        "POST", "/api/v1/vendors", vendor_body(email="nope"), ("email",), id="vendor-bad-email"
    ),
    pytest.param("POST", "/api/v1/vendors", [vendor_body()], ("_schema",), id="vendor-list-body"),
    pytest.param("POST", "/api/v1/vendors", "Acme", ("_schema",), id="vendor-string-body"),
    pytest.param(
        "PUT",
        "/api/v1/requirement-sets/bad-input",
        {**REQUIREMENT_SET, "coverages": [{"line": "general_liability", "limits": {"x": 1}}]},
        ("coverages", 0, "limits", "x"),
        id="requirement-set-unknown-limit-key",
    ),
    pytest.param(
        "PUT",
        "/api/v1/requirement-sets/bad-input",
        {
            **REQUIREMENT_SET,
            "coverages": [{"line": "general_liability", "limits": {"aggregate": 1}}],
        },
        ("coverages", 0, "limits", "aggregate"),
        id="requirement-set-limit-key-of-another-line",
    ),
    pytest.param(
        "PUT",
        "/api/v1/requirement-sets/bad-input",
        {
            **REQUIREMENT_SET,
            "coverages": [{"line": "general_liability", "limits": {"each_occurrence": -5}}],
        },
        ("coverages", 0, "limits", "each_occurrence"),
        id="requirement-set-negative-minimum",
    ),
    pytest.param(
        "PUT",
        "/api/v1/requirement-sets/bad-input",
        {**REQUIREMENT_SET, "coverages": [{"line": "flood"}]},
        ("coverages", 0, "line"),
        id="requirement-set-unknown-line",
    ),
    pytest.param(
        "PUT",
        "/api/v1/requirement-sets/Bad%20Key",
        REQUIREMENT_SET,
        ("key",),
        id="requirement-set-bad-key",
    ),
    pytest.param(
        "POST",
        "/api/v1/cancellation-notices",
        {**NOTICE, "received_via": "carrier pigeon"},
        ("received_via",),
        id="notice-unknown-channel",
    ),
    pytest.param(
        "POST",
        "/api/v1/vendors/{vendor_id}/waivers",
        {"code": "bad_vibes", "reason": "r", "until": day(30)},
        ("code",),
        id="waiver-unknown-code",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), VIOLATIONS)
def test_schema_violation_is_a_422_naming_the_field_and_writes_nothing(
    api, sessions, make_vendor, method, path, body, field
):
    vendor_id = make_vendor() if "{vendor_id}" in path else None
    before = counts(sessions, m.AuditEvent)

    error = error_of(api.call(method, path.format(vendor_id=vendor_id), body), 422)

    assert error["code"] == "validation_failed"
    assert messages_at(error["fields"], field)
    assert counts(sessions, m.AuditEvent) == before


@pytest.mark.parametrize("received_at", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00"])
def test_received_at_outside_the_utc_range_is_a_422(api, make_vendor, received_at):
    vendor_id = make_vendor()
    body = {**good_certificate(), "received_at": received_at}

    error = error_of(api.post(f"/api/v1/vendors/{vendor_id}/certificates", body), 422)

    assert messages_at(error["fields"], ("received_at",))


# --------------------------------------------------------------------------------------------
# 413: bodies over the limit
# --------------------------------------------------------------------------------------------


def padded(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    head, tail = b'{"name": "Big Body Co", "padding": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


WRITE_ROUTES = [
    ("POST", "/api/v1/vendors"),
    ("POST", "/api/v1/vendors/{vendor_id}/certificates"),
    ("POST", "/api/v1/vendors/{vendor_id}/waivers"),
    ("PUT", "/api/v1/requirement-sets/big"),
    ("POST", "/api/v1/gate"),
    ("POST", "/api/v1/cancellation-notices"),
]
WRITE_ROUTE_IDS = [f"{method} {path}" for method, path in WRITE_ROUTES]


@pytest.mark.parametrize(("method", "path"), WRITE_ROUTES, ids=WRITE_ROUTE_IDS)
def test_body_over_one_mib_is_a_413_and_writes_nothing(api, sessions, make_vendor, method, path):
    vendor_id = make_vendor()
    before = counts(sessions, m.AuditEvent)

    response = post_raw(api, path.format(vendor_id=vendor_id), padded(MIB + 1), method)

    assert error_of(response, 413)["code"] == "body_too_large"
    assert counts(sessions, m.AuditEvent) == before


def test_body_of_exactly_the_limit_is_read_and_validated(api):
    response = post_raw(api, "/api/v1/vendors", padded(MIB))

    assert error_of(response, 422)["fields"]["padding"]


@pytest.fixture
def small_app(engine, database_url, app):
    small = create_app(Settings(database_url=database_url, max_body_bytes=2048), engine=engine)
    small.config["TESTING"] = True
    return small


def test_body_limit_comes_from_settings(api, small_app, sessions):
    body = vendor_body(work_types=[f"trade-{n:03d}" for n in range(150)])
    raw = json.dumps(body).encode()
    assert 2048 < len(raw) < MIB
    small = small_app.test_client()
    headers = {"Authorization": f"Bearer {api.token}"}

    refused = small.post(
        "/api/v1/vendors", data=raw, headers=headers, content_type="application/json"
    )
    accepted = post_raw(api, "/api/v1/vendors", raw)

    assert error_of(refused, 413)["code"] == "body_too_large"
    assert (accepted.status_code, counts(sessions, m.Vendor)) == (201, (1,))


# --------------------------------------------------------------------------------------------
# Unknown records
# --------------------------------------------------------------------------------------------

VENDOR_ROUTES = [
    ("GET", "/api/v1/vendors/{id}", None),
    ("GET", "/api/v1/vendors/{id}/compliance", None),
    ("POST", "/api/v1/vendors/{id}/certificates", good_certificate()),
    ("POST", "/api/v1/vendors/{id}/waivers", {"code": "expired", "reason": "r", "until": day(9)}),
]
VENDOR_ROUTE_IDS = [f"{method} {path}" for method, path, _ in VENDOR_ROUTES]


@pytest.mark.parametrize(("method", "path", "body"), VENDOR_ROUTES, ids=VENDOR_ROUTE_IDS)
@pytest.mark.parametrize("vendor_id", [999, 2**31 - 1])
def test_unknown_vendor_is_a_404_and_writes_nothing(api, sessions, method, path, body, vendor_id):
    response = api.call(method, path.format(id=vendor_id), body)

    assert error_of(response, 404)["code"] == "not_found"
    assert counts(sessions, m.Certificate, m.Policy, m.Waiver, m.AuditEvent) == (0, 0, 0, 0)


def test_revoking_an_unknown_waiver_is_a_404(api, make_vendor):
    vendor_id = make_vendor()

    response = api.delete(f"/api/v1/vendors/{vendor_id}/waivers/999")

    assert error_of(response, 404)["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [*VENDOR_ROUTES, ("DELETE", "/api/v1/vendors/1/waivers/{id}", None)],
    ids=[*VENDOR_ROUTE_IDS, "DELETE /api/v1/vendors/1/waivers/{id}"],
)
@pytest.mark.parametrize("big", [2**31, 2**63], ids=["past-32-bits", "past-64-bits"])
def test_path_id_past_the_id_column_is_a_404(api, make_vendor, method, path, body, big):
    make_vendor()

    response = api.call(method, path.format(id=big), body)

    assert error_of(response, 404)["code"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [
        gate_body(vendor={"system": "dispatch", "external_id": "NOBODY"}),
        gate_body(vendor={"system": "unknown-system", "external_id": "P-1"}),
        gate_by_id(2**31 - 1),
    ],
    ids=["unknown-ref", "unknown-system", "unknown-id"],
)
def test_unknown_vendor_at_the_gate_is_blocked(api, standard_set, make_vendor, body):
    make_vendor()  # P-1 in system "dispatch" exists; the request names someone else

    response = api.post("/api/v1/gate", body)

    assert response.status_code == 200, response.get_json()
    decision = response.get_json()
    assert (
        decision["decision"],
        decision["vendor_id"],
        [r["code"] for r in decision["reasons"]],
    ) == (
        "block",
        None,
        ["unknown_vendor"],
    )


# --------------------------------------------------------------------------------------------
# Loses nothing: a refused request writes nothing at all
# --------------------------------------------------------------------------------------------


def test_certificate_with_an_invalid_second_policy_writes_nothing(api, sessions, make_vendor):
    vendor_id = make_vendor()
    tables = (m.Certificate, m.Policy, m.AuditEvent, m.ComplianceHistory)
    before = counts(sessions, *tables)
    cert = certificate(
        policy("general_liability", "GL-1", -10, 300),
        policy("automobile_liability", "AU-1", -10, 300, limits={"combined_single_limit": -1}),
    )

    response = api.post(f"/api/v1/vendors/{vendor_id}/certificates", cert)

    assert messages_at(
        error_of(response, 422)["fields"], ("policies", 1, "limits", "combined_single_limit")
    )
    assert counts(sessions, *tables) == before


def test_failed_vendor_create_writes_no_vendor_and_no_binding(api, sessions):
    body = vendor_body(
        external_refs=[
            {"system": "erp", "external_id": "V-1"},
            {"system": "erp", "external_id": ""},
        ]
    )

    response = api.post("/api/v1/vendors", body)

    assert messages_at(error_of(response, 422)["fields"], ("external_refs", 1, "external_id"))
    tables = (m.Vendor, m.Binding, m.VendorWorkType, m.VendorRegion, m.AuditEvent)
    assert counts(sessions, *tables) == (0, 0, 0, 0, 0)


def test_refused_gate_request_stores_no_work_order_or_decision(api, sessions, make_vendor):
    vendor_id = make_vendor()

    response = api.post("/api/v1/gate", gate_by_id(vendor_id, scheduled_end=day(-30)))

    assert error_of(response, 422)["fields"]["scheduled_end"]
    assert counts(sessions, m.WorkOrder, m.GateDecision) == (0, 0)


def snapshot(sessions) -> dict:
    with sessions() as session:
        return {
            "vendors": session.execute(
                select(m.Vendor.id, m.Vendor.name, m.Vendor.email).order_by(m.Vendor.id)
            ).all(),
            "bindings": session.execute(
                select(m.Binding.system, m.Binding.external_id, m.Binding.vendor_id).order_by(
                    m.Binding.id
                )
            ).all(),
            "work_types": session.execute(
                select(m.VendorWorkType.vendor_id, m.VendorWorkType.work_type).order_by(
                    m.VendorWorkType.vendor_id, m.VendorWorkType.work_type
                )
            ).all(),
            "audit": session.scalar(select(func.count()).select_from(m.AuditEvent)),
        }


def test_conflicting_external_refs_are_a_409_that_changes_nothing(api, sessions, make_vendor):
    first, second = make_vendor("First Co"), make_vendor("Second Co")
    before = snapshot(sessions)
    body = vendor_body(
        name="Merged Co",
        email="merged@example.com",
        work_types=["roofing"],
        external_refs=[
            {"system": "dispatch", "external_id": "P-1"},
            {"system": "dispatch", "external_id": "P-2"},
            {"system": "erp", "external_id": "NEW-1"},
        ],
    )

    response = api.post("/api/v1/vendors", body)

    error = error_of(response, 409)
    assert (error["code"], list(error["fields"])) == ("conflict", ["external_refs"])
    assert str(first) in error["fields"]["external_refs"][0]
    assert str(second) in error["fields"]["external_refs"][0]
    assert snapshot(sessions) == before


# --------------------------------------------------------------------------------------------
# Hostile-input sweep: nothing sent to a write route is ever a 500
# --------------------------------------------------------------------------------------------

#: Bodies every write route must refuse (the full malformed list is tried on two routes above).
RAW_BAD_BODIES = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"\xff\xfe\xfd",
    b"[" * 300 + b"]" * 300,
    b'{"a": 1e999}',
]

#: Values of every wrong type (and right-typed extremes), put in place of fields.
WEIRD = [
    None,
    True,
    -1,
    10**30,
    1.5,
    "",
    "x" * 5000,
    "\u202e\U0001f4a5\u200b",
    "9999-12-31",
    [],
    {},
    {"x": [{}]},
]


def leaf_paths(node, prefix: tuple = ()) -> Iterator[tuple]:
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        yield prefix
        return
    for key, value in items:
        yield from leaf_paths(value, (*prefix, key))


def replaced(body, path: tuple, value):
    out = copy.deepcopy(body)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def saturated(body, value):
    """`body` with every leaf set to `value`."""
    out = body
    for path in leaf_paths(body):
        out = replaced(out, path, value)
    return out


SWEEP_CERTIFICATE = {
    **good_certificate(),
    "producer": {"name": "Broker", "email": "broker@example.com", "phone": "555-0100"},
    "description_of_operations": "Plumbing",
    "received_at": "2025-01-01T08:00:00Z",
    "source": "pdf",
}
SWEEP_CERTIFICATE["certificate_holder"]["address"] = "1 Main St"
SWEEP_CERTIFICATE["policies"][0]["insurer"]["am_best"] = "A"

SWEEP_ROUTES = {
    "vendors": ("POST", "/api/v1/vendors", {**vendor_body(), "tax_id": "12-3456789"}),
    "certificates": ("POST", "/api/v1/vendors/{vendor_id}/certificates", SWEEP_CERTIFICATE),
    "waivers": (
        "POST",
        "/api/v1/vendors/{vendor_id}/waivers",
        {
            "code": "expired",
            "line": "general_liability",
            "reason": "renewal in the mail",
            "granted_by": "compliance",
            "until": day(30),
        },
    ),
    "requirement-sets": (
        "PUT",
        "/api/v1/requirement-sets/sweep",
        {
            "name": "Sweep",
            "applies_to": {
                "work_types": ["plumbing"],
                "regions": ["us-east"],
                "risk_tiers": ["low"],
                "min_amount": 0,
            },
            "priority": 1,
            "expiring_window_days": 10,
            "certificate_holder": {"name": "Acme"},
            "min_am_best": "A-",
            "coverages": [
                {"line": "general_liability", "limits": {"each_occurrence": 1}},
                {"line": "workers_compensation", "statutory": True},
            ],
            "umbrella_counts_toward": ["general_liability"],
            "severity": {"expired": "warn"},
            "effective_from": day(0),
        },
    ),
    "gate": ("POST", "/api/v1/gate", gate_body()),
    "cancellation-notices": ("POST", "/api/v1/cancellation-notices", {**NOTICE, "notes": "n"}),
}


@pytest.mark.parametrize("route", SWEEP_ROUTES)
def test_hostile_input_sweep_never_gives_a_500(api, standard_set, make_vendor, route):
    vendor_id = make_vendor(cert=good_certificate())
    method, path, base = SWEEP_ROUTES[route]
    path = path.format(vendor_id=vendor_id)
    assert api.call(method, path, base).status_code in (200, 201)  # the base itself is valid
    bodies = [*RAW_BAD_BODIES]
    for value in WEIRD:
        bodies.append(saturated(base, value))
        bodies.append(dict.fromkeys(base, value))
    for leaf in leaf_paths(base):
        bodies.extend(replaced(base, leaf, value) for value in (None, 10**30, {}))

    failures = []
    for body in bodies:
        if isinstance(body, bytes):
            response = post_raw(api, path, body, method)
        else:
            response = api.call(method, path, body)
        status = response.status_code
        bad_shape = status >= 400 and set(
            (response.get_json(silent=True) or {}).get("error", {})
        ) != {
            "code",
            "message",
            "fields",
        }
        if status >= 500 or bad_shape:
            failures.append((status, repr(body)[:120]))

    assert failures == []


def test_vendor_with_a_thousand_external_refs_is_refused(api):
    refs = [{"system": "erp", "external_id": f"V-{n}"} for n in range(1000)]

    response = api.post("/api/v1/vendors", vendor_body(external_refs=refs))

    assert "external_refs" in error_of(response, 422)["fields"]
