"""The daily prune of webhook records: old receipts and finished deliveries go, the rest stays."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from connector.clock import utcnow
from connector.services.retention import prune
from connector.storage import models as m
from connector.storage.claim_files import ClaimFiles


def test_prune_drops_old_receipts_and_finished_deliveries_and_keeps_the_rest(sessions):
    now = utcnow()
    with sessions() as session, session.begin():
        for key, age in (("old", 8), ("recent", 6)):
            session.add(
                m.WebhookReceipt(
                    connection="dispatch",
                    event="work-order",
                    delivery_id=key,
                    status="done",
                    received_at=now - timedelta(days=age),
                )
            )
        subscription = m.WebhookSubscription(
            name="ops", url="https://ops.example.com/hook", events=[], secret_encrypted="x"
        )
        session.add(subscription)
        session.flush()
        for key, status, age in (
            ("old-delivered", "delivered", 31),
            ("old-failed", "failed", 31),
            ("old-pending", "pending", 31),
            ("recent-delivered", "delivered", 29),
        ):
            delivery = m.WebhookDelivery(
                subscription_id=subscription.id,
                event_id=key,
                event_type="gate.blocked",
                payload={},
                status=status,
                next_attempt_at=now,
                created_at=now - timedelta(days=age),
                delivered_at=now - timedelta(days=age) if status == "delivered" else None,
            )
            session.add(delivery)
            session.flush()
            session.add(m.WebhookAttempt(delivery_id=delivery.id, status_code=200, duration_ms=5))

    with sessions() as session, session.begin():
        counts = prune(session, now)

    with sessions() as session:
        receipts = session.scalars(select(m.WebhookReceipt.delivery_id)).all()
        deliveries = sorted(session.scalars(select(m.WebhookDelivery.event_id)).all())
        attempts = len(session.scalars(select(m.WebhookAttempt.id)).all())
    assert counts == {"receipts": 1, "claim_files": 0, "deliveries": 2}
    assert (receipts, deliveries, attempts) == (
        ["recent"],
        ["old-pending", "recent-delivered"],
        2,
    )


def test_prune_removes_the_claim_files_of_the_receipts_it_drops(sessions, engine):
    files = ClaimFiles.for_database(engine.url)
    if files is None:
        pytest.skip("claim files serve SQLite database files only")
    files.restore([])
    now = utcnow()
    for key, age in (("old", 8), ("recent", 6)):
        files.take(f"dispatch\0{key}", at=(now - timedelta(days=age)).timestamp())

    with sessions() as session, session.begin():
        counts = prune(session, now)

    assert counts["claim_files"] == 1
    assert (files.take("dispatch\0old"), files.take("dispatch\0recent")) == (True, False)
