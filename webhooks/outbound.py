"""Outbound webhooks on the wire: sign one event the Standard Webhooks way and POST it.

The signed string is `{webhook-id}.{webhook-timestamp}.{body}` (HMAC-SHA256 with the
subscription's `whsec_` secret, by the `standardwebhooks` package); the body sent is exactly the
body signed. Only a 2xx answer counts as delivered; redirects are not followed (a subscriber
that moved must be given its new URL). Errors are described without the URL or the response
body, so nothing a subscriber sends back and no query-string token ends up in the delivery log.

This module knows nothing of the database: `webhooks.delivery` decides what
to send and when, and records what happened.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import requests
from standardwebhooks import Webhook

TIMEOUT_SECONDS = 10.0
USER_AGENT = "coi-connector-webhooks/1"


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: the HTTP status (None when no answer came) or an error."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


def signed_headers(secret: str, event_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers for `body` sent at `timestamp` (an aware datetime)."""
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def send(
    http: requests.Session,
    url: str,
    secret: str,
    event_id: str,
    body: str,
    timestamp: datetime,
    timeout: float = TIMEOUT_SECONDS,
) -> Outcome:
    """POST one signed event; never raises for what the network or the subscriber does."""
    headers = signed_headers(secret, event_id, timestamp, body)
    started = time.monotonic()
    try:
        response = http.post(
            url,
            data=body.encode(),
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,  # the answer's body is never read: a huge one costs nothing
        )
        response.close()
    except requests.Timeout:
        return Outcome(None, f"no answer within {timeout:g} s", _ms(started))
    except requests.exceptions.SSLError:
        return Outcome(None, "TLS handshake failed", _ms(started))
    except requests.ConnectionError:
        return Outcome(None, "connection failed", _ms(started))
    except requests.RequestException as err:
        return Outcome(None, f"request failed ({type(err).__name__})", _ms(started))
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return Outcome(response.status_code, error, _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
