"""Verifying inbound webhook signatures: pure functions of the headers, the raw body, the
secrets and the current time.

Two schemes:

- **Standard Webhooks** (`standard`): `webhook-id`, `webhook-timestamp` (unix seconds) and
  `webhook-signature` (space-separated `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`).
  The secret format (`whsec_` + base64) and the signed content are the `standardwebhooks`
  package's (`Webhook.sign`); the header parsing, the replay window and the comparison are here,
  because the package's `Webhook.verify` reads the wall clock (no time can be given, so neither
  the window edges nor the published test vector can be checked), accepts one secret only, and
  stops at the first malformed signature with an exception other than its verification error,
  so a valid signature after it (key rotation) would never be looked at.
- **HMAC** (`hmac`): one header of the sender's choosing carrying the HMAC-SHA256 of the raw
  body, keyed with the secret's UTF-8 bytes, in hex or base64.

Every function verifies the raw bytes before anything parses them, tries every configured secret
(a receiver accepts old and new during a rotation) against every signature given, and compares in
constant time. Failures raise `SignatureError` whose message is safe to show: it never contains a
secret or an expected signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

#: How far a `webhook-timestamp` may be from our clock, either way (Standard Webhooks: 5 min).
TOLERANCE_SECONDS = 5 * 60
SCHEMES = ("standard", "hmac")
ENCODINGS = ("hex", "base64")

_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class SignatureError(Exception):
    """The delivery is not authentic (or too old / too new): answer 401."""


def verify_standard(
    secrets: Sequence[str], headers: Mapping[str, str], body: bytes, now: float
) -> str:
    """Check a Standard Webhooks delivery; returns its `webhook-id` (the idempotency key)."""
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    given = _header(headers, "webhook-signature")
    if not (msg_id and stamp and given):
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature are required")
    if not _TIMESTAMP.fullmatch(stamp):
        raise SignatureError("webhook-timestamp must be unix seconds")
    timestamp = int(stamp)
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is more than 5 minutes away from now")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureError("no matching signature") from None
    signatures = [_v1(value) for value in given.split()]
    candidates = [sig for sig in signatures if sig is not None]
    when = datetime.fromtimestamp(timestamp, UTC)
    for secret in secrets:
        signer = _signer(secret)
        if signer is not None and _any_equal(_v1(signer.sign(msg_id, when, text)), candidates):
            return msg_id
    raise SignatureError("no matching signature")


@lru_cache(maxsize=64)
def _signer(secret: str) -> Webhook | None:
    """The package's signer for a configured secret (its key decoded once, not per delivery);
    None for a malformed secret, which matches nothing."""
    try:
        return Webhook(secret)
    except (EmptyWebhookSecretError, binascii.Error, ValueError):
        return None


def verify_hmac(
    secrets: Sequence[str], signature: str | None, body: bytes, encoding: str = "hex"
) -> None:
    """Check a single-header HMAC-SHA256 of the raw body (hex or base64)."""
    if not signature:
        raise SignatureError("the signature header is missing")
    given = _decode(signature.strip(), encoding)
    if given is None:
        raise SignatureError("no matching signature")
    expected = [hmac.new(s.encode("utf-8"), body, hashlib.sha256).digest() for s in secrets]
    if not _any_equal_bytes(given, expected):
        raise SignatureError("no matching signature")


def body_digest(body: bytes) -> str:
    """The delivery id of a sender that sends none: the SHA-256 of the raw body."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def split_secrets(value: str | None) -> list[str]:
    """Whitespace-separated secrets (old and new during a rotation)."""
    return (value or "").split()


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    return value.strip() if isinstance(value, str) else ""


def _v1(value: str) -> bytes | None:
    version, comma, encoded = value.partition(",")
    if version != "v1" or not comma:
        return None
    return _decode(encoded, "base64")


def _decode(value: str, encoding: str) -> bytes | None:
    try:
        if encoding == "hex":
            return bytes.fromhex(value)
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        return None


def _any_equal(expected: bytes | None, candidates: Sequence[bytes]) -> bool:
    return expected is not None and _any_equal_bytes(expected, candidates)


def _any_equal_bytes(one: bytes, others: Sequence[bytes]) -> bool:
    # Every candidate is compared (no early exit), each in constant time.
    matched = False
    for other in others:
        matched |= hmac.compare_digest(one, other)
    return matched
