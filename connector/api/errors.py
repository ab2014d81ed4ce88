"""One JSON error shape for every failure: {"error": {"code", "message", "fields"}}.

Bad input is answered with 400/413/422 and never reaches a 500; unexpected exceptions are logged
without request bodies or headers (which may hold secrets) and answered with a bare 500.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from connector.errors import APIError

log = logging.getLogger(__name__)


def error_body(code: str, message: str, fields: dict | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


_HTTP_CODES = {
    400: "malformed",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def invalid(err: ValidationError) -> dict[str, Any]:
    """A validation error's messages by field (`_schema` for the whole)."""
    return err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}


def answer_for(err: Exception) -> tuple[int, dict[str, Any]]:
    """The status and JSON body that answer an exception a request raised (for Flask's views
    and for what is served ahead of Flask, `webhooks/receiver.py`)."""
    if isinstance(err, APIError):
        return err.status, error_body(err.code, err.message, err.fields)
    if isinstance(err, ValidationError):
        return 422, error_body("validation_failed", "the request is not valid", invalid(err))
    if isinstance(err, HTTPException):
        status = err.code or 500
        return status, error_body(_HTTP_CODES.get(status, "http_error"), err.description)
    log.error("unhandled %s: %s", type(err).__name__, err)
    return 500, error_body("internal_error", "internal error")


def register_error_handlers(app: Flask) -> None:
    # Flask finds the handler by the exception's classes, most specific first: this one
    # answers everything, HTTP errors (404, 405, 413, ...) included.
    @app.errorhandler(Exception)
    def _answer(err: Exception):
        status, body = answer_for(err)
        return jsonify(body), status
