"""Errors that services raise and the API turns into its JSON error shape."""

from __future__ import annotations


class APIError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}


class NotFound(APIError):
    def __init__(self, what: str, ident: object):
        super().__init__(404, "not_found", f"{what} {ident} does not exist")
