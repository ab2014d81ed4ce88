"""Bearer tokens and roles: no valid token is a 401 on every /api/v1 route, a role without the
permission is a 403 that changes nothing, tokens are stored as their SHA-256 only, and
`coi token create` prints a token that works."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from connector.cli import main
from connector.clock import utcnow
from connector.storage import models as m
from tests.conftest import STANDARD_SET, JSONClient, day, good_certificate


def error_of(response, status: int) -> dict:
    """The `error` object of a JSON error response with this status (checks the shape)."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "fields"}
    return error


def audit_count(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(m.AuditEvent))


# --------------------------------------------------------------------------------------------
# Every /api/v1 route, with a request that succeeds for a role allowed to make it
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    rule: str  # as registered with Flask
    path: str  # with {vendor_id} / {waiver_id} to fill in
    body: Any = None
    success: int = 200

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"


WAIVER = {"code": "expired", "reason": "renewal on its way", "until": day(30)}
GATE = {
    "work_order": {"system": "dispatch", "external_id": "WO-1"},
    "vendor": {"system": "dispatch", "external_id": "P-1"},
    "work_type": "plumbing",
    "region": "us-east",
    "scheduled_start": day(1),
    "scheduled_end": day(2),
}
NOTICE = {
    "policy_number": "GL-1",
    "insurer_name": "Keystone Mutual Insurance Co.",
    "effective_date": day(400),
    "received_via": "mail",
}
NEW_VENDOR = {
    "name": "Role Matrix Roofing",
    "external_refs": [{"system": "erp", "external_id": "RM-1"}],
}

NEW_CONNECTION = {"name": "other", "kind": "csv", "settings": {"path": "/nonexistent.csv"}}
NEW_SUBSCRIPTION = {"name": "ops", "url": "http://127.0.0.1:9/hook", "events": ["gate.blocked"]}

