"""Sending outbound events: claim due deliveries, sign and POST them, log every attempt, retry
with growing delays, pause subscriptions that keep failing.

Retry schedule: after a failed attempt the delivery waits 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
10 h (`RETRY_DELAYS`); the eighth failed attempt (about 28 hours after the first) marks it
`failed`. While one delivery of a subscription is waiting to be retried, the subscription's
other waiting deliveries wait with it (without an attempt counted), so a subscriber that is down
is asked once per retry, not once per event, and gets everything when it is back.

Pausing: a subscription is paused when `PAUSE_AFTER_FAILURES` attempts in a row have failed and
it has had no success for `PAUSE_AFTER_SILENCE` (since its last delivery, or its creation). The
pause is audited (`webhook.subscription_paused`), logged and shown by the API; nothing is sent
to a paused (or deactivated) subscription, and it gets no new events until an admin resumes it.
Any success resets the count of failures in a row.

Claims are leases like the outbox's: a claimed delivery is `sending`, owned by the run's id,
until `LEASE` has passed, so two workers never send one delivery at once, and a worker that
dies mid-send leaves it to be sent again once its lease runs out (receivers de-duplicate on the
`webhook-id` header, which stays the same on every retry).

`now` (default: the clock) decides what is due and when retries come, so tests can move time
forward; the `webhook-timestamp` header is always the clock at sending, because that is what
the receiver compares with its own clock.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from connector import jsontext
from connector.clock import as_utc, utcnow
from connector.services import audit
from connector.services.webhook_subscriptions import decrypt_secret
from connector.storage import models as m
from webhooks import outbound

log = logging.getLogger(__name__)

RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
PAUSE_AFTER_FAILURES = 8
PAUSE_AFTER_SILENCE = timedelta(hours=24)
BATCH = 20
#: Longer than a batch can take (BATCH x the 10 s timeout).
LEASE = timedelta(minutes=10)


def retry_delay(attempts: int) -> timedelta | None:
    """How long to wait after the `attempts`-th failed attempt; None: give up."""
    if attempts < 1 or attempts > len(RETRY_DELAYS):
        return None
    return RETRY_DELAYS[attempts - 1]


@dataclass(frozen=True)
class _Claimed:
    id: int
    subscription_id: int
    event_id: str
    body: str
    url: str
    secret_encrypted: str


def deliver(
    sessions: sessionmaker[Session],
    secret_key: str | None,
    *,
    now: datetime | None = None,
    http: requests.Session | None = None,
) -> dict[str, int]:
    """Send every due delivery; returns counts (delivered, retry, failed, paused)."""
    counts = {"delivered": 0, "retry": 0, "failed": 0, "paused": 0}
    run = uuid.uuid4().hex
    own_http = http is None
    http = http or requests.Session()
    # Subscriptions that failed in this run, with when they may be tried again.
    deferred: dict[int, datetime] = {}
    try:
        while True:
            batch = _claim(sessions, run, now or utcnow())
            if not batch:
                break
            for item in batch:
                if item.subscription_id in deferred:
                    _release(sessions, run, item.id, deferred[item.subscription_id])
                    continue
                secret = decrypt_secret(secret_key, item.secret_encrypted)
                if secret is None:
                    outcome = outbound.Outcome(
                        None, "cannot decrypt the signing secret: COI_SECRET_KEY changed?", 0
                    )
                else:
                    outcome = outbound.send(
                        http, item.url, secret, item.event_id, item.body, utcnow()
                    )
                retry_at = _record(sessions, run, item, outcome, now or utcnow(), counts)
                if retry_at is not None:
                    deferred[item.subscription_id] = retry_at
    finally:
        if own_http:
            http.close()
    return counts


def _claim(sessions: sessionmaker[Session], run: str, now: datetime) -> list[_Claimed]:
    d, s = m.WebhookDelivery, m.WebhookSubscription
    with sessions() as session, session.begin():
        ids = session.scalars(
            select(d.id)
            .join(s, s.id == d.subscription_id)
            .where(
                d.status.in_(("pending", "sending")),
                d.next_attempt_at <= now,
                s.active.is_(True),
                s.paused_at.is_(None),
            )
            .order_by(d.next_attempt_at, d.id)
            .limit(BATCH)
        ).all()
        if not ids:
            return []
        # The `next_attempt_at` condition again: of two runs that picked the same rows, only
        # the first UPDATE matches them (the second sees them leased into the future).
        session.execute(
            update(d)
            .where(d.id.in_(ids), d.next_attempt_at <= now, d.status.in_(("pending", "sending")))
            .values(status="sending", next_attempt_at=now + LEASE, claimed_by=run)
            .execution_options(synchronize_session=False)
        )
        rows = session.execute(
            select(d.id, d.subscription_id, d.event_id, d.payload, s.url, s.secret_encrypted)
            .join(s, s.id == d.subscription_id)
            .where(d.id.in_(ids), d.claimed_by == run, d.status == "sending")
            .order_by(d.id)
        ).all()
    return [_Claimed(row[0], row[1], row[2], jsontext.dumps(row[3]), *row[4:]) for row in rows]


def _release(sessions: sessionmaker[Session], run: str, delivery_id: int, at: datetime) -> None:
    """Give back a claimed delivery untried, due at `at`."""
    d = m.WebhookDelivery
    with sessions() as session, session.begin():
        session.execute(
            update(d)
            .where(d.id == delivery_id, d.claimed_by == run, d.status == "sending")
            .values(status="pending", next_attempt_at=at, claimed_by=None)
            .execution_options(synchronize_session=False)
        )


def _record(
    sessions: sessionmaker[Session],
    run: str,
    item: _Claimed,
    outcome: outbound.Outcome,
    now: datetime,
    counts: dict[str, int],
) -> datetime | None:
    """Log the attempt and move the delivery on; returns when the subscription may be tried
    again after a failure (None after a success)."""
    with sessions() as session, session.begin():
        delivery = session.get(m.WebhookDelivery, item.id, with_for_update=True)
        subscription = session.get(m.WebhookSubscription, item.subscription_id)
        if delivery is None or subscription is None:
            return None  # deleted with its subscription while we were sending
        session.add(
            m.WebhookAttempt(
                delivery_id=item.id,
                at=now,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        )
        if delivery.claimed_by != run or delivery.status != "sending":
            # Our lease ran out and another run took the delivery over: it decides.
            return None
        delivery.attempts += 1
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error
        delivery.claimed_by = None
        if outcome.ok:
            delivery.status, delivery.delivered_at = "delivered", now
            subscription.consecutive_failures = 0
            counts["delivered"] += 1
            return None
        subscription.consecutive_failures += 1
        delay = retry_delay(delivery.attempts)
        if delay is None:
            delivery.status = "failed"
            counts["failed"] += 1
            delay = RETRY_DELAYS[-1]
        else:
            delivery.status, delivery.next_attempt_at = "pending", now + delay
            counts["retry"] += 1
        retry_at = now + delay
        _defer_others(session, delivery, retry_at)
        if _should_pause(session, subscription, now):
            _pause(session, subscription, outcome, now)
            counts["paused"] += 1
        return retry_at


def _defer_others(session: Session, delivery: m.WebhookDelivery, retry_at: datetime) -> None:
    """The subscription's other waiting deliveries wait for the retry of this one."""
    d = m.WebhookDelivery
    session.execute(
        update(d)
        .where(
            d.subscription_id == delivery.subscription_id,
            d.id != delivery.id,
            d.status == "pending",
            d.next_attempt_at < retry_at,
        )
        .values(next_attempt_at=retry_at)
        .execution_options(synchronize_session=False)
    )


