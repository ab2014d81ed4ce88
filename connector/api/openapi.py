"""`/api/v1/openapi.json`, generated from the routes and the schemas the views use."""

from __future__ import annotations

import re
from collections.abc import Callable

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, current_app
from werkzeug.routing import Rule

from connector import schemas as s

_ROLE_NOTE = "Needs a bearer token whose role grants `{}`."
_SIGNATURE_NOTE = (
    "The raw body signed with the connection's webhook secret: Standard Webhooks "
    "(`webhook-id`, `webhook-timestamp`, `webhook-signature`) by default, or one HMAC-SHA256 "
    "header of the body (hex or base64) under the header the connection names. See "
    "docs/webhooks.md."
)


def cached_spec() -> dict:
    app = current_app._get_current_object()
    if "coi_openapi" not in app.extensions:
        app.extensions["coi_openapi"] = build_spec(app)
    return app.extensions["coi_openapi"]


def build_spec(app: Flask) -> dict:
    spec = APISpec(
        title="coi-connector",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Certificate-of-insurance compliance API"},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme(
        "webhook_signature",
        {
            "type": "apiKey",
            "in": "header",
            "name": "webhook-signature",
            "description": _SIGNATURE_NOTE,
        },
    )
    spec.components.schema("Error", schema=s.ErrorSchema)
    for rule, view in sorted(routes(app), key=lambda route: route[0].rule):
        doc = getattr(view, "openapi", None)
        if doc is None:
            continue
        path = openapi_path(rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            spec.path(path=path, operations={method.lower(): _operation(view, doc, rule)})
    return spec.to_dict()


def routes(app: Flask) -> list[tuple[Rule, Callable]]:
    """Every route the app answers, with its view: Flask's, and the webhook receiver's, which
    is served ahead of Flask (`webhooks/receiver.py`)."""
    from webhooks import receiver

    found = [(rule, app.view_functions[rule.endpoint]) for rule in app.url_map.iter_rules()]
    return found + [(rule, receiver.receive) for rule in receiver.ROUTES.iter_rules()]


def _operation(view, doc: dict, rule) -> dict:
    signed = doc["signed"]
    auth = (
        "Authenticated by its signature."
        if signed
        else _ROLE_NOTE.format(getattr(view, "permission", ""))
    )
    operation: dict = {
        "summary": doc["summary"],
        "security": [{"webhook_signature" if signed else "bearer": []}],
        "description": " ".join(filter(None, [doc["description"], auth])),
        "parameters": [
            {
                "in": "path",
                "name": arg,
                "required": True,
                "schema": _path_schema(rule, arg, doc["path_values"].get(arg)),
            }
            for arg in sorted(rule.arguments)
        ],
        "responses": {
            str(doc["status"]): {"description": "success"},
            "default": {
                "description": "error",
                "content": {"application/json": {"schema": "Error"}},
            },
        },
    }
    if doc["query"] is not None:
        operation["parameters"].append({"in": "query", "schema": doc["query"]})
    if doc["body"] is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": doc["body"]}},
        }
    if doc["response"] is not None:
        operation["responses"][str(doc["status"])]["content"] = {
            "application/json": {"schema": doc["response"]}
        }
    return operation


def openapi_path(rule: str) -> str:
    """`/vendors/<id:vendor_id>` -> `/vendors/{vendor_id}`."""
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def _path_schema(rule, arg: str, values: list[str] | None) -> dict:
    if f"<id:{arg}>" in rule.rule:
        return {"type": "integer"}
    return {"type": "string", "enum": values} if values else {"type": "string"}
