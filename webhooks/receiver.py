"""`POST /webhooks/<connection>/<event>`: the inbound webhook receiver.

The signature is the authentication (no bearer token): the raw body is verified with the
connection's scheme and secrets before it is parsed. The delivery id (`webhook-id`, a configured
id header, or the SHA-256 of the body) is the idempotency key: the first arrival claims it
(`webhooks/receipts.py`: a claim file for a SQLite database, a committed row, or a Redis key
when Redis is configured), acts and stores its answer; a repeat — also one arriving while the first
is still at work — waits for that answer and gets it back, with no second effect. When the
first arrival fails (an error, a dependency down) its claim is let go, so the sender's retry can
act.

The receiver is served ahead of Flask's dispatch (`Receiver`, a WSGI middleware the app factory
puts in front of the Flask app), on werkzeug's request object, its JSON answer written straight
to WSGI: it is the hot path of dispatch systems and needs none of what Flask adds to a request (a
request and app context, a session, the whole API's URL map, before/after hooks, a response
object), which cost about as much as the receiver's own work on a work-order event. Its errors
are answered in the API's JSON shape (`connector.api.errors.answer_for`), and its route is in
the OpenAPI document like the API's.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple

from flask import Flask
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import Headers
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request
from werkzeug.wsgi import ClosingIterator

from adapters.base import AdapterError, ConfigurationError, secret
from connector import jsontext
from connector.api.common import documented, parse_json
from connector.api.errors import answer_for, error_body, invalid
from connector.clock import utcnow
from connector.errors import APIError, NotFound
from connector.services.write_behind import WriteBehind
from connector.storage import models as m
from webhooks.handlers import HANDLERS, Inbound, Outcome
from webhooks.inbound import ReceiverConfig, receiver_config
from webhooks.receipts import Answered, Receipts, complete, receipts_for
from webhooks.signatures import (
    SignatureError,
    body_digest,
    split_secrets,
    verify_hmac,
    verify_standard,
)

log = logging.getLogger(__name__)

#: How long a repeat waits for the first arrival's answer before answering 409 (retry later).
WAIT_SECONDS = 15.0
POLL_SECONDS = 0.05
MAX_DELIVERY_ID = 255

PREFIX = "/webhooks/"
#: The receiver's route, for the OpenAPI document (`Receiver` matches it itself: a werkzeug map
#: bound to each request cost a tenth of a delivery).
ROUTES = Map([Rule(PREFIX + "<connection>/<event>", endpoint="receive", methods=["POST"])])


class Receiver:
    """WSGI middleware: requests for the receiver's route are answered here, everything else
    goes on to the Flask app (`app.wsgi_app`, which it replaces)."""

    def __init__(self, app: Flask):
        self._app = app
        self._next = app.wsgi_app

    def __call__(self, environ: dict[str, Any], start_response):
        path = environ.get("PATH_INFO", "")
        names = path[len(PREFIX) :].split("/") if path.startswith(PREFIX) else ()
        if len(names) != 2 or not all(names):
            return self._next(environ, start_response)  # Flask answers, a 404
        if environ.get("REQUEST_METHOD") != "POST":
            status, text = _failure(MethodNotAllowed())
            return _answer(start_response, status, text, [("Allow", "POST")])
        # As werkzeug's routing reads a path: WSGI gives it as latin-1, the URL's bytes are UTF-8.
        connection, event = (name.encode("latin-1").decode("utf-8", "replace") for name in names)
        request = Request(environ)
        request.max_content_length = self._app.config["MAX_CONTENT_LENGTH"]
        try:
            status, text, after = receive(self._app, request, connection, event)
        except Exception as err:  # every failure is answered as JSON
            (status, text), after = _failure(err), None
        body = _answer(start_response, status, text)
        return body if after is None else ClosingIterator(body, after)


def _failure(err: Exception) -> tuple[int, str]:
    status, body = answer_for(err)
    return status, jsontext.dumps(body)


def _answer(start_response, status: int, text: str, headers=()) -> list[bytes]:
    """Start a JSON response (written as Flask's `jsonify` writes it); its body."""
    body = f"{text}\n".encode()
    start_response(
        f"{status} {HTTP_STATUS_CODES[status]}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers],
    )
    return [body]


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
def receive(app: Flask, request: Request, connection: str, event: str) -> tuple[int, str, Any]:
    """(status, JSON text, work to do once it is sent) for a delivery."""
    handler = HANDLERS.get(event)
    if handler is None:
        raise NotFound("webhook event", event)
    runtime = app.extensions["coi"]
    receiving = runtime.snapshots.get(
        ("webhook_receiver", connection),
        ("connections",),
        lambda: _receiving(runtime.sessions, connection),
    )
    if receiving is None:
        raise NotFound("connection", connection)
    config, secrets = _receiver(connection, receiving)
    body = request.get_data(cache=True)  # 413 past the body limit, before any work
    delivery_id = _authenticate(config, secrets, request.headers, body)

    def act() -> Outcome:
        inbound = Inbound(
            connection,
            config,
            parse_json(body),
            runtime.sessions,
            runtime.jobs,
            runtime.snapshots,
            runtime.write_behind,
        )
        return handler(inbound)

    return once(
        receipts_of(app),
        runtime.sessions,
        connection,
        event,
        delivery_id,
        act,
        runtime.write_behind,
    )


def once(
    receipts: Receipts,
    sessions: sessionmaker[Session],
    connection: str,
    event: str,
    delivery_id: str,
    act,
    write_behind: WriteBehind | None = None,
) -> tuple[int, str, Any]:
    """Act on a delivery at most once: (status, body as JSON text, work after answering). With
    a `write_behind`, the answer's row is stored behind it."""
    deadline = time.monotonic() + WAIT_SECONDS
    received_at = utcnow()
    while True:
        claimed, stored = receipts.claim(connection, event, delivery_id)
        if claimed:
            break
        if stored is not None and stored.status == "done":
            return stored.response_status, jsontext.dumps(stored.response_body), None
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
        status, body = 422, error_body("validation_failed", "the event is not valid", invalid(err))
    except APIError as err:
        if err.status >= 500:
            receipts.forget(connection, delivery_id)
            raise
        status, body = answer_for(err)
    except AdapterError as err:
        receipts.forget(connection, delivery_id)
        raise APIError(503, "dependency_down", f"the remote system did not answer: {err}") from None
    except BaseException:
        receipts.forget(connection, delivery_id)
        raise
    # Answered and stored as the same text (dates and the like written as `str` writes them).
    text = jsontext.dumps(body, str)
    answered = Answered(connection, event, delivery_id, received_at, status, text)
    if write_behind is None:
        with sessions() as session, session.begin():
            complete(session, [answered])
    else:
        write_behind.add(complete, answered)
    return status, text, after


def receipts_of(app: Flask) -> Receipts:
    """The app's receipt store (`webhooks.receipts.receipts_for`), made on first use in each
    process (gunicorn forks its workers after the app is made)."""
    if "coi_receipts" not in app.extensions:
        runtime = app.extensions["coi"]
        app.extensions["coi_receipts"] = receipts_for(
            runtime.settings, runtime.engine, runtime.sessions
        )
    return app.extensions["coi_receipts"]


class _Receiving(NamedTuple):
    """An active connection's settings and its receiver config, or why it has none (kept in
    the worker's snapshot; the secrets are read on every delivery, so a rotated secret file
    counts at once)."""

    settings: dict[str, Any]
    config: ReceiverConfig | None
    problem: str | None


def _receiving(sessions: sessionmaker[Session], name: str) -> _Receiving | None:
    with sessions() as session:
        settings = session.scalar(
            select(m.Connection.settings).where(m.Connection.name == name, m.Connection.active)
        )
    if settings is None:
        return None
    try:
        return _Receiving(dict(settings), receiver_config(settings), None)
    except ValueError as err:
        return _Receiving(dict(settings), None, str(err))


def _receiver(name: str, receiving: _Receiving) -> tuple[ReceiverConfig, list[str]]:
    """The connection's receiver config and secrets; 503 when they are missing or wrong (our
    side's fault: the sender should retry once an admin has fixed it)."""
    config, problem, secrets = receiving.config, receiving.problem, []
    if config is not None:
        try:
            secrets = split_secrets(secret(receiving.settings, "webhook_secret"))
        except ConfigurationError as err:
            problem = str(err)
    if problem is not None:
        log.warning("webhooks for connection %s are not configured: %s", name, problem)
        raise APIError(
            503, "not_configured", f"webhooks are not configured for connection {name!r}"
        )
    if not secrets:
        raise APIError(503, "not_configured", f"the webhook secret of {name!r} is empty")
    return config, secrets


def _authenticate(config: ReceiverConfig, secrets: list[str], headers: Headers, body: bytes) -> str:
    """Verify the signature on the raw body; the delivery id."""
    try:
        if config.scheme == "standard":
            delivery_id = verify_standard(secrets, headers, body, time.time())
        else:
            verify_hmac(secrets, headers.get(config.header), body, config.encoding)
            # Keyed on what the signature covers: an id from an unsigned header would let a
            # captured delivery be replayed under a new id.
            delivery_id = body_digest(body)
    except SignatureError as err:
        raise APIError(401, "unauthorized", f"webhook signature rejected: {err}") from None
    if len(delivery_id) > MAX_DELIVERY_ID:
        delivery_id = body_digest(delivery_id.encode("utf-8"))
    return delivery_id