def _should_pause(session: Session, subscription: m.WebhookSubscription, now: datetime) -> bool:
    if subscription.paused_at is not None:
        return False
    if subscription.consecutive_failures < PAUSE_AFTER_FAILURES:
        return False
    last_success = session.scalar(
        select(func.max(m.WebhookDelivery.delivered_at)).where(
            m.WebhookDelivery.subscription_id == subscription.id
        )
    )
    quiet_since = as_utc(last_success or subscription.created_at)
    return now - quiet_since >= PAUSE_AFTER_SILENCE


def _pause(
    session: Session,
    subscription: m.WebhookSubscription,
    outcome: outbound.Outcome,
    now: datetime,
) -> None:
    failures = subscription.consecutive_failures
    subscription.paused_at = now
    subscription.paused_reason = (
        f"{failures} delivery attempts in a row failed and nothing was delivered for "
        f"{PAUSE_AFTER_SILENCE.total_seconds() / 3600:g} hours; last: {outcome.error}"
    )
    audit.record(
        session,
        "system",
        "webhook.subscription_paused",
        "webhook_subscription",
        subscription.id,
        {
            "consecutive_failures": failures,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
        },
    )
    log.warning(
        "webhook subscription %s (%s) paused after %d failed attempts in a row: %s",
        subscription.id,
        subscription.name,
        failures,
        outcome.error,
    )
