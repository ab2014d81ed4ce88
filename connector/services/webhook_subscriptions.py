"""Webhook subscriptions (admin): who receives which outbound events, and the delivery log.

A subscription's signing secret (`whsec_` + base64 of 32 random bytes unless the admin brings
one) is shown once, when it is created or rotated, and kept only encrypted: Fernet with a key
derived by HKDF-SHA256 from `COI_SECRET_KEY`. Without that key nothing can be encrypted, so
creating a subscription answers 503 `secret_key_missing`. The secret never reaches the audit log,
the logs or any later answer.

Resuming a paused subscription (PATCH `active: true`) clears the pause and sends its failed and
waiting deliveries again from the start of the retry schedule.
"""

from __future__ import annotations

import base64
import secrets as random
from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from connector.clock import as_utc, utcnow
from connector.errors import APIError, NotFound
from connector.schemas import WEBHOOK_SECRET_PREFIX
from connector.services import audit
from connector.services.context import Context
from connector.services.paging import paginate
from connector.storage import models as m

SECRET_BYTES = 32
_HKDF_INFO = b"coi-connector webhook subscription secrets v1"


class SecretKeyMissing(APIError):
    def __init__(self) -> None:
        super().__init__(
            503,
            "secret_key_missing",
            "webhook signing secrets are kept encrypted with the server's secret key; set "
            "COI_SECRET_KEY (or COI_SECRET_KEY_FILE) and restart",
        )


def new_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode()


def _fernet(secret_key: str | None) -> Fernet:
    if not secret_key:
        raise SecretKeyMissing()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(secret_key: str | None, secret: str) -> str:
    return _fernet(secret_key).encrypt(secret.encode()).decode()


def decrypt_secret(secret_key: str | None, stored: str) -> str | None:
    """The plain secret, or None when this key cannot open it (the key was changed)."""
    try:
        return _fernet(secret_key).decrypt(stored.encode()).decode()
    except InvalidToken:
        return None


def get(session: Session, subscription_id: int) -> m.WebhookSubscription:
    subscription = session.get(m.WebhookSubscription, subscription_id)
    if subscription is None:
        raise NotFound("webhook subscription", subscription_id)
    return subscription


