"""The dispatcher page (`/embed/vendors/<system>/<external_id>`): signed links to it, and what it
shows.

The page is meant for an iframe or a custom link inside Salesforce or a dispatch tool, where no
API token can live. A link is authorised instead by an HMAC-SHA256 over the vendor reference and
the link's expiry. The HMAC key is derived from `COI_SECRET_KEY` for this one purpose, so the same
secret can serve other features without a signature made for one being valid for another.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy.orm import Session

from connector.clock import as_utc, utcnow
from connector.compliance.model import RequirementSet
from connector.errors import APIError, NotFound
from connector.schemas import EMBED_TTL_MAX
from connector.services import audit
from connector.services.compliance import applicable_sets, headline, stored_or_evaluated
from connector.services.context import Context
from connector.services.gate import SETS_TABLES, alternatives
from connector.services.requirements import load_sets
from connector.services.vendors import find_by_ref
from connector.storage import models as m
from connector.storage.snapshots import Snapshots

PATH_PREFIX = "/embed/vendors"

_KEY_PURPOSE = b"embed-link"
_EXPIRES = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
#: The binding columns' sizes: a longer reference cannot name a vendor.
_MAX_SYSTEM, _MAX_EXTERNAL_ID = 64, 255

#: Status in words: the colour band never carries the meaning alone.
STATUS_LABELS = {
    "compliant": "Compliant",
    "expiring": "Expiring soon",
    "non_compliant": "Not compliant",
    "inactive": "Inactive",
    "not_evaluated": "Not evaluated",
}
STATUS_NOTES = {
    "compliant": "Insurance meets the requirements.",
    "expiring": "Insurance meets the requirements but expires soon.",
    "non_compliant": "Insurance does not meet the requirements.",
    "inactive": "The vendor is deactivated.",
    "not_evaluated": "No requirement set applies to this vendor; nothing was checked.",
}


# --------------------------------------------------------------------------------------------
# Signed links
# --------------------------------------------------------------------------------------------


def _require_key(secret_key: str | None) -> str:
    if not secret_key:
        raise APIError(
            503, "unavailable", "embed links need COI_SECRET_KEY (or COI_SECRET_KEY_FILE) to be set"
        )
    return secret_key


def sign(secret_key: str, system: str, external_id: str, expires: int) -> str:
    """Hex HMAC-SHA256 of (system, external id, expiry) under the embed-link key."""
    key = hmac.new(secret_key.encode(), _KEY_PURPOSE, hashlib.sha256).digest()
    # A JSON array keeps the parts apart whatever characters they hold.
    message = json.dumps([system, external_id, expires], separators=(",", ":"))
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def signed_path(secret_key: str, system: str, external_id: str, expires: int) -> str:
    """The page's path and query string for a link that expires at `expires` (unix seconds)."""
    path = f"{PATH_PREFIX}/{quote(system, safe='')}/{quote(external_id, safe='')}"
    signature = sign(secret_key, system, external_id, expires)
    query = urlencode({"expires": expires, "signature": signature})
    return f"{path}?{query}"


def mint(ctx: Context, secret_key: str | None, data: dict[str, Any]) -> dict[str, Any]:
    """A signed link to the page of the vendor bound to `data`'s (system, external_id), valid
    for `ttl_seconds` (`embed_link_request_schema` checked its bounds); audited, since the link
    grants a view of that vendor to whoever holds it."""
    key = _require_key(secret_key)
    system, external_id = data["system"], data["external_id"]
    expires = int(utcnow().timestamp()) + data["ttl_seconds"]
    session = ctx.session
    with session.begin():
        vendor = find_by_ref(session, system, external_id)
        if vendor is None:
            raise NotFound("vendor reference", f"{system}/{external_id}")
        audit.record(
            session,
            ctx.actor,
            "embed_link.create",
            "vendor",
            vendor.id,
            {"system": system, "external_id": external_id, "expires": expires},
        )
    return {
        "url": signed_path(key, system, external_id, expires),
        "expires_at": datetime.fromtimestamp(expires, UTC).isoformat(),
    }


