"""Bearer-token authentication and role checks.

Tokens are 32 random bytes shown once; the database keeps their SHA-256. The lookup is by hash,
and the stored hash is compared again in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from functools import wraps

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.errors import APIError
from connector.storage.models import ApiToken

ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset({"*"}),
    "dispatcher": frozenset({"read", "gate"}),
    "integration": frozenset(
        {
            "gate",
            "vendors:write",
            "certificates:write",
            "notices:write",
            "webhooks",
            "mappings:preview",
        }
    ),
}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def create_token(session: Session, name: str, role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    token = new_token()
    session.add(ApiToken(name=name, role=role, token_hash=hash_token(token)))
    return token


def authenticate(session: Session) -> ApiToken:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise APIError(401, "unauthorized", "a bearer token is required")
    digest = hash_token(token.strip())
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
    )
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise APIError(401, "unauthorized", "the token is not valid")
    return row


def allowed(role: str, permission: str) -> bool:
    granted = ROLES.get(role, frozenset())
    return "*" in granted or permission in granted


def requires(permission: str) -> Callable:
    """View decorator: the authenticated token's role must grant `permission`."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not allowed(g.token.role, permission):
                raise APIError(403, "forbidden", f"role {g.token.role!r} may not {permission}")
            return view(*args, **kwargs)

        wrapper.permission = permission
        return wrapper

    return decorate