def create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Store a subscription; the answer is the only place its secret is ever shown."""
    secret_key = ctx.jobs.settings.secret_key
    secret = data.get("secret") or new_secret()
    encrypted = encrypt_secret(secret_key, secret)
    session = ctx.session
    with session.begin():
        subscription = m.WebhookSubscription(
            name=data["name"],
            url=data["url"],
            events=data["events"],
            secret_encrypted=encrypted,
            active=True,
            consecutive_failures=0,
        )
        session.add(subscription)
        session.flush()
        audit.record(
            session,
            ctx.actor,
            "webhook.subscription_create",
            "webhook_subscription",
            subscription.id,
            {"name": subscription.name, "url": subscription.url, "events": subscription.events},
        )
        body = render(session, subscription)
    return {**body, "secret": secret}


def update_subscription(ctx: Context, subscription_id: int, data: dict[str, Any]) -> dict:
    session = ctx.session
    with session.begin():
        subscription = get(session, subscription_id)
        changes = {k: data[k] for k in ("name", "url", "events", "active") if k in data}
        for name, value in changes.items():
            setattr(subscription, name, value)
        resumed = data.get("active") is True and subscription.paused_at is not None
        if resumed:
            rescheduled = resume(session, subscription)
            changes["resumed"] = True
            changes["rescheduled"] = rescheduled
        audit.record(
            session,
            ctx.actor,
            "webhook.subscription_update",
            "webhook_subscription",
            subscription.id,
            changes,
        )
        session.flush()
        return render(session, subscription)


def resume(session: Session, subscription: m.WebhookSubscription) -> int:
    """Lift a pause: its failed and waiting deliveries start the retry schedule again now."""
    now = utcnow()
    subscription.paused_at = None
    subscription.paused_reason = None
    subscription.consecutive_failures = 0
    result = session.execute(
        update(m.WebhookDelivery)
        .where(
            m.WebhookDelivery.subscription_id == subscription.id,
            m.WebhookDelivery.status.in_(("failed", "pending")),
        )
        .values(status="pending", attempts=0, next_attempt_at=now, claimed_by=None)
    )
    return result.rowcount


def remove(ctx: Context, subscription_id: int) -> None:
    session = ctx.session
    with session.begin():
        subscription = get(session, subscription_id)
        session.delete(subscription)
        audit.record(
            session,
            ctx.actor,
            "webhook.subscription_delete",
            "webhook_subscription",
            subscription_id,
            {"name": subscription.name},
        )


def rotate_secret(ctx: Context, subscription_id: int) -> dict[str, Any]:
    """A new secret, shown once; deliveries signed from now on (retries too) use it."""
    secret = new_secret()
    encrypted = encrypt_secret(ctx.jobs.settings.secret_key, secret)
    session = ctx.session
    with session.begin():
        subscription = get(session, subscription_id)
        subscription.secret_encrypted = encrypted
        audit.record(
            session,
            ctx.actor,
            "webhook.subscription_rotate_secret",
            "webhook_subscription",
            subscription.id,
            {},
        )
    return {"id": subscription_id, "secret": secret}


def list_all(session: Session) -> dict[str, Any]:
    subscriptions = session.scalars(
        select(m.WebhookSubscription).order_by(m.WebhookSubscription.id)
    ).all()
    counts = _counts(session, [s.id for s in subscriptions])
    return {"items": [_render(s, counts.get(s.id, {})) for s in subscriptions]}


def render(session: Session, subscription: m.WebhookSubscription) -> dict[str, Any]:
    return _render(subscription, _counts(session, [subscription.id]).get(subscription.id, {}))


def _counts(session: Session, ids: list[int]) -> dict[int, dict[str, int]]:
    if not ids:
        return {}
    d = m.WebhookDelivery
    rows = session.execute(
        select(d.subscription_id, d.status, func.count())
        .where(d.subscription_id.in_(ids))
        .group_by(d.subscription_id, d.status)
    )
    counts: dict[int, dict[str, int]] = {}
    for subscription_id, status, count in rows:
        counts.setdefault(subscription_id, {})[status] = count
    return counts


def _render(s: m.WebhookSubscription, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "url": s.url,
        "events": s.events,
        "active": s.active,
        "paused": s.paused_at is not None,
        "paused_at": _iso(s.paused_at),
        "paused_reason": s.paused_reason,
        "consecutive_failures": s.consecutive_failures,
        "deliveries": {
            "pending": counts.get("pending", 0) + counts.get("sending", 0),
            "delivered": counts.get("delivered", 0),
            "failed": counts.get("failed", 0),
        },
        "created_at": _iso(s.created_at),
    }


def list_deliveries(session: Session, subscription_id: int, query: dict[str, Any]) -> dict:
    """The delivery log of one subscription, newest first, each with its attempts."""
    get(session, subscription_id)
    stmt = (
        select(m.WebhookDelivery)
        .where(m.WebhookDelivery.subscription_id == subscription_id)
        .order_by(m.WebhookDelivery.id.desc())
    )
    if query.get("status"):
        stmt = stmt.where(m.WebhookDelivery.status == query["status"])
    if query.get("event_type"):
        stmt = stmt.where(m.WebhookDelivery.event_type == query["event_type"])
    page = paginate(session, stmt, query, _render_delivery)
    by_id = {item["id"]: item for item in page["items"]}
    attempts = session.scalars(
        select(m.WebhookAttempt)
        .where(m.WebhookAttempt.delivery_id.in_(by_id))
        .order_by(m.WebhookAttempt.id)
    )
    for a in attempts:
        by_id[a.delivery_id]["attempt_log"].append(
            {
                "at": _iso(a.at),
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
        )
    return page


def _render_delivery(d: m.WebhookDelivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": _iso(d.next_attempt_at) if d.status == "pending" else None,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "created_at": _iso(d.created_at),
        "delivered_at": _iso(d.delivered_at),
        "payload": d.payload,
        "attempt_log": [],
    }


def _iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC (SQLite hands back naive UTC timestamps, PostgreSQL aware ones)."""
    if moment is None:
        return None
    return as_utc(moment).isoformat()
