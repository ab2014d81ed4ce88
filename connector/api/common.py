"""What every API view shares: the request's session and context, strict JSON parsing, schema
loading, and the `documented` decorator that feeds the generated OpenAPI document."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from flask import current_app, g, request
from marshmallow import Schema
from sqlalchemy.orm import Session

from connector.clock import today
from connector.errors import APIError
from connector.schema_load import load
from connector.services.context import Context


def db() -> Session:
    if "db" not in g:
        g.db = current_app.extensions["coi"].sessions()
    return g.db


def context() -> Context:
    """The request's context; its session is opened when a service first uses it."""
    return Context(db, current_app.extensions["coi"].jobs, g.token.name, today())


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


#: Made once: `json.loads` with a hook builds a decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def json_body() -> Any:
    """The request body as JSON; anything that is not strict JSON is a 400."""
    return parse_json(request.get_data(cache=True))  # raises 413 past MAX_CONTENT_LENGTH


def parse_json(raw: bytes) -> Any:
    """A request body as JSON; anything that is not strict JSON is a 400."""
    encoding = json.detect_encoding(raw)
    try:
        # What `json.loads` does with bytes, on the decoder made once.
        data = _DECODER.decode(raw.decode(encoding, "surrogatepass"))
    except (ValueError, RecursionError) as err:
        message = str(err) if isinstance(err, json.JSONDecodeError) else "body is not valid JSON"
        raise APIError(400, "malformed", f"malformed JSON: {message}") from None
    # Only an escape (`\u0000`, `\ud800`) or raw UTF-8 surrogate bytes (ED A0..BF; json
    # decodes them with "surrogatepass") can put either into a UTF-8 body; raw NUL is not
    # valid JSON. Bodies with neither (nearly all) need no walk.
    if b"\\u" in raw or b"\xed" in raw or encoding != "utf-8":
        _refuse_unstorable(data)
    return data


# NUL cannot be stored in PostgreSQL text; a lone surrogate cannot be encoded as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _refuse_unstorable(value: Any) -> None:
    """400 for strings no database can store; walks without recursion (depth is the client's)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                raise APIError(
                    400, "malformed", "strings may not contain NUL characters or lone surrogates"
                )
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def load_body(schema: Schema) -> dict[str, Any]:
    return load(schema, json_body())


def load_query(schema: Schema) -> dict[str, Any]:
    args = request.args.to_dict()
    _refuse_unstorable(args)
    return load(schema, args)


def documented(
    summary: str,
    *,
    body: Schema | None = None,
    query: Schema | None = None,
    response: Schema | None = None,
    status: int = 200,
    description: str | None = None,
    path_values: dict[str, list[str]] | None = None,
    signed: bool = False,
) -> Callable:
    """Attach what the OpenAPI generator needs to a view (the schemas the view really uses).
    `path_values` lists the values a path argument takes; `signed` views are authenticated by
    a webhook signature instead of a bearer token."""

    def decorate(view: Callable) -> Callable:
        view.openapi = {
            "summary": summary,
            "body": body,
            "query": query,
            "response": response,
            "status": status,
            "description": description,
            "path_values": path_values or {},
            "signed": signed,
        }
        return view

    return decorate
