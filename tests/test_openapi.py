"""The OpenAPI document is generated from the routes and their schemas."""

from __future__ import annotations

import pytest

from connector.api.openapi import openapi_path
from connector.schemas import AM_BEST_RATINGS
from webhooks.receiver import ROUTES


@pytest.fixture
def document(api):
    response = api.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_every_api_route_is_documented(app, document):
    routes = {
        openapi_path(rule.rule)
        for rule in [*app.url_map.iter_rules(), *ROUTES.iter_rules()]
        if rule.rule.startswith(("/api/v1/", "/webhooks/")) and rule.rule != "/api/v1/openapi.json"
    }

    assert routes == set(document["paths"])


def test_request_schemas_carry_their_validation_rules(document):
    schemas = document["components"]["schemas"]
    insurer = next(s for name, s in schemas.items() if name.startswith("Insurer"))

    assert [r for r in insurer["properties"]["am_best"]["enum"] if r] == list(AM_BEST_RATINGS)


def test_gate_operation_names_its_body_and_response(document):
    gate = document["paths"]["/api/v1/gate"]["post"]

    assert gate["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "GateRequest"
    )
    assert "$ref" in gate["responses"]["200"]["content"]["application/json"]["schema"]


def test_the_webhook_receiver_names_its_events_and_its_signature(document):
    receiver = document["paths"]["/webhooks/{connection}/{event}"]["post"]
    event = next(p for p in receiver["parameters"] if p["name"] == "event")

    assert event["schema"]["enum"] == [
        "cancellation-notice",
        "certificate-submitted",
        "vendor-changed",
        "work-order",
    ]
    assert receiver["security"] == [{"webhook_signature": []}]
