"""A stand-in for a ServiceChannel-like work-dispatch system: a REST API over a real socket.

What it speaks (see docs/adapters/dispatch.md and PEERS.md, "Dispatch systems"):

- OAuth 2.0 client credentials: `POST /oauth2/token` (form `grant_type=client_credentials`,
  `client_id`, `client_secret`, or the client as HTTP Basic) answers `{access_token,
  token_type: "Bearer", expires_in}`. Tokens live `token_lifetime` seconds (default 300); an
  expired or unknown token gets 401 `{"error": "invalid_token"}`.
- Providers: `GET /v3/providers?updated_since=ISO&cursor=C&limit=N` (cursor pagination, ordered
  by UpdatedAt then Id, `updated_since` inclusive) answers `{"items", "next_cursor"}`;
  `GET /v3/providers/<id>`; `PATCH /v3/providers/<id>` with `DoNotDispatch`, `ComplianceNote`,
  `ComplianceScore` or `Status`.
- Work orders: `GET /v3/workorders?page=N&page_size=M` (page pagination) answers `{"items",
  "page", "total_pages"}`; `GET /v3/workorders/<id>`; `POST /v3/workorders/<id>/notes`
  `{"Note": ...}`; `PATCH /v3/workorders/<id>` with `ProviderId` (null un-assigns; a provider
  flagged Do Not Dispatch is refused with 409), `ComplianceHold`, `ComplianceNote`, `Status`,
  `Priority`, `ScheduledDate`, `Nte`.
- Faults (`sandbox.faults`, or `POST /__sandbox/faults` with `{"fail": n, "status": s,
  "retry_after": r}`, `{"slow": seconds}`, `{"reset": true}`): 429 with `Retry-After`, 503
  bursts, slow answers. `corrupt_provider` serves a malformed provider record.
- Outbound webhooks: `send_webhook` POSTs a work-order event signed per Standard Webhooks or
  with a single HMAC header (`X-Hmac-Hash`), using only the standard library.

Imports only flask (and the standard library), like every stand-in.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import math
import random
import secrets
import threading
import time
import urllib.error
import urllib.request
from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from flask import Flask, Response, jsonify, request

from sandbox.faults import Faults
from sandbox.server import Peer

TRADES = (
    "PLUMBING",
    "HVAC",
    "ELECTRICAL",
    "ROOFING",
    "CARPENTRY",
    "PAINTING",
    "LANDSCAPING",
    "JANITORIAL",
    "LOCKSMITH",
    "GENERAL MAINTENANCE",
)
REGIONS = ("us-east", "us-west", "us-central", "us-south")
CATEGORIES = ("REPAIR", "MAINTENANCE", "PREVENTIVE MAINTENANCE", "INSTALLATION")
PRIORITIES = ("P1 - Emergency", "P2 - Urgent", "P3 - Normal", "P4 - Scheduled")
_NAME_PARTS = (
    ("Northside", "Keystone", "Bluewater", "Summit", "Riverbend", "Ironwood", "Harbor",
     "Pioneer", "Lakeshore", "Granite", "Cedar", "Redline", "Evergreen", "Beacon", "Metro"),
    ("Services", "Contractors", "Mechanical", "Maintenance", "Solutions", "Works", "Group"),
    ("LLC", "Inc.", "Co.", "L.L.C.", "Corp."),
)  # fmt: skip

PROVIDER_WRITABLE = {
    "DoNotDispatch": (bool,),
    "ComplianceNote": (str, type(None)),
    "ComplianceScore": (int, type(None)),
    "Status": (str,),
}
WORK_ORDER_WRITABLE = {
    "ProviderId": (str, type(None)),
    "ComplianceHold": (bool,),
    "ComplianceNote": (str, type(None)),
    "Status": (dict,),
    "Priority": (str,),
    "ScheduledDate": (str,),
    "Nte": (int, float),
}
MAX_TEXT = 4000


def utc_stamp(moment: dt.datetime | None = None) -> str:
    """The sandbox's one timestamp format (UTC, milliseconds), so strings sort as times."""
    moment = (moment or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_stamp(text: str) -> str:
    """An ISO date-time (offset or Z; none means UTC) in the sandbox's own format."""
    value = dt.datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return utc_stamp(value)


# --- webhook signing (standard library only) -------------------------------------------------


def standard_webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: base64 after the `whsec_` prefix."""
    text = secret.removeprefix("whsec_")
    return base64.b64decode(text)


def sign_standard(secret: str | Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,<base64 HMAC-SHA256 of "{id}.{ts}.{body}">`,
    one space-separated value per secret (several secrets model key rotation)."""
    keys = [secret] if isinstance(secret, str) else list(secret)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    values = []
    for key in keys:
        digest = hmac.new(standard_webhook_key(key), signed, hashlib.sha256).digest()
        values.append("v1," + base64.b64encode(digest).decode("ascii"))
    return " ".join(values)


def sign_hmac(secret: str, body: bytes, encoding: str = "hex") -> str:
    """HMAC-SHA256 of the raw body with the secret's UTF-8 bytes, as hex or base64."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    if encoding == "hex":
        return digest.hex()
    if encoding == "base64":
        return base64.b64encode(digest).decode("ascii")
    raise ValueError(f"encoding must be 'hex' or 'base64', not {encoding!r}")


class WebhookDelivery(NamedTuple):
    """What the receiver answered to one webhook."""

    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def send_webhook(
    target_url: str,
    event_type: str,
    payload: Mapping[str, Any],
    secret: str | Sequence[str],
    scheme: str = "standard",
    *,
    hmac_encoding: str = "hex",
    hmac_header: str = "X-Hmac-Hash",
    msg_id: str | None = None,
    timestamp: int | None = None,
    timeout: float = 10.0,
) -> WebhookDelivery:
    """POST a work-order event `{"EventType": event_type, **payload}` to `target_url`, signed
    with `scheme` "standard" (Standard Webhooks headers) or "hmac" (one header with the HMAC of
    the raw body); the receiver's status and body come back, whatever the status."""
    event = {"EventType": event_type, **payload}
    body = json.dumps(event, separators=(",", ":"), default=str).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": "dispatch-sandbox/1"}
    if scheme == "standard":
        msg_id = msg_id or "msg_" + secrets.token_urlsafe(18)
        timestamp = int(time.time()) if timestamp is None else timestamp
        headers["webhook-id"] = msg_id
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = sign_standard(secret, msg_id, timestamp, body)
    elif scheme == "hmac":
        if not isinstance(secret, str):
            raise ValueError("the hmac scheme takes a single secret")
        headers[hmac_header] = sign_hmac(secret, body, hmac_encoding)
    else:
        raise ValueError(f"scheme must be 'standard' or 'hmac', not {scheme!r}")
    outbound = urllib.request.Request(target_url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(outbound, timeout=timeout) as answer:
            return WebhookDelivery(answer.status, answer.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as err:
        with err:
            return WebhookDelivery(err.code, err.read().decode("utf-8", "replace"))


# --- the stand-in ------------------------------------------------------------------------------


class DispatchSandbox(Peer):
    """A dispatch system with providers and work orders, served over HTTP on a free port."""

    def __init__(
        self,
        *,
        client_id: str = "coi-connector",
        client_secret: str = "dispatch-sandbox-secret",
        token_lifetime: float = 300.0,
    ):
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = self._initial_token_lifetime = token_lifetime
        self.faults = Faults()
        #: Requests received, keyed by "METHOD /route" (e.g. "POST /oauth2/token").
        self.calls: Counter[str] = Counter()
        #: Webhook subscriptions: (url, secret, event types, scheme).
        self.subscriptions: list[tuple[str, str, frozenset[str], str]] = []
        self._lock = threading.RLock()
        self._tokens: dict[str, float] = {}
        self._providers: dict[str, dict[str, Any]] = {}
        self._provider_keys: list[tuple[str, str]] = []  # sorted (UpdatedAt, Id)
        self._work_orders: dict[str, dict[str, Any]] = {}
        self._corrupt: dict[str, str] = {}
        self._next_note = 1
        self.app = self._make_app()

    # lifecycle

    @property
    def url(self) -> str:
        return self.root_url

    @property
    def token_url(self) -> str:
        return self.url + "/oauth2/token"

    def reset(self) -> None:
        """Forget every provider, work order, token, fault, subscription and call count (the
        server keeps running), so one running sandbox can serve many tests."""
        with self._lock:
            self._tokens.clear()
            self._providers.clear()
            self._provider_keys.clear()
            self._work_orders.clear()
            self._corrupt.clear()
            self._next_note = 1
            self.subscriptions.clear()
            self.calls.clear()
            self.token_lifetime = self._initial_token_lifetime
        self.faults.reset()

    # data

    def seed_providers(self, n: int, seed: int = 0) -> list[dict[str, Any]]:
        """Add `n` providers (Ids `P-1001`, `P-1002`, ... continuing after existing ones),
        about one in ten Inactive, UpdatedAt spread over the past days (some equal)."""
        rng = random.Random(seed)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        made = []
        with self._lock:
            start = 1001 + len(self._providers)
            for number in range(start, start + n):
                first, kind, suffix = (rng.choice(part) for part in _NAME_PARTS)
                trades = rng.sample(TRADES, rng.randint(1, 3))
                name = f"{first} {trades[0].title()} {kind} {suffix}"
                slug = f"{first}{kind}{number}".lower()
                region = rng.choice(REGIONS)
                base = 2_006_000 + 100 * REGIONS.index(region)
                minutes = rng.randint(0, 30 * 24 * 60) // 5 * 5  # ties happen
                provider = {
                    "Id": f"P-{number}",
                    "Name": name,
                    "Email": f"dispatch@{slug}.example.com",
                    "Trades": trades,
                    "Region": region,
                    "Locations": sorted(rng.sample(range(base, base + 40), rng.randint(1, 4))),
                    "Status": "Inactive" if rng.random() < 0.1 else "Active",
                    "UpdatedAt": utc_stamp(now - dt.timedelta(minutes=minutes)),
                    "DoNotDispatch": False,
                    "ComplianceNote": None,
                    "ComplianceScore": None,
                }
                self._put_provider(provider)
                made.append(json.loads(json.dumps(provider)))
        return made

    def seed_work_orders(self, n: int, seed: int = 0) -> list[dict[str, Any]]:
        """Add `n` open work orders, each assigned to a random active provider (when there is
        one) at one of its locations and in one of its trades, scheduled in the coming weeks."""
        rng = random.Random(seed)
        today = dt.date.today()
        made = []
        with self._lock:
            active = [p for p in self._providers.values() if p["Status"] == "Active"]
            active.sort(key=lambda p: p["Id"])
            start = 284_019_001 + len(self._work_orders)
            for number in range(start, start + n):
                provider = rng.choice(active) if active else None
                when = dt.datetime.combine(
                    today + dt.timedelta(days=rng.randint(1, 30)),
                    dt.time(rng.choice((7, 8, 9, 10, 13, 14))),
                    dt.timezone(dt.timedelta(hours=-5)),
                )
                work_order = {
                    "Id": number,
                    "ProviderId": provider["Id"] if provider else None,
                    "ProviderName": provider["Name"] if provider else None,
                    "LocationId": rng.choice(provider["Locations"])
                    if provider
                    else rng.randrange(2_006_000, 2_006_400),
                    "Trade": rng.choice(provider["Trades"]) if provider else rng.choice(TRADES),
                    "Category": rng.choice(CATEGORIES),
                    "Priority": rng.choice(PRIORITIES),
                    "Status": {"Primary": "OPEN", "Extended": "DISPATCHED" if provider else None},
                    "Nte": float(rng.randrange(150, 5000, 25)),
                    "ScheduledDate": when.isoformat(),
                    "ComplianceHold": False,
                    "ComplianceNote": None,
                    "Notes": [],
                }
                self._work_orders[str(number)] = work_order
                made.append(json.loads(json.dumps(work_order)))
        return made

    def create_work_order(self, **fields: Any) -> dict[str, Any]:
        """Add one work order (defaults filled in; `ProviderId` sets `ProviderName`)."""
        with self._lock:
            number = 284_019_001 + len(self._work_orders)
            provider = self._providers.get(fields.get("ProviderId") or "")
            work_order = {
                "Id": number,
                "ProviderId": None,
                "ProviderName": provider["Name"] if provider else None,
                "LocationId": 2_006_001,
                "Trade": "PLUMBING",
                "Category": "REPAIR",
                "Priority": "P3 - Normal",
                "Status": {"Primary": "OPEN", "Extended": "DISPATCHED" if provider else None},
                "Nte": 500.0,
                "ScheduledDate": dt.datetime.combine(
                    dt.date.today() + dt.timedelta(days=3), dt.time(9), dt.UTC
                ).isoformat(),
                "ComplianceHold": False,
                "ComplianceNote": None,
                "Notes": [],
                **fields,
            }
            self._work_orders[str(number)] = work_order
            return json.loads(json.dumps(work_order))

    def provider(self, provider_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._providers.get(provider_id)
            return json.loads(json.dumps(found)) if found else None

    def work_order(self, work_order_id: str | int) -> dict[str, Any] | None:
        with self._lock:
            found = self._work_orders.get(str(work_order_id))
            return json.loads(json.dumps(found)) if found else None

    def touch_provider(self, provider_id: str, **changes: Any) -> dict[str, Any]:
        """Change a provider as someone in the dispatch system would (UpdatedAt becomes now)."""
        with self._lock:
            provider = self._providers[provider_id]
            self._remove_key(provider)
            provider.update(changes)
            provider["UpdatedAt"] = max(utc_stamp(), provider["UpdatedAt"])
            insort(self._provider_keys, (provider["UpdatedAt"], provider["Id"]))
            return json.loads(json.dumps(provider))

    def corrupt_provider(self, provider_id: str, how: str = "missing_id") -> None:
        """Serve this provider malformed from now on: `missing_id` (no Id), `bad_types`
        (Trades a string, DoNotDispatch "yes", UpdatedAt not a date) or `not_object`."""
        if how not in ("missing_id", "bad_types", "not_object"):
            raise ValueError(how)
        self._corrupt[provider_id] = how

    def issue_token(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_lifetime
        return token

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working (as when the remote rotates its keys)."""
        with self._lock:
            self._tokens.clear()

    # webhooks

    def subscribe(
        self,
        url: str,
        secret: str,
        event_types: Sequence[str] = ("WorkOrderCreated", "WorkOrderTechnicianAssigned"),
        scheme: str = "standard",
    ) -> None:
        """Register a webhook subscription, as an admin does in the dispatch system."""
        self.subscriptions.append((url, secret, frozenset(event_types), scheme))

    def emit(self, event_type: str, work_order_id: str | int) -> list[WebhookDelivery]:
        """Deliver `event_type` for a work order to every subscription that wants it."""
        payload = self.work_order(work_order_id)
        if payload is None:
            raise KeyError(work_order_id)
        return [
            send_webhook(url, event_type, payload, secret, scheme)
            for url, secret, types, scheme in list(self.subscriptions)
            if event_type in types
        ]

    def send_webhook(
        self,
        target_url: str,
        event_type: str,
        payload: Mapping[str, Any] | str | int,
        secret: str | Sequence[str],
        scheme: str = "standard",
        **options: Any,
    ) -> WebhookDelivery:
        """`send_webhook`, where `payload` may also be the Id of a work order held here."""
        if not isinstance(payload, Mapping):
            found = self.work_order(payload)
            if found is None:
                raise KeyError(payload)
            payload = found
        return send_webhook(target_url, event_type, payload, secret, scheme, **options)

    # internals

    def _put_provider(self, provider: dict[str, Any]) -> None:
        self._providers[provider["Id"]] = provider
        insort(self._provider_keys, (provider["UpdatedAt"], provider["Id"]))

    def _remove_key(self, provider: dict[str, Any]) -> None:
        key = (provider["UpdatedAt"], provider["Id"])
        index = bisect_left(self._provider_keys, key)
        if index < len(self._provider_keys) and self._provider_keys[index] == key:
            del self._provider_keys[index]

    def _serve_provider(self, provider: dict[str, Any]) -> Any:
        item = json.loads(json.dumps(provider))
        how = self._corrupt.get(provider["Id"])
        if how == "missing_id":
            del item["Id"]
        elif how == "bad_types":
            item.update(Trades=";".join(item["Trades"]), DoNotDispatch="yes", UpdatedAt="soon")
        elif how == "not_object":
            return f"{item['Id']}|{item['Name']}"
        return item

    def _token_valid(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._lock:
            expires = self._tokens.get(token.strip())
            if expires is None:
                return False
            if time.monotonic() >= expires:
                del self._tokens[token.strip()]
                return False
        return True

    def _make_app(self) -> Flask:
        app = Flask(f"dispatch_sandbox_{id(self)}")
        sandbox = self

        def error(status: int, code: str, message: str | None = None, **extra: Any) -> Response:
            body: dict[str, Any] = {"error": code}
            if message:
                body["message"] = message
            body.update(extra)
            response = jsonify(body)
            response.status_code = status
            return response

        @app.before_request
        def gatekeeper():
            rule = request.url_rule.rule if request.url_rule else request.path
            sandbox.calls[f"{request.method} {rule}"] += 1
            if request.path.startswith("/__sandbox/"):
                return None
            fault = sandbox.faults.next_error()
            if fault is not None:
                code = {429: "rate_limited", 503: "service_unavailable"}.get(fault.status, "fault")
                response = jsonify(fault.body or {"error": code})
                response.status_code = fault.status
                if fault.retry_after is not None:
                    seconds = float(fault.retry_after)
                    response.headers["Retry-After"] = (
                        str(int(seconds)) if seconds.is_integer() else str(seconds)
                    )
                return response
            if request.path.startswith("/v3/") and not sandbox._token_valid(
                request.headers.get("Authorization", "")
            ):
                response = error(401, "invalid_token", "The access token is missing or expired.")
                response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
                return response
            return None

        @app.errorhandler(404)
        def not_found(_err):
            return error(404, "not_found", "No such resource.")

        @app.errorhandler(405)
        def not_allowed(_err):
            return error(405, "method_not_allowed")

        @app.post("/__sandbox/faults")
        def arm_faults():
            spec = request.get_json(silent=True)
            if not isinstance(spec, dict):
                return error(400, "invalid_request", "Send a JSON object.")
            if spec.get("reset"):
                sandbox.faults.reset()
            if "token_lifetime" in spec:
                sandbox.token_lifetime = float(spec["token_lifetime"])
            try:
                sandbox.faults.arm(spec)
            except (TypeError, ValueError) as err:
                return error(400, "invalid_request", str(err))
            return jsonify({"ok": True})

        @app.post("/oauth2/token")
        def token():
            form = request.form
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
            if request.authorization and request.authorization.type == "basic":
                client_id = request.authorization.username
                client_secret = request.authorization.password
            if form.get("grant_type") != "client_credentials":
                return error(400, "unsupported_grant_type")
            ok = hmac.compare_digest(
                (client_id or "").encode(), sandbox.client_id.encode()
            ) & hmac.compare_digest((client_secret or "").encode(), sandbox.client_secret.encode())
            if not ok:
                return error(401, "invalid_client", "Client authentication failed.")
            return jsonify(
                {
                    "access_token": sandbox.issue_token(),
                    "token_type": "Bearer",
                    "expires_in": max(1, math.ceil(sandbox.token_lifetime)),
                }
            )

        @app.get("/v3/providers")
        def list_providers():
            try:
                limit = int(request.args.get("limit", 100))
                since = request.args.get("updated_since")
                since = _parse_stamp(since) if since else None
                cursor = request.args.get("cursor")
                after = _decode_cursor(cursor) if cursor else None
            except (ValueError, TypeError):
                return error(400, "invalid_parameter", "limit, updated_since or cursor is bad.")
            if not 1 <= limit <= 500:
                return error(400, "invalid_parameter", "limit must be 1..500.")
            with sandbox._lock:
                keys = sandbox._provider_keys
                start = 0 if since is None else bisect_left(keys, (since, ""))
                if after is not None:
                    start = max(start, bisect_right(keys, after))
                chosen = keys[start : start + limit]
                more = start + limit < len(keys)
                items = [sandbox._serve_provider(sandbox._providers[pid]) for _, pid in chosen]
            next_cursor = _encode_cursor(chosen[-1]) if more and chosen else None
            return jsonify({"items": items, "next_cursor": next_cursor})

        @app.get("/v3/providers/<provider_id>")
        def get_provider(provider_id: str):
            with sandbox._lock:
                provider = sandbox._providers.get(provider_id)
                if provider is None:
                    return error(404, "not_found", f"No provider {provider_id}.")
                return jsonify(sandbox._serve_provider(provider))

        @app.patch("/v3/providers/<provider_id>")
        def patch_provider(provider_id: str):
            changes = request.get_json(silent=True)
            problems = _check_fields(changes, PROVIDER_WRITABLE)
            if not problems and changes.get("Status", "Active") not in ("Active", "Inactive"):
                problems = {"Status": "must be Active or Inactive"}
            if not problems and len(changes.get("ComplianceNote") or "") > MAX_TEXT:
                problems = {"ComplianceNote": f"at most {MAX_TEXT} characters"}
            if problems:
                return error(
                    400, "invalid_fields", "Some fields cannot be written.", fields=problems
                )
            with sandbox._lock:
                if provider_id not in sandbox._providers:
                    return error(404, "not_found", f"No provider {provider_id}.")
                return jsonify(sandbox.touch_provider(provider_id, **changes))

        @app.get("/v3/workorders")
        def list_work_orders():
            try:
                page = int(request.args.get("page", 1))
                size = int(request.args.get("page_size", 50))
            except ValueError:
                return error(400, "invalid_parameter", "page and page_size are numbers.")
            if page < 1 or not 1 <= size <= 200:
                return error(400, "invalid_parameter", "page >= 1, page_size 1..200.")
            with sandbox._lock:
                ids = sorted(sandbox._work_orders, key=int)
                total_pages = max(1, math.ceil(len(ids) / size))
                chosen = ids[(page - 1) * size : page * size]
                items = [json.loads(json.dumps(sandbox._work_orders[i])) for i in chosen]
            return jsonify({"items": items, "page": page, "total_pages": total_pages})

        @app.get("/v3/workorders/<work_order_id>")
        def get_work_order(work_order_id: str):
            found = sandbox.work_order(work_order_id)
            if found is None:
                return error(404, "not_found", f"No work order {work_order_id}.")
            return jsonify(found)

        @app.post("/v3/workorders/<work_order_id>/notes")
        def add_note(work_order_id: str):
            body = request.get_json(silent=True)
            note = body.get("Note") if isinstance(body, dict) else None
            if not isinstance(note, str) or not note.strip() or len(note) > MAX_TEXT:
                return error(400, "invalid_fields", fields={"Note": "a text of 1..4000 chars"})
            with sandbox._lock:
                work_order = sandbox._work_orders.get(work_order_id)
                if work_order is None:
                    return error(404, "not_found", f"No work order {work_order_id}.")
                entry = {"Id": sandbox._next_note, "Note": note, "CreatedAt": utc_stamp()}
                sandbox._next_note += 1
                work_order["Notes"].append(entry)
            return jsonify(entry), 201

        @app.patch("/v3/workorders/<work_order_id>")
        def patch_work_order(work_order_id: str):
            changes = request.get_json(silent=True)
            problems = _check_fields(changes, WORK_ORDER_WRITABLE)
            if problems:
                return error(
                    400, "invalid_fields", "Some fields cannot be written.", fields=problems
                )
            with sandbox._lock:
                work_order = sandbox._work_orders.get(work_order_id)
                if work_order is None:
                    return error(404, "not_found", f"No work order {work_order_id}.")
                if "ProviderId" in changes:
                    provider_id = changes["ProviderId"]
                    provider = sandbox._providers.get(provider_id) if provider_id else None
                    if provider_id and provider is None:
                        return error(422, "unknown_provider", f"No provider {provider_id}.")
                    if provider and (provider["DoNotDispatch"] or provider["Status"] != "Active"):
                        return error(
                            409,
                            "provider_do_not_dispatch",
                            f"Provider {provider_id} may not receive new work.",
                        )
                    changes["ProviderName"] = provider["Name"] if provider else None
                work_order.update(changes)
                return jsonify(json.loads(json.dumps(work_order)))

        return app


def _check_fields(changes: Any, writable: Mapping[str, tuple[type, ...]]) -> dict[str, str]:
    if not isinstance(changes, dict) or not changes:
        return {"_": "send a JSON object with at least one field"}
    problems = {}
    for name, value in changes.items():
        if name not in writable:
            problems[name] = "unknown or read-only field"
        elif not isinstance(value, writable[name]) or (
            isinstance(value, bool) and bool not in writable[name]
        ):
            problems[name] = "wrong type"
    return problems


def _encode_cursor(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode("ascii")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        updated_at, provider_id = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (binascii.Error, UnicodeError, json.JSONDecodeError) as err:
        raise ValueError("bad cursor") from err
    if not isinstance(updated_at, str) or not isinstance(provider_id, str):
        raise ValueError("bad cursor")
    return updated_at, provider_id