V = "/api/v1"
MAPPING_RULE = f"{V}/connections/<connection>/mappings/<object>/<direction>"
MAPPING_PATH = f"{V}/connections/acme/mappings/vendor/in"
SUBS = f"{V}/webhook-subscriptions"
SUB_RULE = f"{SUBS}/<id:subscription_id>"
SUB_PATH = f"{SUBS}/{{subscription_id}}"
ROUTES = {
    "vendor-create": Route("POST", f"{V}/vendors", f"{V}/vendors", NEW_VENDOR, 201),
    "vendor-list": Route("GET", f"{V}/vendors", f"{V}/vendors"),
    "vendor-get": Route("GET", f"{V}/vendors/<id:vendor_id>", f"{V}/vendors/{{vendor_id}}"),
    "certificate-create": Route(
        "POST",
        f"{V}/vendors/<id:vendor_id>/certificates",
        f"{V}/vendors/{{vendor_id}}/certificates",
        good_certificate(),
        201,
    ),
    "compliance-get": Route(
        "GET", f"{V}/vendors/<id:vendor_id>/compliance", f"{V}/vendors/{{vendor_id}}/compliance"
    ),
    "waiver-grant": Route(
        "POST",
        f"{V}/vendors/<id:vendor_id>/waivers",
        f"{V}/vendors/{{vendor_id}}/waivers",
        WAIVER,
        201,
    ),
    "waiver-revoke": Route(
        "DELETE",
        f"{V}/vendors/<id:vendor_id>/waivers/<id:waiver_id>",
        f"{V}/vendors/{{vendor_id}}/waivers/{{waiver_id}}",
        success=204,
    ),
    "requirement-set-put": Route(
        "PUT", f"{V}/requirement-sets/<key>", f"{V}/requirement-sets/standard", STANDARD_SET
    ),
    "requirement-set-list": Route("GET", f"{V}/requirement-sets", f"{V}/requirement-sets"),
    "gate": Route("POST", f"{V}/gate", f"{V}/gate", GATE),
    "embed-link-create": Route(
        "POST", f"{V}/embed-links", f"{V}/embed-links", GATE["vendor"], success=201
    ),
    "notice-create": Route(
        "POST", f"{V}/cancellation-notices", f"{V}/cancellation-notices", NOTICE, 201
    ),
    "audit-list": Route("GET", f"{V}/audit", f"{V}/audit"),
    "openapi": Route("GET", f"{V}/openapi.json", f"{V}/openapi.json"),
    **{
        name: Route(method, MAPPING_RULE + suffix, MAPPING_PATH + suffix, body, success)
        for name, method, suffix, body, success in [
            ("mapping-get", "GET", "", None, 200),
            ("mapping-put", "PUT", "", {"default": "salesforce_account_in"}, 200),
            ("mapping-versions", "GET", "/versions", None, 200),
            ("mapping-rollback", "POST", "/rollback", {"version": 1}, 200),
            ("mapping-preview", "POST", "/preview", {"record": {"Id": "001A", "Name": "A"}}, 200),
        ]
    },
    "connection-add": Route("POST", f"{V}/connections", f"{V}/connections", NEW_CONNECTION, 201),
    "connection-list": Route("GET", f"{V}/connections", f"{V}/connections"),
    "connection-get": Route("GET", f"{V}/connections/<name>", f"{V}/connections/files"),
    "connection-remove": Route(
        "DELETE", f"{V}/connections/<name>", f"{V}/connections/doomed", success=204
    ),
    "connection-test": Route("POST", f"{V}/connections/<name>/test", f"{V}/connections/files/test"),
    "connection-sync": Route(
        "POST",
        f"{V}/connections/<name>/sync",
        f"{V}/connections/files/sync",
        {"object": "Vendor"},
        202,
    ),
    "job-get": Route("GET", f"{V}/jobs/<job_id>", f"{V}/jobs/{{job_id}}"),
    "sync-runs": Route("GET", f"{V}/sync-runs", f"{V}/sync-runs"),
    "webhook-subscription-create": Route("POST", SUBS, SUBS, NEW_SUBSCRIPTION, 201),
    "webhook-subscription-list": Route("GET", SUBS, SUBS),
    **{
        name: Route(method, SUB_RULE + suffix, SUB_PATH + suffix, body, success)
        for name, method, suffix, body, success in [
            ("webhook-subscription-get", "GET", "", None, 200),
            ("webhook-subscription-update", "PATCH", "", {"active": False}, 200),
            ("webhook-subscription-delete", "DELETE", "", None, 204),
            ("webhook-subscription-rotate", "POST", "/rotate-secret", None, 200),
            ("webhook-subscription-deliveries", "GET", "/deliveries", None, 200),
        ]
    },
}

#: Which roles may call which route (DESIGN.md, "Running"): admin everything, dispatcher read
#: and gate, integration gate, vendor upsert, certificates and notices.
ALLOWED = {
    "vendor-create": {"admin", "integration"},
    "vendor-list": {"admin", "dispatcher"},
    "vendor-get": {"admin", "dispatcher"},
    "certificate-create": {"admin", "integration"},
    "compliance-get": {"admin", "dispatcher"},
    "waiver-grant": {"admin"},
    "waiver-revoke": {"admin"},
    "requirement-set-put": {"admin"},
    "requirement-set-list": {"admin", "dispatcher"},
    "gate": {"admin", "dispatcher", "integration"},
    "embed-link-create": {"admin", "dispatcher"},
    "notice-create": {"admin", "integration"},
    "audit-list": {"admin"},
    "openapi": {"admin", "dispatcher", "integration"},
    "mapping-get": {"admin"},
    "mapping-put": {"admin"},
    "mapping-versions": {"admin"},
    "mapping-rollback": {"admin"},
    "mapping-preview": {"admin", "integration"},
    "connection-add": {"admin"},
    "connection-list": {"admin"},
    "connection-get": {"admin"},
    "connection-remove": {"admin"},
    "connection-test": {"admin"},
    "connection-sync": {"admin"},
    "job-get": {"admin"},
    "sync-runs": {"admin", "dispatcher"},
    "webhook-subscription-create": {"admin"},
    "webhook-subscription-list": {"admin"},
    "webhook-subscription-get": {"admin"},
    "webhook-subscription-update": {"admin"},
    "webhook-subscription-delete": {"admin"},
    "webhook-subscription-rotate": {"admin"},
    "webhook-subscription-deliveries": {"admin"},
}
ROLES = ("admin", "dispatcher", "integration")


