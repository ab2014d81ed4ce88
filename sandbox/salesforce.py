"""A stand-in for the Salesforce REST API, served over HTTPS like the real one.

It speaks the wire format simple-salesforce and our adapter use: the OAuth token endpoint
(client credentials and username-password flows), the versions list, SOQL queries with
`nextRecordsUrl` paging (`query/` and `queryAll/`), single-record GET / PATCH, and the
`composite/sobjects` collection PATCH with per-record results. Every data call needs a bearer
token, counts against an API allowance reported in `Sforce-Limit-Info`, and can be made to fail
through `sandbox.faults` (503 bursts, `REQUEST_LIMIT_EXCEEDED`, slowness), expired sessions,
locked rows and corrupted records.

Only the SOQL our adapter sends is understood:

    SELECT f1, f2 FROM Account|ServiceResource
      [WHERE <cond> [AND <cond>]...] [ORDER BY SystemModstamp [ASC] [, Id [ASC]]] [LIMIT n]

where a condition compares one field with a literal: datetime fields (`SystemModstamp`,
`LastModifiedDate`, `CreatedDate`) with a datetime literal and `= != < <= > >=`; text, picklist
and id fields with a quoted string (`\\'`, `\\\\` and the other SOQL escapes) by `=` or `!=`;
checkboxes with `true` / `false`; numbers with a number. Anything else answers 400
`MALFORMED_QUERY`, as Salesforce does for a query it cannot parse.

Run it on its own with `python -m sandbox.salesforce --accounts 1000 --port 0`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import random
import re
import secrets
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask, Response, request

from sandbox.faults import Faults
from sandbox.server import Peer, ca_bundle

#: Seeded records get SystemModstamps one second apart from here; every later change ticks on.
EPOCH = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)
MAX_COLLECTION = 200
MIN_BATCH, MAX_BATCH = 200, 2000
OPEN_CURSORS = 50

COI_STATUS_VALUES = ("Compliant", "Expiring", "Non-compliant")
RISK_TIERS = ("Low", "Medium", "High")
_HIGH_RISK = {"Roofing", "Elevator", "Fire Protection", "Electrical"}
_MEDIUM_RISK = {"General Contractor", "HVAC", "Plumbing"}
TRADES = (
    "Electrical",
    "Plumbing",
    "HVAC",
    "Roofing",
    "General Contractor",
    "Landscaping",
    "Painting",
    "Janitorial",
    "Fire Protection",
    "Elevator",
    "Locksmith",
    "Pest Control",
)
REGIONS = {
    "Northeast": ("NY", "NJ", "PA", "MA", "CT", "RI", "NH", "VT", "ME"),
    "Southeast": ("FL", "GA", "NC", "SC", "VA", "TN", "AL", "KY"),
    "Midwest": ("IL", "OH", "MI", "IN", "WI", "MN", "MO", "IA"),
    "Southwest": ("TX", "AZ", "NM", "OK", "NV"),
    "West": ("CA", "WA", "OR", "CO", "UT", "ID"),
}


# --- schema -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SField:
    name: str
    #: id reference string textarea phone url email picklist multipicklist boolean datetime date
    #: double
    type: str
    updateable: bool = True
    length: int = 255
    values: tuple[str, ...] = ()
    restricted: bool = False
    precision: int = 18
    required: bool = False


def _schema(*fields: SField) -> dict[str, SField]:
    return {f.name.lower(): f for f in fields}


_SYSTEM = (
    SField("Id", "id", updateable=False, length=18),
    SField("IsDeleted", "boolean", updateable=False),
    SField("CreatedDate", "datetime", updateable=False),
    SField("LastModifiedDate", "datetime", updateable=False),
    SField("SystemModstamp", "datetime", updateable=False),
)
_COMPLIANCE = (
    SField("COI_Status__c", "picklist", values=COI_STATUS_VALUES),
    SField("COI_Score__c", "double", precision=3),
    SField("COI_Expires__c", "date"),
    SField("COI_Deficiencies__c", "textarea", length=131072),
    SField("Is_Insurance_Compliant__c", "boolean"),
)
SCHEMAS: dict[str, dict[str, SField]] = {
    "Account": _schema(
        *_SYSTEM,
        SField("Name", "string", required=True),
        SField("Type", "picklist", values=("Customer", "Partner", "Vendor", "Prospect", "Other")),
        SField("Phone", "phone", length=40),
        SField("Website", "url"),
        SField("BillingState", "string", length=80),
        SField("Tax_ID__c", "string", length=20),
        SField("Trade__c", "picklist", values=TRADES),
        SField("Region__c", "picklist", values=tuple(REGIONS)),
        SField("Email__c", "email", length=80),
        SField("Trades__c", "multipicklist", length=4099, values=TRADES),
        SField("Service_Regions__c", "multipicklist", length=4099, values=tuple(REGIONS)),
        SField("Risk_Tier__c", "picklist", values=RISK_TIERS),
        SField("Active__c", "picklist", values=("Yes", "No")),
        *_COMPLIANCE,
    ),
    "ServiceResource": _schema(
        *_SYSTEM,
        SField("Name", "string", length=80, required=True),
        SField("AccountId", "reference", length=18),
        SField("IsActive", "boolean"),
        SField("ResourceType", "picklist", values=("T", "D", "C"), restricted=True),
        SField("Is_Insurance_Compliant__c", "boolean"),
        SField("COI_Score__c", "double", precision=3),
        SField("COI_Expires__c", "date"),
    ),
}
PREFIXES = {"Account": "001", "ServiceResource": "0Hn"}


# --- ids, times, literals ------------------------------------------------------------------------

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_RE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


def with_checksum(id15: str) -> str:
    """The 18-character, case-insensitive form of a 15-character Salesforce id."""
    suffix = ""
    for chunk in range(3):
        flags = sum(1 << i for i, c in enumerate(id15[chunk * 5 : chunk * 5 + 5]) if c.isupper())
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[flags]
    return id15 + suffix


def normalize_id(value: str) -> str | None:
    """18-character id for a well-formed 15 or 18 character id, else None."""
    if not _ID_RE.fullmatch(value):
        return None
    return with_checksum(value[:15])


def format_stamp(seconds: int) -> str:
    return (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _seconds(moment: datetime) -> float:
    return (moment - EPOCH).total_seconds()


class SoqlError(Exception):
    def __init__(self, message: str, code: str = "MALFORMED_QUERY"):
        super().__init__(message)
        self.code = code


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})(?![\dT])
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op>!=|<>|<=|>=|=|<|>)
    | (?P<punct>[,()])
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def _unescape(literal: str) -> str:
    out, i, body = [], 0, literal[1:-1]
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise SoqlError(
                    f"Invalid string literal {literal}: illegal escape sequence \\{nxt}"
                )
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _tokens(soql: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    soql = soql.rstrip()
    while pos < len(soql):
        match = _TOKEN.match(soql, pos)
        if not match or match.end() == pos:
            raise SoqlError(f"unexpected token at position {pos}: {soql[pos : pos + 20]!r}")
        kind = match.lastgroup
        text = match.group(kind)
        if kind == "string":
            tokens.append(("string", _unescape(text)))
        elif kind == "datetime":
            tokens.append(("datetime", datetime.fromisoformat(text.replace("Z", "+00:00"))))
        elif kind == "date":
            tokens.append(("date", date.fromisoformat(text)))
        elif kind == "number":
            tokens.append(("number", float(text)))
        else:
            tokens.append((kind, text))
        pos = match.end()
    return tokens


@dataclass
class Condition:
    field: SField
    op: str
    value: Any


@dataclass
class Query:
    object: str
    fields: list[SField]
    conditions: list[Condition] = field(default_factory=list)
    limit: int | None = None


def parse_soql(soql: str) -> Query:
    """Parse the SOQL subset described in the module docstring; SoqlError otherwise."""
    tokens = _tokens(soql)
    pos = 0

    def peek_word() -> str | None:
        if pos < len(tokens) and tokens[pos][0] == "word":
            return tokens[pos][1].upper()
        return None

    def take(kind: str, word: str | None = None) -> Any:
        nonlocal pos
        if pos >= len(tokens):
            raise SoqlError(f"unexpected end of query, expecting {word or kind}")
        got_kind, value = tokens[pos]
        if got_kind != kind or (word is not None and value.upper() != word):
            raise SoqlError(f"unexpected token: {value!s}, expecting {word or kind}")
        pos += 1
        return value

    take("word", "SELECT")
    names = [take("word")]
    while pos < len(tokens) and tokens[pos] == ("punct", ","):
        pos += 1
        names.append(take("word"))
    take("word", "FROM")
    object_name = take("word")
    schema = next((v for k, v in SCHEMAS.items() if k.lower() == object_name.lower()), None)
    if schema is None:
        raise SoqlError(
            f"sObject type '{object_name}' is not supported. If you are attempting to use a "
            "custom object, be sure to append the '__c' after the entity name.",
            "INVALID_TYPE",
        )
    object_name = next(k for k in SCHEMAS if k.lower() == object_name.lower())

    def resolve(name: str) -> SField:
        if "." in name or "(" in name:
            raise SoqlError(f"relationship and aggregate queries are not supported: {name}")
        found = schema.get(name.lower())
        if found is None:
            raise SoqlError(f"No such column '{name}' on entity '{object_name}'.", "INVALID_FIELD")
        return found

    fields = [resolve(n) for n in names]
    if len({f.name for f in fields}) != len(fields):
        raise SoqlError("duplicate field selected", "DUPLICATE_FIELD")
    query = Query(object_name, fields)

    if peek_word() == "WHERE":
        pos += 1
        while True:
            target = resolve(take("word"))
            op = take("op")
            if pos >= len(tokens):
                raise SoqlError("unexpected end of query, expecting a value")
            kind, value = tokens[pos]
            pos += 1
            query.conditions.append(_condition(target, "!=" if op == "<>" else op, kind, value))
            if peek_word() == "AND":
                pos += 1
                continue
            if peek_word() == "OR" or (pos < len(tokens) and tokens[pos][0] == "punct"):
                raise SoqlError("the sandbox understands AND-ed comparisons only")
            break
    if peek_word() == "ORDER":
        pos += 1
        take("word", "BY")
        order = []
        while True:
            order.append(resolve(take("word")).name)
            if peek_word() == "ASC":
                pos += 1
            elif peek_word() == "DESC":
                raise SoqlError("the sandbox orders by SystemModstamp, Id ascending only")
            if pos < len(tokens) and tokens[pos] == ("punct", ","):
                pos += 1
                continue
            break
        if order not in (["SystemModstamp"], ["SystemModstamp", "Id"]):
            raise SoqlError("the sandbox orders by SystemModstamp, Id ascending only")
    if peek_word() == "LIMIT":
        pos += 1
        limit = take("number")
        if limit < 0 or limit != int(limit):
            raise SoqlError("LIMIT must be a non-negative integer")
        query.limit = int(limit)
    if pos != len(tokens):
        raise SoqlError(f"unexpected token: {tokens[pos][1]!s}")
    return query


def _condition(target: SField, op: str, kind: str, value: Any) -> Condition:
    ordered = op in ("<", "<=", ">", ">=")
    if kind == "word" and value.lower() == "null":
        if ordered:
            raise SoqlError(f"null can only be compared with = or != ({target.name})")
        return Condition(target, op, None)
    if target.type == "datetime":
        if kind != "datetime":
            raise SoqlError(
                f"value of filter criterion for field '{target.name}' must be of type dateTime "
                "and should not be enclosed in quotes",
                "INVALID_FIELD",
            )
        return Condition(target, op, _seconds(value))
    if target.type == "date":
        if kind != "date":
            raise SoqlError(f"value for '{target.name}' must be a date literal", "INVALID_FIELD")
        return Condition(target, op, value.isoformat())
    if target.type == "boolean":
        if kind != "word" or value.lower() not in ("true", "false") or ordered:
            raise SoqlError(f"'{target.name}' compares with = true or = false", "INVALID_FIELD")
        return Condition(target, op, value.lower() == "true")
    if target.type == "double":
        if kind != "number":
            raise SoqlError(f"value for '{target.name}' must be a number", "INVALID_FIELD")
        return Condition(target, op, value)
    if kind != "string":
        raise SoqlError(
            f"value of filter criterion for field '{target.name}' must be a quoted string",
            "INVALID_FIELD",
        )
    if ordered:
        raise SoqlError(f"the sandbox compares '{target.name}' with = or != only")
    if target.type in ("id", "reference"):
        normal = normalize_id(value)
        if normal is None:
            raise SoqlError(f"invalid ID field: {value}", "INVALID_QUERY_FILTER_OPERATOR")
        return Condition(target, op, normal)
    return Condition(target, op, value.casefold())


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if left is None:
        return False
    try:
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    except TypeError:
        return False


# --- the sandbox ---------------------------------------------------------------------------------


@dataclass
class _Cursor:
    object: str
    fields: list[SField]
    ids: list[str]
    batch: int
    endpoint: str


class SalesforceSandbox(Peer):
    """A Salesforce org in memory, reachable over HTTPS once `start()`ed.

    `records` seeds it: {"Account": [field dicts], "ServiceResource": [...]}, ids made up when
    absent. The credentials the token endpoint accepts are the attributes `client_id`,
    `client_secret`, `username` and `password`.
    """

    TLS = True

    def __init__(
        self,
        records: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
        api_version: str = "60.0",
        page_size: int = 2000,
        *,
        client_id: str = "3MVG9sandbox.coi-connector",
        client_secret: str = "sandbox-client-secret",
        username: str = "integration@coi-sandbox.example",
        password: str = "sandbox-password",
        api_limit: int = 1_000_000,
        session_seconds: float | None = None,
        restricted_picklists: bool = False,
    ):
        if not re.fullmatch(r"\d{2}\.0", api_version):
            raise ValueError("api_version looks like '60.0'")
        self.api_version = api_version
        self.page_size = page_size
        self.client_id = client_id
        self.client_secret = client_secret
        self.username = username
        self.password = password
        self.api_limit = api_limit
        self.session_seconds = session_seconds
        self.restricted_picklists = restricted_picklists
        self.org_id = with_checksum("00D5g00000COIsb")
        self.user_id = with_checksum("0055g00000INTgr")
        self.faults = Faults()
        #: Requests served, by endpoint ("token", "query", "query_more", "composite", ...).
        self.calls: Counter[str] = Counter()
        #: The last SOQL statements received, newest last.
        self.queries: deque[str] = deque(maxlen=100)
        self.api_usage = 0
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SCHEMAS}
        #: Per object, ids in SystemModstamp order (a write moves the id to the end).
        self._order: dict[str, dict[str, None]] = {name: {} for name in SCHEMAS}
        self._stamps: dict[str, int] = {}
        self._clock = -1
        self._counters: Counter[str] = Counter()
        self._tokens: dict[str, float | None] = {}
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._locks: Counter[str] = Counter()
        self.app = create_app(self)
        for object_name, rows in (records or {}).items():
            for row in rows:
                self.add(object_name, row)

    # -- lifecycle --

    @property
    def url(self) -> str:
        """The instance URL (https://127.0.0.1:PORT)."""
        return self.root_url

    @property
    def token_url(self) -> str:
        return f"{self.url}/services/oauth2/token"

    @staticmethod
    def ca_bundle() -> str:
        """The CA file clients must trust (`verify=`)."""
        return ca_bundle()

    # -- data helpers for tests and benchmarks --

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _new_id(self, object_name: str) -> str:
        self._counters[object_name] += 1
        n, body = self._counters[object_name], ""
        for _ in range(5):
            n, digit = divmod(n, 62)
            body = _BASE62[digit] + body
        return with_checksum(f"{PREFIXES[object_name]}5g00000{body}")

    def _touch(self, object_name: str, record_id: str, record: dict[str, Any]) -> None:
        stamp = self._tick()
        text = format_stamp(stamp)
        record["SystemModstamp"] = record["LastModifiedDate"] = text
        self._stamps[record_id] = stamp
        order = self._order[object_name]
        order.pop(record_id, None)
        order[record_id] = None

    def add(self, object_name: str, fields: Mapping[str, Any]) -> str:
        """Insert a record (system fields filled in); returns its 18-character id."""
        schema = SCHEMAS[object_name]
        with self._lock:
            record: dict[str, Any] = dict.fromkeys(
                (f.name for f in schema.values() if f.type != "boolean"), None
            )
            record.update({f.name: False for f in schema.values() if f.type == "boolean"})
            if object_name == "ServiceResource":
                record["IsActive"] = True
            for key, value in fields.items():
                record[schema[key.lower()].name] = value
            record_id = record.get("Id") or self._new_id(object_name)
            record["Id"] = record_id
            self._records[object_name][record_id] = record
            self._touch(object_name, record_id, record)
            record["CreatedDate"] = record["SystemModstamp"]
            return record_id

    def get(self, object_name: str, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._records[object_name].get(normalize_id(record_id) or "")
            return dict(record) if record is not None else None

    def update(self, object_name: str, record_id: str, fields: Mapping[str, Any]) -> str:
        """Change a record as a Salesforce user would (new SystemModstamp); returns it."""
        schema = SCHEMAS[object_name]
        with self._lock:
            record = self._records[object_name][record_id]
            for key, value in fields.items():
                record[schema[key.lower()].name] = value
            self._touch(object_name, record_id, record)
            return record["SystemModstamp"]

    def delete(self, object_name: str, record_id: str) -> None:
        """Move a record to the recycle bin: IsDeleted true, seen by queryAll only."""
        self.update(object_name, record_id, {"IsDeleted": True})

    def corrupt(
        self,
        object_name: str,
        record_id: str,
        fields: Mapping[str, Any] | None = None,
        drop: Iterable[str] = (),
    ) -> None:
        """Make a record malformed: set fields to anything (a bad date, a number as text) and
        leave the `drop`ped fields out of every answer, bypassing validation."""
        with self._lock:
            record = self._records[object_name][record_id]
            record.update(fields or {})
            for name in drop:
                record.pop(name, None)
            self._touch(object_name, record_id, record)

    def lock(self, record_ids: Iterable[str], times: int = 1) -> None:
        """The next `times` writes to each record fail with UNABLE_TO_LOCK_ROW."""
        with self._lock:
            for record_id in record_ids:
                self._locks[record_id] += times

    def expire_sessions(self) -> None:
        """Invalidate every access token issued so far."""
        with self._lock:
            self._tokens.clear()

    def count(self, object_name: str, include_deleted: bool = False) -> int:
        with self._lock:
            records = self._records[object_name].values()
            return sum(1 for r in records if include_deleted or not r.get("IsDeleted"))

    def ids(self, object_name: str, include_deleted: bool = False) -> list[str]:
        """Ids in SystemModstamp order."""
        with self._lock:
            records = self._records[object_name]
            return [
                i
                for i in self._order[object_name]
                if include_deleted or not records[i]["IsDeleted"]
            ]

    def latest_watermark(self) -> str:
        """The SystemModstamp of the latest change in the org."""
        with self._lock:
            return format_stamp(max(self._clock, 0))

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def seed_accounts(self, n: int, seed: int = 0) -> list[str]:
        """Add `n` vendor Accounts with plausible, deterministic data; returns their ids."""
        rng = random.Random(seed)
        states = [(s, region) for region, group in REGIONS.items() for s in group]
        ids = []
        for _ in range(n):
            name, slug, trade = _vendor_name(rng)
            state, region = rng.choice(states)
            trades = [trade, rng.choice(TRADES)] if rng.random() < 0.2 else [trade]
            regions = [region, rng.choice(list(REGIONS))] if rng.random() < 0.15 else [region]
            tier = "High" if trade in _HIGH_RISK else "Medium" if trade in _MEDIUM_RISK else "Low"
            area = rng.randint(201, 989)
            ids.append(
                self.add(
                    "Account",
                    {
                        "Name": name,
                        "Type": "Vendor",
                        "Phone": f"({area}) 555-{rng.randint(100, 9999):04d}",
                        "Website": f"https://www.{slug}.example",
                        "BillingState": state,
                        "Tax_ID__c": f"{rng.randint(10, 99)}-{rng.randint(0, 9999999):07d}",
                        "Trade__c": trade,
                        "Region__c": region,
                        "Email__c": f"{rng.choice(_MAILBOXES)}@{slug}.example",
                        "Trades__c": ";".join(dict.fromkeys(trades)),
                        "Service_Regions__c": ";".join(dict.fromkeys(regions)),
                        "Risk_Tier__c": tier,
                        "Active__c": "No" if rng.random() < 0.04 else "Yes",
                    },
                )
            )
        return ids

    def seed_service_resources(self, n: int, seed: int = 0) -> list[str]:
        """Add `n` technicians (ServiceResource), each working for an existing vendor Account;
        about one in twelve is inactive."""
        rng = random.Random(seed)
        accounts = self.ids("Account")
        if not accounts:
            raise ValueError("seed accounts first")
        return [
            self.add(
                "ServiceResource",
                {
                    "Name": f"{rng.choice(_FIRST_NAMES)} {rng.choice(_SURNAMES)}",
                    "AccountId": rng.choice(accounts),
                    "IsActive": rng.random() > 1 / 12,
                    "ResourceType": "C" if rng.random() < 0.1 else "T",
                },
            )
            for _ in range(n)
        ]

    # -- request handling helpers (called by the Flask views) --

    def _issue_token(self) -> str:
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(48)}"
        expires = time.monotonic() + self.session_seconds if self.session_seconds else None
        with self._lock:
            self._tokens[token] = expires
        return token

    def _valid_token(self, token: str) -> bool:
        with self._lock:
            if token not in self._tokens:
                return False
            expires = self._tokens[token]
            if expires is not None and time.monotonic() > expires:
                del self._tokens[token]
                return False
            return True

    def _run_query(self, query: Query, include_deleted: bool) -> list[str]:
        records = self._records[query.object]
        candidates: Iterable[str] = self._order[query.object]
        for cond in query.conditions:
            if cond.field.name == "Id" and cond.op == "=":
                candidates = [cond.value] if cond.value in records else []
        out = []
        for record_id in candidates:
            record = records[record_id]
            if record.get("IsDeleted") and not include_deleted:
                continue
            if all(self._matches(record_id, record, c) for c in query.conditions):
                out.append(record_id)
                if query.limit is not None and len(out) >= query.limit:
                    break
        return out

    def _matches(self, record_id: str, record: dict[str, Any], cond: Condition) -> bool:
        name = cond.field.name
        if name in ("SystemModstamp", "LastModifiedDate"):
            left: Any = self._stamps[record_id]
        elif cond.field.type == "datetime":
            try:
                left = _seconds(datetime.strptime(record.get(name) or "", "%Y-%m-%dT%H:%M:%S.%f%z"))
            except ValueError:
                left = None
        else:
            left = record.get(name)
            if isinstance(left, str) and cond.field.type not in ("id", "reference", "date"):
                left = left.casefold()
            elif isinstance(left, str) and cond.field.type in ("id", "reference"):
                left = normalize_id(left)
        return _compare(cond.op, left, cond.value)

    def _open_cursor(self, cursor: _Cursor) -> str:
        key = "01g5g" + "".join(secrets.choice(_BASE62) for _ in range(13))
        self._cursors[key] = cursor
        while len(self._cursors) > OPEN_CURSORS:
            self._cursors.popitem(last=False)
        return key

    def _page(self, key: str | None, cursor: _Cursor, offset: int) -> dict[str, Any]:
        chunk = cursor.ids[offset : offset + cursor.batch]
        records = self._records[cursor.object]
        rows = [self._serialize(cursor.object, records[i], cursor.fields) for i in chunk]
        done = offset + cursor.batch >= len(cursor.ids)
        body: dict[str, Any] = {"totalSize": len(cursor.ids), "done": done}
        if not done:
            if key is None:
                key = self._open_cursor(cursor)
            base = f"/services/data/v{self.api_version}/{cursor.endpoint}"
            body["nextRecordsUrl"] = f"{base}/{key}-{offset + cursor.batch}"
        elif key is not None:
            self._cursors.pop(key, None)
        body["records"] = rows
        return body

    def _serialize(
        self, object_name: str, record: dict[str, Any], fields: Iterable[SField]
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "attributes": {
                "type": object_name,
                "url": f"/services/data/v{self.api_version}/sobjects/{object_name}/{record['Id']}",
            }
        }
        for f in fields:
            if f.name in record:
                row[f.name] = record[f.name]
        return row

    def _validate(
        self, object_name: str, values: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(coerced values, per-record errors); raises _RequestError for whole-request errors."""
        schema = SCHEMAS[object_name]
        clean: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for key, value in values.items():
            f = schema.get(key.lower())
            if f is None:
                raise _RequestError(
                    400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {object_name}"
                )
            if not f.updateable:
                errors.append(
                    _error(
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        f"Unable to create/update fields: {f.name}. Please check the security "
                        "settings of this field and verify that it is read/write for your profile "
                        "or permission set.",
                        [f.name],
                    )
                )
                continue
            clean[f.name] = value
            if value is None:
                if f.required:
                    errors.append(
                        _error("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{f.name}]")
                    )
                continue
            if f.type == "boolean":
                if not isinstance(value, bool):
                    raise _parser_error("boolean", value)
            elif f.type == "double":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise _parser_error("double", value)
                if abs(value) >= 10**f.precision:
                    errors.append(
                        _error(
                            "NUMBER_OUTSIDE_VALID_RANGE",
                            f"{f.name}: value outside of valid range on numeric field: {value}",
                            [f.name],
                        )
                    )
            elif f.type == "date":
                try:
                    clean[f.name] = date.fromisoformat(value).isoformat()
                except (TypeError, ValueError):
                    raise _parser_error("date", value) from None
            elif isinstance(value, dict | list):
                raise _parser_error("string", value)
            else:
                text = value if isinstance(value, str) else json.dumps(value)
                clean[f.name] = text
                if f.type in ("id", "reference") and normalize_id(text) is None:
                    errors.append(
                        _error("MALFORMED_ID", f"{f.name}: id value of incorrect type: {text}")
                    )
                elif len(text) > f.length:
                    errors.append(
                        _error(
                            "STRING_TOO_LONG",
                            f"{f.name}: data value too large: {text[:40]}... "
                            f"(max length={f.length})",
                            [f.name],
                        )
                    )
                elif f.required and not text:
                    errors.append(
                        _error("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{f.name}]")
                    )
                elif (
                    f.type in ("picklist", "multipicklist")
                    and (f.restricted or self.restricted_picklists)
                    and not set(text.split(";") if f.type == "multipicklist" else [text])
                    <= set(f.values)
                ):
                    errors.append(
                        _error(
                            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                            f"{f.name}: bad value for restricted picklist field: {text}",
                            [f.name],
                        )
                    )
        return clean, errors

    def _target(self, object_name: str, raw_id: Any) -> tuple[str | None, dict[str, Any] | None]:
        """(record id, per-record error) for a write to `raw_id`."""
        if not raw_id:
            return None, _error("MISSING_ARGUMENT", "Id not specified in an update call")
        record_id = normalize_id(str(raw_id))
        if record_id is None or not record_id.startswith(PREFIXES[object_name]):
            return None, _error(
                "MALFORMED_ID", f"{object_name} ID: id value of incorrect type: {raw_id}"
            )
        record = self._records[object_name].get(record_id)
        if record is None:
            return None, _error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        if record.get("IsDeleted"):
            return None, _error("ENTITY_IS_DELETED", "entity is deleted")
        if self._locks.get(record_id):
            self._locks[record_id] -= 1
            if not self._locks[record_id]:
                del self._locks[record_id]
            return None, _error(
                "UNABLE_TO_LOCK_ROW",
                f"unable to obtain exclusive access to this record or 1 records: {record_id}",
            )
        return record_id, None

    def _apply(self, object_name: str, record_id: str, values: Mapping[str, Any]) -> None:
        record = self._records[object_name][record_id]
        record.update(values)
        self._touch(object_name, record_id, record)


class _RequestError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "fields": fields or []}


def _parser_error(kind: str, value: Any) -> _RequestError:
    shown = json.dumps(value)[:60]
    return _RequestError(
        400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of {kind} from value {shown}"
    )


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json;charset=UTF-8",
    )


def _errors(status: int, code: str, message: str) -> Response:
    return _json([{"message": message, "errorCode": code}], status)


def _release_label(version: str) -> str:
    k = int(float(version)) - 60
    return f"{('Spring', 'Summer', 'Winter')[k % 3]} '{24 + (k + 1) // 3}"


# --- the Flask app -------------------------------------------------------------------------------

_UNAUTHENTICATED = {"token", "versions"}


def create_app(sandbox: SalesforceSandbox) -> Flask:
    """The WSGI app serving `sandbox` (the state lives in the SalesforceSandbox)."""
    app = Flask("sandbox.salesforce")
    data = "/services/data/v<version>"

    def check_version(version: str) -> None:
        if version != sandbox.api_version and not (
            re.fullmatch(r"\d{2}\.0", version)
            and 31 <= float(version) <= float(sandbox.api_version)
        ):
            raise _RequestError(404, "NOT_FOUND", "The requested resource does not exist")

    @app.errorhandler(_RequestError)
    def request_error(err: _RequestError):
        return _errors(err.status, err.code, err.message)

    @app.errorhandler(404)
    def not_found(_err):
        return _errors(404, "NOT_FOUND", "The requested resource does not exist")

    @app.errorhandler(405)
    def not_allowed(_err):
        return _errors(
            405,
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{request.method}' not allowed. Allowed are GET",
        )

    @app.before_request
    def gatekeeper():
        if request.path.startswith("/__sandbox/"):
            return None
        name = request.endpoint or "other"
        with sandbox._lock:
            sandbox.calls[name] += 1
        fault = sandbox.faults.next_error()
        if fault is not None:
            body = fault.body
            if body is None:
                code = {403: "REQUEST_LIMIT_EXCEEDED", 503: "SERVER_UNAVAILABLE"}.get(
                    fault.status, "UNKNOWN_EXCEPTION"
                )
                body = [{"message": f"sandbox fault {fault.status}", "errorCode": code}]
            elif isinstance(body, dict) and "errorCode" in body:
                body = [body]
            response = _json(body, fault.status)
            if fault.retry_after is not None:
                response.headers["Retry-After"] = str(fault.retry_after)
            return response
        if name in _UNAUTHENTICATED or name == "other":
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not sandbox._valid_token(token.strip()):
            return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
        with sandbox._lock:
            sandbox.api_usage += 1
            over = sandbox.api_usage > sandbox.api_limit
        if over:
            return _errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        return None

    @app.after_request
    def limit_info(response: Response) -> Response:
        if not request.path.startswith("/__sandbox/"):
            response.headers["Sforce-Limit-Info"] = (
                f"api-usage={sandbox.api_usage}/{sandbox.api_limit}"
            )
        return response

    @app.post("/services/oauth2/token", endpoint="token")
    def token():
        form = request.form
        grant = form.get("grant_type", "")
        if grant not in ("client_credentials", "password"):
            return _json(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
                400,
            )
        if not hmac.compare_digest(form.get("client_id", ""), sandbox.client_id):
            return _json(
                {"error": "invalid_client_id", "error_description": "client identifier invalid"},
                400,
            )
        if not hmac.compare_digest(form.get("client_secret", ""), sandbox.client_secret):
            return _json(
                {"error": "invalid_client", "error_description": "invalid client credentials"},
                400,
            )
        if grant == "password" and not (
            hmac.compare_digest(form.get("username", ""), sandbox.username)
            and hmac.compare_digest(form.get("password", ""), sandbox.password)
        ):
            return _json(
                {"error": "invalid_grant", "error_description": "authentication failure"}, 400
            )
        instance_url = request.host_url.rstrip("/")
        identity = f"{instance_url}/id/{sandbox.org_id}/{sandbox.user_id}"
        issued_at = str(int(time.time() * 1000))
        signature = base64.b64encode(
            hmac.new(
                sandbox.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
        ).decode()
        return _json(
            {
                "access_token": sandbox._issue_token(),
                "signature": signature,
                "instance_url": instance_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
            }
        )

    @app.get("/services/data", endpoint="versions")
    @app.get("/services/data/", endpoint="versions")
    def versions():
        newest = int(float(sandbox.api_version))
        return _json(
            [
                {
                    "label": _release_label(f"{v}.0"),
                    "url": f"/services/data/v{v}.0",
                    "version": f"{v}.0",
                }
                for v in range(max(31, newest - 9), newest + 1)
            ]
        )

    @app.get(f"{data}/", endpoint="resources")
    def resources(version: str):
        check_version(version)
        base = f"/services/data/v{version}"
        names = ("sobjects", "query", "queryAll", "limits", "composite")
        return _json({name: f"{base}/{name}" for name in names})

    @app.get(f"{data}/limits/", endpoint="limits")
    def limits(version: str):
        check_version(version)
        remaining = max(sandbox.api_limit - sandbox.api_usage, 0)
        return _json({"DailyApiRequests": {"Max": sandbox.api_limit, "Remaining": remaining}})

    def run_query(version: str, endpoint: str):
        check_version(version)
        soql = request.args.get("q")
        if not soql:
            raise _RequestError(400, "MALFORMED_QUERY", "A query string has to be specified")
        with sandbox._lock:
            sandbox.queries.append(soql)
        try:
            query = parse_soql(soql)
        except SoqlError as err:
            raise _RequestError(400, err.code, str(err)) from None
        batch = sandbox.page_size
        options = request.headers.get("Sforce-Query-Options", "")
        hint = re.search(r"batchSize=(\d+)", options)
        if hint:
            batch = min(max(int(hint.group(1)), MIN_BATCH), MAX_BATCH)
        with sandbox._lock:
            ids = sandbox._run_query(query, include_deleted=endpoint == "queryAll")
            cursor = _Cursor(query.object, query.fields, ids, batch, endpoint)
            return _json(sandbox._page(None, cursor, 0))

    @app.get(f"{data}/query/", endpoint="query")
    def query(version: str):
        return run_query(version, "query")

    @app.get(f"{data}/queryAll/", endpoint="query_all")
    def query_all(version: str):
        return run_query(version, "queryAll")

    @app.get(f"{data}/query/<locator>", endpoint="query_more")
    @app.get(f"{data}/queryAll/<locator>", endpoint="query_more")
    def query_more(version: str, locator: str):
        check_version(version)
        key, _, offset = locator.rpartition("-")
        with sandbox._lock:
            cursor = sandbox._cursors.get(key)
            if cursor is None or not offset.isdigit():
                raise _RequestError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            sandbox._cursors.move_to_end(key)
            return _json(sandbox._page(key, cursor, int(offset)))

    def sobject(object_name: str) -> str:
        if object_name not in SCHEMAS:
            raise _RequestError(404, "NOT_FOUND", "The requested resource does not exist")
        return object_name

    @app.get(f"{data}/sobjects/<object_name>/<record_id>", endpoint="sobject_get")
    def sobject_get(version: str, object_name: str, record_id: str):
        check_version(version)
        object_name = sobject(object_name)
        schema = SCHEMAS[object_name]
        with sandbox._lock:
            record = sandbox._records[object_name].get(normalize_id(record_id) or "")
            if record is None:
                raise _RequestError(404, "NOT_FOUND", "The requested resource does not exist")
            if record.get("IsDeleted"):
                raise _RequestError(404, "ENTITY_IS_DELETED", "entity is deleted")
            wanted = request.args.get("fields")
            fields = list(schema.values())
            if wanted:
                fields = []
                for name in wanted.split(","):
                    f = schema.get(name.strip().lower())
                    if f is None:
                        raise _RequestError(
                            400,
                            "INVALID_FIELD",
                            f"No such column '{name.strip()}' on entity '{object_name}'",
                        )
                    fields.append(f)
            return _json(sandbox._serialize(object_name, record, fields))

    @app.patch(f"{data}/sobjects/<object_name>/<record_id>", endpoint="sobject_patch")
    def sobject_patch(version: str, object_name: str, record_id: str):
        check_version(version)
        object_name = sobject(object_name)
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise _RequestError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        with sandbox._lock:
            clean, errors = sandbox._validate(object_name, body)
            target, error = sandbox._target(object_name, record_id)
            if error is not None:
                status = 400 if error["statusCode"] == "UNABLE_TO_LOCK_ROW" else 404
                if error["statusCode"] == "INVALID_CROSS_REFERENCE_KEY":
                    error = _error("NOT_FOUND", "The requested resource does not exist")
                errors.insert(0, error)
                return _json([_as_rest_error(e) for e in errors], status)
            if errors:
                return _json([_as_rest_error(e) for e in errors], 400)
            sandbox._apply(object_name, target, clean)
        return Response(status=204)

    @app.patch(f"{data}/composite/sobjects", endpoint="composite")
    def composite(version: str):
        check_version(version)
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise _RequestError(
                400, "JSON_PARSER_ERROR", "The request body must be {allOrNone, records: [...]}"
            )
        rows = body["records"]
        if len(rows) > MAX_COLLECTION:
            raise _RequestError(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        all_or_none = bool(body.get("allOrNone"))
        with sandbox._lock:
            plans: list[tuple[str, str | None, dict[str, Any], list[dict[str, Any]]]] = []
            for row in rows:
                if not isinstance(row, dict):
                    raise _RequestError(400, "JSON_PARSER_ERROR", "each record must be an object")
                attributes = row.get("attributes")
                object_name = attributes.get("type") if isinstance(attributes, dict) else None
                if object_name not in SCHEMAS:
                    raise _RequestError(400, "INVALID_TYPE", "Must send a concrete entity type.")
                values = {k: v for k, v in row.items() if k not in ("attributes", "id", "Id")}
                clean, errors = sandbox._validate(object_name, values)
                target, error = sandbox._target(object_name, row.get("id") or row.get("Id"))
                if error is not None:
                    errors.insert(0, error)
                plans.append((object_name, target, clean, errors))
            failed = any(errors for *_, errors in plans)
            results = []
            for object_name, target, clean, errors in plans:
                if errors:
                    results.append({"success": False, "errors": errors})
                elif all_or_none and failed:
                    results.append(
                        {
                            "success": False,
                            "errors": [
                                _error(
                                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                    "Record rolled back because not all records were valid and "
                                    "the request was using AllOrNone header",
                                )
                            ],
                        }
                    )
                else:
                    sandbox._apply(object_name, target, clean)
                    results.append({"id": target, "success": True, "errors": []})
        return _json(results)

    @app.post("/__sandbox/faults")
    def arm_faults():
        spec = request.get_json(silent=True) or {}
        if spec.get("reset"):
            sandbox.faults.reset()
        if spec.get("expire_sessions"):
            sandbox.expire_sessions()
        if spec.get("fail") and spec.get("body") is not None:
            sandbox.faults.fail(
                int(spec["fail"]),
                int(spec.get("status", 503)),
                spec.get("retry_after"),
                spec["body"],
            )
            spec = {k: v for k, v in spec.items() if k not in ("fail", "body")}
        sandbox.faults.arm(spec)
        return _json({"armed": True})

    @app.get("/__sandbox/calls")
    def calls():
        with sandbox._lock:
            return _json({"calls": dict(sandbox.calls), "api_usage": sandbox.api_usage})

    return app


def _as_rest_error(error: dict[str, Any]) -> dict[str, Any]:
    """A composite-style {statusCode, message, fields} as a single-record REST error."""
    return {
        "message": error["message"],
        "errorCode": error["statusCode"],
        "fields": error["fields"],
    }


# --- plausible vendor data ---------------------------------------------------------------------

_NAME_WORDS = (
    "Summit", "Apex", "Keystone", "Liberty", "Pioneer", "Benchmark", "Cornerstone", "Evergreen",
    "Frontier", "Heritage", "Ironwood", "Lakeside", "Meridian", "Northstar", "Patriot",
    "Redline", "Sterling", "Tri-County", "Valley", "Westfield", "Blue Ridge", "Granite State",
    "Bayshore", "Capital", "Precision", "Reliable", "Allied", "Premier", "Metro", "Coastal",
)  # fmt: skip
_SURNAMES = (
    "Anderson", "Brennan", "Castillo", "Delgado", "Fitzgerald", "Garcia", "Hoffman", "Jensen",
    "Kowalski", "Lindqvist", "Martinez", "Nguyen", "O'Brien", "Patel", "Quinn", "Romano",
    "Schmidt", "Thompson", "Urbanski", "Vasquez", "Whitaker", "Yamamoto", "Zimmerman",
)  # fmt: skip
_FIRST_NAMES = (
    "Maria", "James", "Aisha", "Carlos", "Dana", "Ethan", "Fatima", "Grace", "Hector", "Ivan",
    "Jasmine", "Kevin", "Lena", "Marcus", "Nora", "Omar", "Priya", "Rafael", "Sara", "Tomas",
)  # fmt: skip
_TRADE_NOUNS = {
    "Electrical": ("Electric", "Electrical Services", "Electrical Contractors"),
    "Plumbing": ("Plumbing", "Plumbing & Drain", "Plumbing Services"),
    "HVAC": ("Heating & Air", "Mechanical", "HVAC Services"),
    "Roofing": ("Roofing", "Roofing & Sheet Metal", "Roof Systems"),
    "General Contractor": ("Builders", "Construction", "Contracting"),
    "Landscaping": ("Landscaping", "Grounds Care", "Lawn & Landscape"),
    "Painting": ("Painting", "Painting & Coatings", "Finishes"),
    "Janitorial": ("Cleaning Services", "Facility Services", "Janitorial"),
    "Fire Protection": ("Fire Protection", "Fire & Safety", "Sprinkler"),
    "Elevator": ("Elevator", "Lift & Escalator", "Elevator Service"),
    "Locksmith": ("Lock & Key", "Security Hardware", "Locksmiths"),
    "Pest Control": ("Pest Control", "Exterminating", "Pest Solutions"),
}
_SUFFIXES = ("LLC", "Inc.", "Co.", "Corp.", "L.L.C.", "& Sons", "Group", "Services LLC", "")
_MAILBOXES = ("office", "ap", "insurance", "info", "dispatch")


def _vendor_name(rng: random.Random) -> tuple[str, str, str]:
    """(name, web slug, trade) of a made-up contractor."""
    trade = rng.choice(TRADES)
    lead = rng.choice(_SURNAMES) if rng.random() < 0.35 else rng.choice(_NAME_WORDS)
    noun = rng.choice(_TRADE_NOUNS[trade])
    suffix = rng.choice(_SUFFIXES)
    name = " ".join(part for part in (lead, noun, suffix) if part)
    slug = re.sub(r"[^a-z0-9]+", "", (lead + noun).lower())
    return name, slug, trade


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Salesforce REST stand-in over HTTPS.")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--resources", type=int, default=None, help="default: accounts / 2")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--page-size", type=int, default=2000)
    parser.add_argument("--api-version", default="60.0")
    args = parser.parse_args(argv)
    sandbox = SalesforceSandbox(api_version=args.api_version, page_size=args.page_size)
    sandbox.seed_accounts(args.accounts, seed=args.seed)
    if args.accounts:
        resources = args.resources if args.resources is not None else args.accounts // 2
        sandbox.seed_service_resources(resources, seed=args.seed)
    sandbox.start(host=args.host, port=args.port)
    print(f"instance_url  {sandbox.url}", flush=True)
    print(f"token_url     {sandbox.token_url}")
    print(f"ca_bundle     {sandbox.ca_bundle()}")
    print(f"client_id     {sandbox.client_id}")
    print(f"client_secret {sandbox.client_secret}")
    print(f"username      {sandbox.username}")
    print(f"password      {sandbox.password}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
