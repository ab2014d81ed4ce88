"""What every API view shares: the request's session and context, strict JSON parsing, schema
loading, and the `documented` decorator that feeds the generated OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import current_app, g, request
from marshmallow import Schema
from sqlalchemy.orm import Session

from connector.clock import today
from connector.errors import APIError
from connector.services.context import Context


def db() -> Session:
    if "db" not in g:
        g.db = current_app.extensions["coi"].sessions()
    return g.db


def context() -> Context:
    return Context(
        session=db(), jobs=current_app.extensions["coi"].jobs, actor=g.token.name, today=today()
    )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def json_body() -> Any:
    """The request body as JSON; anything that is not strict JSON is a 400."""
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as err:
        message = str(err) if isinstance(err, json.JSONDecodeError) else "body is not valid JSON"
        raise APIError(400, "malformed", f"malformed JSON: {message}") from None
    if _has_nul(data):
        raise APIError(400, "malformed", "strings may not contain NUL characters")
    return data


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def load_body(schema: Schema) -> dict[str, Any]:
    return schema.load(json_body())


def load_query(schema: Schema) -> dict[str, Any]:
    args = request.args.to_dict()
    if _has_nul(args):
        raise APIError(400, "malformed", "query strings may not contain NUL characters")
    return schema.load(args)


def documented(
    summary: str,
    *,
    body: Schema | None = None,
    query: Schema | None = None,
    response: Schema | None = None,
    status: int = 200,
) -> Callable:
    """Attach what the OpenAPI generator needs to a view (the schemas the view really uses)."""

    def decorate(view: Callable) -> Callable:
        view.openapi = {
            "summary": summary,
            "body": body,
            "query": query,
            "response": response,
            "status": status,
        }
        return view

    return decorate