def test_the_route_table_covers_every_api_v1_route(app):
    registered = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("v1.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }

    assert registered == {(r.method, r.rule) for r in ROUTES.values()}


# --------------------------------------------------------------------------------------------
# 401
# --------------------------------------------------------------------------------------------

NO_VALID_TOKEN = {
    "missing": None,
    "malformed": "Basic YWRtaW46YWRtaW4=",
    "unknown": "Bearer 3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
}


@pytest.mark.parametrize("route", ROUTES.values(), ids=str)
@pytest.mark.parametrize("header", NO_VALID_TOKEN.values(), ids=NO_VALID_TOKEN.keys())
def test_request_without_a_valid_token_is_a_401_on_every_route(app, sessions, route, header):
    headers = {} if header is None else {"Authorization": header}
    path = route.path.format(vendor_id=1, waiver_id=1, job_id="inline-1", subscription_id=1)

    response = app.test_client().open(path, method=route.method, json=route.body, headers=headers)

    assert error_of(response, 401)["code"] == "unauthorized"
    assert audit_count(sessions) == 0


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer    ", "3q2-7wAAAA", "Token 3q2-7wAAAA", "Bearer\t3q2-7wAAAA"],
    ids=["empty", "scheme_only", "blank_token", "no_scheme", "other_scheme", "tab_separator"],
)
def test_malformed_authorization_header_is_a_401(app, header):
    response = app.test_client().get("/api/v1/vendors", headers={"Authorization": header})

    assert error_of(response, 401)["code"] == "unauthorized"


def test_revoked_token_is_a_401(app, sessions, make_token):
    token = make_token("admin")
    with sessions() as session, session.begin():
        session.execute(m.ApiToken.__table__.update().values(revoked_at=utcnow()))

    response = JSONClient(app.test_client(), token).get("/api/v1/vendors")

    assert error_of(response, 401)["code"] == "unauthorized"


def test_token_of_another_case_is_a_401(app, make_token):
    token = make_token("admin")
    assert token.swapcase() != token

    response = JSONClient(app.test_client(), token.swapcase()).get("/api/v1/vendors")

    assert error_of(response, 401)["code"] == "unauthorized"


def test_bearer_scheme_is_case_insensitive(app, make_token):
    headers = {"Authorization": f"bearer {make_token('dispatcher')}"}

    response = app.test_client().get("/api/v1/vendors", headers=headers)

    assert response.status_code == 200


def test_healthz_answers_without_a_token(app):
    response = app.test_client().get("/healthz")

    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


# --------------------------------------------------------------------------------------------
# 403: the role matrix
# --------------------------------------------------------------------------------------------


@pytest.fixture
def world(api, standard_set, make_vendor, tmp_path) -> dict[str, Any]:
    """A vendor (dispatch ref P-1) with a certificate, under the standard requirement set; a
    saved vendor mapping of connection `acme`; a CSV connection `files` that has synced once
    (its job id) and a connection `doomed` to remove; a webhook subscription."""
    saved = api.put(MAPPING_PATH, {"default": "salesforce_account_in"})
    assert saved.status_code == 201, saved.get_json()
    vendors_csv = tmp_path / "vendors.csv"
    vendors_csv.write_text("external_id,name\nF-1,Filed Vendor LLC\n")
    for name in ("files", "doomed"):
        added = api.post(
            "/api/v1/connections",
            {
                "name": name,
                "kind": "csv",
                "settings": {"path": str(vendors_csv), "id_column": "external_id"},
                "objects": [
                    {"remote": "Vendor", "canonical": "vendor", "mapping_in": "csv_vendor_in"}
                ],
            },
        )
        assert added.status_code == 201, added.get_json()
    synced = api.post("/api/v1/connections/files/sync", {"object": "Vendor"})
    assert synced.status_code == 202, synced.get_json()
    subscribed = api.post(SUBS, NEW_SUBSCRIPTION)
    assert subscribed.status_code == 201, subscribed.get_json()
    return {
        "vendor_id": make_vendor(cert=good_certificate()),
        "job_id": synced.get_json()["job_id"],
        "subscription_id": subscribed.get_json()["id"],
    }


