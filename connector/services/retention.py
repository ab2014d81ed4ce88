"""How long webhook records are kept: the daily prune.

Inbound receipts exist so that a sender's retry of a delivery has no second effect; senders give
up retrying within days (Standard Webhooks senders within about a day and a half), so a receipt
older than `RECEIPT_DAYS` protects nothing. Outbound deliveries that reached their end
(delivered, or failed after the last retry) are the delivery log subscribers' admins read; they
are kept `DELIVERY_DAYS`, with their attempts. Waiting deliveries are never pruned. A SQLite
database's webhook claim files (`connector/storage/claim_files.py`) go with their receipts;
claims in Redis expire by themselves.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlalchemy.orm import Session

from connector.storage import models as m
from connector.storage.claim_files import ClaimFiles

RECEIPT_DAYS = 7
DELIVERY_DAYS = 30


def prune(session: Session, now: datetime, claims_dir: str | None = None) -> dict[str, int]:
    """Delete what is past its keeping time (in the caller's transaction); returns counts.
    `claims_dir`: the setting the web workers keep their claim files under."""
    received = now - timedelta(days=RECEIPT_DAYS)
    receipts = session.execute(
        delete(m.WebhookReceipt).where(m.WebhookReceipt.received_at < received)
    ).rowcount
    files = ClaimFiles.for_database(session.get_bind().url, claims_dir)
    claim_files = files.sweep(received.timestamp()) if files is not None else 0
    finished = now - timedelta(days=DELIVERY_DAYS)
    d = m.WebhookDelivery
    deliveries = session.execute(
        delete(d).where(
            d.status.in_(("delivered", "failed")),
            # A failed delivery has no delivery time: its age is its event's.
            or_(d.delivered_at < finished, d.delivered_at.is_(None) & (d.created_at < finished)),
        )
    ).rowcount
    return {"receipts": receipts, "claim_files": claim_files, "deliveries": deliveries}
