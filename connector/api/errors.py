"""One JSON error shape for every failure: {"error": {"code", "message", "fields"}}.

Bad input is answered with 400/413/422 and never reaches a 500; unexpected exceptions are logged
without request bodies or headers (which may hold secrets) and answered with a bare 500.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from connector.errors import APIError

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str, fields: dict | None = None):
    body = {"error": {"code": code, "message": message, "fields": fields or {}}}
    return jsonify(body), status


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


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(APIError)
    def _api_error(err: APIError):
        return error_response(err.status, err.code, err.message, err.fields)

    @app.errorhandler(ValidationError)
    def _validation(err: ValidationError):
        fields = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
        return error_response(422, "validation_failed", "the request is not valid", fields)

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        status = err.code or 500
        return error_response(status, _HTTP_CODES.get(status, "http_error"), err.description)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.error("unhandled %s: %s", type(err).__name__, err)
        return error_response(500, "internal_error", "internal error")
