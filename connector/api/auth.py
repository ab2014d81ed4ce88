"""Bearer-token authentication and role checks.

Tokens are 32 random bytes shown once; the database keeps their SHA-256. The lookup is by hash,
and the stored hash is compared again in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.errors import APIError
from connector.storage.models import ApiToken
from connector.storage.snapshots import Snapshots

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


@dataclass(frozen=True)
class Caller:
    """Who an authenticated request acts as."""

    name: str
    role: str
    token_hash: str


def authenticate(sessions: sessionmaker[Session], snapshots: Snapshots) -> Caller:
    """The caller of the current request. Valid tokens are kept in the worker's snapshot, so a
    revoked token stops working within `COI_SNAPSHOT_SECONDS`."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise APIError(401, "unauthorized", "a bearer token is required")
    digest = hash_token(token.strip())
    caller = snapshots.get(("token", digest), ("api_tokens",), lambda: _lookup(sessions, digest))
    if caller is None or not hmac.compare_digest(caller.token_hash, digest):
        raise APIError(401, "unauthorized", "the token is not valid")
    return caller


def _lookup(sessions: sessionmaker[Session], digest: str) -> Caller | None:
    with sessions() as session:
        row = session.execute(
            select(ApiToken.name, ApiToken.role, ApiToken.token_hash).where(
                ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None)
            )
        ).first()
    return None if row is None else Caller(*row)


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
