"""`POST /webhooks/<connection>/<event>`: the inbound webhook receiver.

The signature is the authentication (no bearer token): the raw body is verified with the
connection's scheme and secrets before it is parsed. The delivery id (`webhook-id`, a configured
id header, or the SHA-256 of the body) is the idempotency key, kept in `webhook_receipts`
(unique per connection):

- the first arrival commits a "processing" receipt, acts, stores its answer and marks it "done";
- a repeat — also one arriving while the first is still at work — hits the unique constraint,
  waits for "done" and answers the stored status and body, with no second effect;
- when the first arrival fails (an error, a dependency down), its receipt is removed so the
  sender's retry can act; a receipt left "processing" by a process that died is taken over after
  `STALE_AFTER`.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from adapters.base import AdapterError, ConfigurationError, secret
from connector.api.common import documented, json_body
from connector.clock import as_utc, utcnow
from connector.errors import APIError, NotFound
from connector.services.write_behind import WriteBehind
from connector.storage import models as m
from webhooks.handlers import HANDLERS, Inbound, Outcome
from webhooks.inbound import ReceiverConfig, receiver_config
from webhooks.signatures import (
    SignatureError,
    body_digest,
    split_secrets,
    verify_hmac,
    verify_standard,
)

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

#: How long a repeat waits for the first arrival's answer before answering 409 (retry later).
WAIT_SECONDS = 15.0
POLL_SECONDS = 0.05
#: A receipt still "processing" after this long belongs to a process that died.
STALE_AFTER = timedelta(minutes=5)
MAX_DELIVERY_ID = 255


@bp.post("/<connection>/<event>")
@documented(
    "Receive a signed webhook from a connection",
    description=(
        "The body is the sender's own event, verified on its raw bytes before it is parsed. "
        "`work-order` answers 200 with the gate decision; `vendor-changed` 200 with the sync "
        "run (202 with a job id when jobs run on Redis); `certificate-submitted` and "
        "`cancellation-notice` 201 with what they recorded. A repeated delivery (same "
        "`webhook-id`, or same body under the HMAC scheme) answers the first answer again; "
        "401 for a bad, missing or stale signature, 409 while the first arrival is still at "
        "work, 413 past the body limit."
    ),
    path_values={"event": sorted(HANDLERS)},
    signed=True,
)
def receive(connection: str, event: str):
    handler = HANDLERS.get(event)
    if handler is None:
        raise NotFound("webhook event", event)
    runtime = current_app.extensions["coi"]
    settings = runtime.snapshots.get(
        ("connection_settings", connection),
        ("connections",),
        lambda: _active_settings(runtime.sessions, connection),
    )
    if settings is None:
        raise NotFound("connection", connection)
    config, secrets = _receiver(connection, settings)
    body = request.get_data(cache=True)  # 413 past the body limit, before any work
    delivery_id = _authenticate(config, secrets, body)

    def act() -> Outcome:
        inbound = Inbound(
            connection,
            config,
            json_body(),
            runtime.sessions,
            runtime.jobs,
            runtime.snapshots,
            runtime.write_behind,
        )
        return handler(inbound)

    status, answer, after = once(
        runtime.sessions, connection, event, delivery_id, act, runtime.write_behind
    )
    response = jsonify(answer)
    response.status_code = status
    if after is not None:
        response.call_on_close(after)
    return response


def once(
    sessions: sessionmaker[Session],
    connection: str,
    event: str,
    delivery_id: str,
    act,
    write_behind: WriteBehind | None = None,
) -> tuple[int, Any, Any]:
    """Act on a delivery at most once: (status, body, work after answering). With a
    `write_behind`, the answer is stored behind it: a repeat arriving meanwhile waits for it."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        claimed, stored = _claim(sessions, connection, event, delivery_id)
        if claimed:
            break
        if stored is not None and stored.status == "done":
            return stored.response_status, stored.response_body, None
        if time.monotonic() >= deadline:
            raise APIError(
                409, "delivery_in_progress", "this delivery is still being processed; retry later"
            )
        time.sleep(POLL_SECONDS)
    after = None
    try:
        outcome = act()
        status, body, after = outcome.status, outcome.body, outcome.after
    except ValidationError as err:
        fields = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
        status, body = 422, _error("validation_failed", "the event is not valid", fields)
    except APIError as err:
        if err.status >= 500:
            _forget(sessions, connection, delivery_id)
            raise
        status, body = err.status, _error(err.code, err.message, err.fields)
    except AdapterError as err:
        _forget(sessions, connection, delivery_id)
        raise APIError(503, "dependency_down", f"the remote system did not answer: {err}") from None
    except BaseException:
        _forget(sessions, connection, delivery_id)
        raise
    # The body is stored as it is answered (JSON round trip: dates and the like as text).
    answered = (connection, delivery_id, status, json.loads(json.dumps(body, default=str)))
    if write_behind is None:
        with sessions() as session, session.begin():
            complete(session, [answered])
    else:
        write_behind.add(complete, answered)
    return status, body, after