def prepared_path(api, route: Route, world: dict[str, int]) -> str:
    ids = dict(world)
    if "{waiver_id}" in route.path:
        granted = api.post(f"/api/v1/vendors/{world['vendor_id']}/waivers", WAIVER)
        assert granted.status_code == 201, granted.get_json()
        ids["waiver_id"] = granted.get_json()["id"]
    return route.path.format(**ids)


MATRIX = [pytest.param(role, name, id=f"{role}-{name}") for role in ROLES for name in ROUTES]


@pytest.mark.parametrize(("role", "name"), MATRIX)
def test_role_matrix(api, client_as, sessions, world, role, name):
    route = ROUTES[name]
    path = prepared_path(api, route, world)
    client = client_as(role)
    before = audit_count(sessions)

    response = client.call(route.method, path, route.body)

    if role in ALLOWED[name]:
        assert response.status_code == route.success, response.get_json()
    else:
        assert error_of(response, 403)["code"] == "forbidden"
        assert audit_count(sessions) == before


def test_role_is_checked_before_the_body_is_read(client_as):
    dispatcher = client_as("dispatcher")

    response = dispatcher.call(
        "POST", "/api/v1/vendors", data=b"{not json", content_type="application/json"
    )

    assert error_of(response, 403)["code"] == "forbidden"


# --------------------------------------------------------------------------------------------
# Tokens are stored hashed
# --------------------------------------------------------------------------------------------


def test_tokens_are_stored_only_as_their_sha256(app, engine, make_token):
    token = make_token("integration", "hashed-token-check")
    client = JSONClient(app.test_client(), token)
    assert client.post("/api/v1/vendors", NEW_VENDOR).status_code == 201
    assert client.post("/api/v1/gate", GATE).status_code == 200

    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT token_hash FROM api_tokens WHERE name = 'hashed-token-check'")
        ).scalar_one()
        everything = [
            repr(tuple(row))
            for table in m.Base.metadata.sorted_tables
            for row in conn.execute(table.select())
        ]

    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert [row for row in everything if token in row] == []


def test_tokens_are_long_and_distinct(make_token):
    tokens = {make_token("dispatcher", f"t{n}") for n in range(5)}

    assert len(tokens) == 5
    assert min(len(t) for t in tokens) >= 43  # 32 random bytes, URL-safe base64


# --------------------------------------------------------------------------------------------
# `coi token create`
# --------------------------------------------------------------------------------------------


def test_cli_token_create_prints_a_working_token_last(app, sessions, database_url):
    result = CliRunner().invoke(
        main,
        ["token", "create", "--role", "dispatcher", "--name", "X"],
        env={"COI_DATABASE_URL": database_url},
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    client = JSONClient(app.test_client(), token)

    with sessions() as session:
        row = session.scalar(select(m.ApiToken).where(m.ApiToken.name == "X"))
    assert (row.role, row.token_hash) == ("dispatcher", hashlib.sha256(token.encode()).hexdigest())
    assert client.get("/api/v1/vendors").status_code == 200
    assert error_of(client.post("/api/v1/vendors", NEW_VENDOR), 403)["code"] == "forbidden"


def test_cli_token_create_refuses_an_unknown_role(app, sessions, database_url):
    result = CliRunner().invoke(
        main,
        ["token", "create", "--role", "superuser", "--name", "X"],
        env={"COI_DATABASE_URL": database_url},
    )

    with sessions() as session:
        stored = session.scalar(select(func.count()).select_from(m.ApiToken))
    assert (result.exit_code, stored) == (2, 0)
