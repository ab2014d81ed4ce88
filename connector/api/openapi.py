"""`/api/v1/openapi.json`, generated from the routes and the schemas the views use."""

from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, current_app

from connector import schemas as s

_ROLE_NOTE = "Needs a bearer token whose role grants `{}`."


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
    spec.components.schema("Error", schema=s.ErrorSchema)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        doc = getattr(view, "openapi", None)
        if doc is None:
            continue
        path = openapi_path(rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            spec.path(path=path, operations={method.lower(): _operation(view, doc, rule)})
    return spec.to_dict()


def _operation(view, doc: dict, rule) -> dict:
    operation: dict = {
        "summary": doc["summary"],
        "security": [{"bearer": []}],
        "description": _ROLE_NOTE.format(getattr(view, "permission", "")),
        "parameters": [
            {"in": "path", "name": arg, "required": True, "schema": {"type": _type(rule, arg)}}
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


def _type(rule, arg: str) -> str:
    return "integer" if f"<id:{arg}>" in rule.rule else "string"