def _active_settings(sessions: sessionmaker[Session], name: str) -> dict[str, Any] | None:
    with sessions() as session:
        settings = session.scalar(
            select(m.Connection.settings).where(m.Connection.name == name, m.Connection.active)
        )
    return None if settings is None else dict(settings)


def _receiver(name: str, settings: dict[str, Any]) -> tuple[ReceiverConfig, list[str]]:
    """The connection's receiver config and secrets; 503 when they are missing or wrong (our
    side's fault: the sender should retry once an admin has fixed it)."""
    try:
        config = receiver_config(settings)
        secrets = split_secrets(secret(settings, "webhook_secret"))
    except (ValueError, ConfigurationError) as err:
        log.warning("webhooks for connection %s are not configured: %s", name, err)
        raise APIError(
            503, "not_configured", f"webhooks are not configured for connection {name!r}"
        ) from None
    if not secrets:
        raise APIError(503, "not_configured", f"the webhook secret of {name!r} is empty")
    return config, secrets


def _authenticate(config: ReceiverConfig, secrets: list[str], body: bytes) -> str:
    """Verify the signature on the raw body; the delivery id."""
    try:
        if config.scheme == "standard":
            delivery_id = verify_standard(secrets, request.headers, body, time.time())
        else:
            verify_hmac(secrets, request.headers.get(config.header), body, config.encoding)
            # Keyed on what the signature covers: an id from an unsigned header would let a
            # captured delivery be replayed under a new id.
            delivery_id = body_digest(body)
    except SignatureError as err:
        raise APIError(401, "unauthorized", f"webhook signature rejected: {err}") from None
    if len(delivery_id) > MAX_DELIVERY_ID:
        delivery_id = body_digest(delivery_id.encode("utf-8"))
    return delivery_id


def _error(code: str, message: str, fields: dict | None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _claim(
    sessions, connection: str, event: str, delivery_id: str
) -> tuple[bool, m.WebhookReceipt | None]:
    """(True, None) when this arrival is the first (its receipt is committed); else (False, the
    receipt found), whose receipt may be gone already when the first arrival let go."""
    session = sessions()
    with session:
        try:
            with session.begin():
                session.connection().execute(
                    _CLAIM,
                    {
                        "connection": connection,
                        "event": event,
                        "delivery_id": delivery_id,
                        "status": "processing",
                        "received_at": utcnow(),
                    },
                )
            return True, None
        except IntegrityError:
            pass
        with session.begin():
            stored = session.scalar(select(m.WebhookReceipt).where(_key(connection, delivery_id)))
            if stored is None:
                return False, None  # the first arrival failed and let go: try again
            session.expunge(stored)
        if stored.status == "processing" and as_utc(stored.received_at) < utcnow() - STALE_AFTER:
            with session.begin():
                taken = session.execute(
                    update(m.WebhookReceipt)
                    .where(m.WebhookReceipt.id == stored.id)
                    .where(m.WebhookReceipt.status == "processing")
                    .where(m.WebhookReceipt.received_at == stored.received_at)
                    .values(received_at=utcnow())
                )
            if taken.rowcount == 1:
                log.warning("webhook %s/%s: taking over a stale delivery", connection, event)
                return True, None
        return False, stored


def complete(session: Session, answered: list[tuple[str, str, int, Any]]) -> None:
    """Mark receipts done with their answers: (connection, delivery id, status, body)."""
    now = utcnow()
    session.connection().execute(
        _COMPLETE,
        [
            {
                "c_connection": connection,
                "c_delivery_id": delivery_id,
                "status": "done",
                "response_status": status,
                "response_body": body,
                "completed_at": now,
            }
            for connection, delivery_id, status, body in answered
        ],
    )


_CLAIM = insert(m.WebhookReceipt.__table__)
_COMPLETE = (
    update(m.WebhookReceipt.__table__)
    .where(
        m.WebhookReceipt.connection == bindparam("c_connection"),
        m.WebhookReceipt.delivery_id == bindparam("c_delivery_id"),
    )
    .values(
        status=bindparam("status"),
        response_status=bindparam("response_status"),
        response_body=bindparam("response_body"),
        completed_at=bindparam("completed_at"),
    )
)


def _forget(sessions, connection: str, delivery_id: str) -> None:
    with sessions() as session, session.begin():
        session.execute(delete(m.WebhookReceipt).where(_key(connection, delivery_id)))


def _key(connection: str, delivery_id: str):
    return (m.WebhookReceipt.connection == connection) & (
        m.WebhookReceipt.delivery_id == delivery_id
    )