def check_link(
    secret_key: str | None,
    system: str,
    external_id: str,
    expires: str | None,
    signature: str | None,
    now: datetime,
) -> datetime:
    """Refuse (403) a link that is incomplete, forged, made for another vendor, expired, or
    claims to live longer than links may; 503 when no secret key is configured. Returns when
    the link expires."""
    key = _require_key(secret_key)
    if (
        expires is None
        or signature is None
        or not _EXPIRES.fullmatch(expires)
        or not _SIGNATURE.fullmatch(signature)
    ):
        raise APIError(403, "forbidden", "the link is incomplete")
    expected = sign(key, system, external_id, int(expires))
    if not hmac.compare_digest(expected, signature):
        raise APIError(403, "forbidden", "the link's signature is not valid")
    left = int(expires) - int(now.timestamp())
    if left <= 0:
        raise APIError(403, "forbidden", "the link has expired; ask for a new one")
    if left > EMBED_TTL_MAX:
        raise APIError(403, "forbidden", "the link claims to live longer than links may")
    return datetime.fromtimestamp(int(expires), UTC)


def vendor_for_link(session: Session, system: str, external_id: str) -> m.Vendor:
    """The vendor a (verified) link names; 404 when no binding has that reference."""
    vendor = None
    # Too long for the binding columns, or a NUL PostgreSQL cannot hold: no stored reference.
    storable = "\x00" not in system + external_id
    if len(system) <= _MAX_SYSTEM and len(external_id) <= _MAX_EXTERNAL_ID and storable:
        vendor = find_by_ref(session, system, external_id)
    if vendor is None:
        raise NotFound("vendor reference", f"{system}/{external_id}")
    return vendor


# --------------------------------------------------------------------------------------------
# What the page shows
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    message: str
    severity: str
    waived: bool


@dataclass(frozen=True)
class Alternative:
    name: str
    status: str
    label: str
    score: int


@dataclass(frozen=True)
class VendorView:
    name: str
    status: str
    label: str
    note: str
    score: int | None
    expires_on: date | None
    requirement_set: str | None
    findings: list[Finding]
    alternatives: list[Alternative]
    evaluated_at: datetime | None


def vendor_view(
    session: Session,
    vendor: m.Vendor,
    today: date,
    now: datetime,
    snapshots: Snapshots | None = None,
) -> VendorView:
    """The vendor's headline result today (stored when it still holds, else evaluated now), its
    deficiencies in words, and the best compliant vendors for the same work (`snapshots`: the
    worker's, which keeps the gate's ranked alternatives between requests)."""
    snapshots = snapshots or Snapshots.uncached()
    sets = snapshots.get("requirement_sets", SETS_TABLES, lambda: load_sets(session))
    requirement_set = headline([(s, s) for s in applicable_sets(sets, vendor, today)])
    body, evaluated_at = None, None
    if requirement_set is not None:
        body, evaluated_at = _headline_body(session, vendor, requirement_set, today, now)
    status = "inactive" if not vendor.active else (body["status"] if body else "not_evaluated")
    findings = []
    if body is not None:
        findings = [Finding(d["message"], d["severity"], False) for d in body["deficiencies"]] + [
            Finding(d["message"], d["severity"], True) for d in body.get("waived", [])
        ]
    return VendorView(
        name=vendor.name,
        status=status,
        label=STATUS_LABELS[status],
        note=STATUS_NOTES[status],
        score=body["score"] if body else None,
        expires_on=date.fromisoformat(body["expires_on"]) if body and body["expires_on"] else None,
        requirement_set=requirement_set.name if requirement_set else None,
        findings=findings,
        alternatives=_alternatives(session, vendor, requirement_set, today, snapshots),
        evaluated_at=evaluated_at,
    )


def _headline_body(
    session: Session, vendor: m.Vendor, requirement_set: RequirementSet, today: date, now: datetime
) -> tuple[dict[str, Any], datetime]:
    stored = session.get(m.ComplianceResult, (vendor.id, requirement_set.key))
    body, fresh = stored_or_evaluated(
        lambda: session, vendor.id, stored, requirement_set, today, today
    )
    return body, now if fresh else as_utc(stored.computed_at)


def _alternatives(
    session: Session,
    vendor: m.Vendor,
    requirement_set: RequirementSet | None,
    today: date,
    snapshots: Snapshots,
) -> list[Alternative]:
    """Compliant or expiring vendors sharing one of this vendor's work types and one of its
    regions under the same requirement set, best score first (the gate's query)."""
    if requirement_set is None:
        return []
    best = alternatives(
        lambda: session,
        requirement_set,
        [w.work_type for w in vendor.work_types],
        [r.region for r in vendor.regions],
        today,
        today,
        exclude=vendor.id,
        snapshots=snapshots,
    )
    return [
        Alternative(a["name"], a["status"], STATUS_LABELS[a["status"]], a["score"]) for a in best
    ]
