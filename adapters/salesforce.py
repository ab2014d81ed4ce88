"""Salesforce: vendor Accounts and Field Service ServiceResources over the REST API.

The adapter gets its OAuth token itself (client credentials or username-password flow) from a
configurable token URL, then drives simple-salesforce with that session: SOQL queries paged
through `nextRecordsUrl` for reads, `composite/sobjects` PATCH (200 records a call, per-record
results) for writes. On an expired session (401 `INVALID_SESSION_ID`) it fetches a new token and
retries once; on HTTP 5xx or a dropped connection it backs off exponentially a few times; on
`REQUEST_LIMIT_EXCEEDED` it stops and raises `RateLimited`. Secrets come from the environment or
a file (`client_secret_env` / `_file`, `password_env` / `_file`) and never appear in messages.

Settings (all optional unless marked):

    token_url        (required) https://login.salesforce.com/services/oauth2/token or the My
                     Domain token URL
    auth             "client_credentials" (default) | "password"
    client_id        (required) the connected app's consumer key
    client_secret_env / client_secret_file   (required) the consumer secret
    username, password_env / password_file   (auth "password")
    api_version      "60.0"
    ca_bundle        a PEM file of CAs to trust instead of the system store (the sandbox)
    fields           {"Account": [...], "ServiceResource": [...]} fields to read
    page_size        query batch size hint, 200..2000 (Salesforce default 2000)
    include_deleted  true: read through queryAll so deletions come through (default true)
    timeout          seconds per HTTP request (30)
    retry_attempts   attempts per call on 5xx / connection errors (4)
    retry_base_seconds   first backoff delay, doubled each retry (0.5)
    rate_limit_seconds   retry_after reported with REQUEST_LIMIT_EXCEEDED when the answer has
                     no Retry-After (300)
    lookback_seconds re-read this much before the watermark on incremental reads (0)
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import requests
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.util import exception_handler

from adapters.base import (
    Adapter,
    AdapterError,
    ConfigurationError,
    Page,
    RateLimited,
    RemoteRecord,
    WriteRequest,
    WriteResult,
    secret,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "Account": (
        "Id",
        "Name",
        "Phone",
        "Website",
        "BillingState",
        "Type",
        "Email__c",
        "Tax_ID__c",
        "Trades__c",
        "Service_Regions__c",
        "Risk_Tier__c",
        "Active__c",
        "COI_Status__c",
        "COI_Score__c",
        "COI_Expires__c",
        "COI_Deficiencies__c",
        "Is_Insurance_Compliant__c",
        "IsDeleted",
        "SystemModstamp",
    ),
    "ServiceResource": (
        "Id",
        "Name",
        "AccountId",
        "IsActive",
        "ResourceType",
        "IsDeleted",
        "SystemModstamp",
    ),
}
#: Fields every read needs whatever the settings say: identity, change stream, deletion.
_REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "Account": ("Id", "IsDeleted", "SystemModstamp"),
    "ServiceResource": ("Id", "IsActive", "IsDeleted", "SystemModstamp"),
}
COLLECTION_LIMIT = 200
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
#: What a configured read field may be: a field, a parent relationship path (Account.Tax_ID__c)
#: or a child subquery of such paths ((SELECT Skill.MasterLabel FROM ServiceResourceSkills)).
_PATH = r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*){0,4}"
_READ_FIELD = re.compile(
    rf"{_PATH}|\(\s*SELECT\s+{_PATH}(?:\s*,\s*{_PATH})*\s+FROM\s+{_PATH}\s*\)", re.IGNORECASE
)
_RECORD_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_PLAIN_SECRETS = ("client_secret", "password", "access_token", "refresh_token", "session_id")
_RETRYABLE_RECORD_ERRORS = frozenset({"UNABLE_TO_LOCK_ROW"})


class _VerifyingSession(requests.Session):
    """A requests session that always passes its own `verify` and `timeout`, so a configured CA
    bundle wins over REQUESTS_CA_BUNDLE and no call can hang forever."""

    def __init__(self, verify: str | bool, timeout: float):
        super().__init__()
        self._verify = verify
        self._timeout = timeout

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        if kwargs.get("verify") is None:
            kwargs["verify"] = self._verify
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().request(method, url, *args, **kwargs)


class SalesforceAdapter(Adapter):
    kind: ClassVar[str] = "salesforce"
    objects: ClassVar[tuple[str, ...]] = ("Account", "ServiceResource")

    def __init__(self, settings: Mapping[str, Any]):
        super().__init__(settings)
        for name in _PLAIN_SECRETS:
            if name in settings:
                raise ConfigurationError(
                    f"{name} must not be given in plain text; use {name}_env or {name}_file"
                )
        self.token_url = _required(settings, "token_url")
        if not self.token_url.lower().startswith("https://"):
            raise ConfigurationError("token_url must be an https:// URL")
        self.auth = settings.get("auth", "client_credentials")
        if self.auth not in ("client_credentials", "password"):
            raise ConfigurationError("auth must be 'client_credentials' or 'password'")
        self.client_id = _required(settings, "client_id")
        if self.auth == "password":
            _required(settings, "username")
        self.api_version = str(settings.get("api_version", "60.0"))
        if not re.fullmatch(r"\d{2,3}\.\d", self.api_version):
            raise ConfigurationError("api_version looks like '60.0'")
        self.fields = {
            obj: self._field_list(obj, settings.get("fields") or {}) for obj in self.objects
        }
        self.page_size = _number(settings, "page_size", None, int, 200, 2000)
        self.include_deleted = bool(settings.get("include_deleted", True))
        self.timeout = _number(settings, "timeout", 30.0, float, 0.1, 600)
        self.retry_attempts = _number(settings, "retry_attempts", 4, int, 1, 10)
        self.retry_base_seconds = _number(settings, "retry_base_seconds", 0.5, float, 0, 60)
        self.rate_limit_seconds = _number(settings, "rate_limit_seconds", 300.0, float, 0, 86400)
        self.lookback_seconds = _number(settings, "lookback_seconds", 0.0, float, 0, 86400)
        ca_bundle = settings.get("ca_bundle")
        self._session = _VerifyingSession(str(ca_bundle) if ca_bundle else True, self.timeout)
        self._sf: Salesforce | None = None
        self.instance_url: str | None = None
        #: Tokens fetched so far (the first login plus renewals).
        self.logins = 0
        self._sleep: Callable[[float], None] = time.sleep

    def _field_list(self, obj: str, configured: Mapping[str, Any]) -> tuple[str, ...]:
        names = list(configured.get(obj) or DEFAULT_FIELDS[obj])
        for name in names:
            if not isinstance(name, str) or not _READ_FIELD.fullmatch(name):
                raise ConfigurationError(
                    f"fields.{obj}: {name!r} is not a field, relationship path or subquery"
                )
        seen = {n.lower() for n in names}
        names += [n for n in _REQUIRED_FIELDS[obj] if n.lower() not in seen]
        return tuple(names)

    # -- session ---------------------------------------------------------------------------

    def _fetch_token(self) -> dict[str, Any]:
        form = {
            "grant_type": self.auth,
            "client_id": self.client_id,
            "client_secret": secret(self.settings, "client_secret"),
        }
        if self.auth == "password":
            form["username"] = self.settings["username"]
            form["password"] = secret(self.settings, "password")
        failures = 0
        while True:
            try:
                response = self._session.post(
                    self.token_url, data=form, headers={"Accept": "application/json"}
                )
            except requests.exceptions.SSLError:
                raise ConfigurationError(
                    "TLS verification of the Salesforce token URL failed (check ca_bundle)"
                ) from None
            except (requests.ConnectionError, requests.Timeout) as err:
                failures += 1
                if failures >= self.retry_attempts:
                    raise AdapterError(
                        f"Salesforce token endpoint unreachable: {type(err).__name__}"
                    ) from None
                self._backoff(failures)
                continue
            if response.status_code >= 500:
                failures += 1
                if failures >= self.retry_attempts:
                    raise AdapterError(
                        f"Salesforce token endpoint answered HTTP {response.status_code}"
                    )
                self._backoff(failures)
                continue
            try:
                body = response.json()
            except ValueError:
                body = {}
            if response.status_code != 200:
                code = str(body.get("error", "")) if isinstance(body, dict) else ""
                if response.status_code == 429 or code == "rate_limit_exceeded":
                    raise RateLimited(
                        "Salesforce token endpoint is rate limiting logins",
                        retry_after=self._retry_after(response),
                    )
                description = (
                    str(body.get("error_description", ""))[:200] if isinstance(body, dict) else ""
                )
                raise ConfigurationError(
                    f"Salesforce refused the {self.auth} login: HTTP {response.status_code} "
                    f"{code or 'error'}{': ' + description if description else ''}"
                )
            if not isinstance(body, dict) or not body.get("access_token"):
                raise AdapterError("Salesforce token answer has no access_token", retryable=False)
            if not str(body.get("instance_url", "")).lower().startswith("https://"):
                raise AdapterError(
                    "Salesforce token answer has no https instance_url", retryable=False
                )
            self.logins += 1
            return body

    def _client(self) -> Salesforce:
        if self._sf is None:
            token = self._fetch_token()
            self.instance_url = token["instance_url"].rstrip("/")
            self._sf = Salesforce(
                instance_url=self.instance_url,
                session_id=token["access_token"],
                session=self._session,
                version=self.api_version,
                # Plain dicts, decoded by json's C scanner without a hook per object (the
                # library's default is OrderedDict; even `dict` as the hook costs a third more).
                object_pairs_hook=None,
            )
            log.info("salesforce: logged in to %s (%s flow)", self.instance_url, self.auth)
        return self._sf

    def close(self) -> None:
        self._sf = None
        self._session.close()

    def _backoff(self, failures: int) -> None:
        self._sleep(self.retry_base_seconds * 2 ** (failures - 1))

    def _retry_after(self, response: requests.Response | None) -> float:
        if response is not None:
            try:
                return float(response.headers.get("Retry-After", ""))
            except ValueError:
                pass
        return self.rate_limit_seconds

    def _call(self, what: str, call: Callable[[Salesforce], T]) -> T:
        """Run one REST call: renew the session once on 401, back off and retry on 5xx and
        connection errors, translate everything else into AdapterError."""
        renewed = False
        failures = 0
        while True:
            sf = self._client()
            try:
                return call(sf)
            except SalesforceError as err:
                status = int(getattr(err, "status", 0) or 0)
                code, message = _error_of(err.content)
                if status == 401:
                    if renewed:
                        raise ConfigurationError(
                            f"{what}: Salesforce rejected a freshly issued session ({code})"
                        ) from None
                    log.info("salesforce: session expired during %s, logging in again", what)
                    renewed = True
                    self._sf = None
                    continue
                if code == "REQUEST_LIMIT_EXCEEDED" or status == 429:
                    raise RateLimited(
                        f"{what}: Salesforce API limit reached ({code or status}): {message}",
                        retry_after=self.rate_limit_seconds,
                    ) from None
                if status >= 500:
                    failures += 1
                    if failures < self.retry_attempts:
                        log.warning("salesforce: %s got HTTP %s, retrying", what, status)
                        self._backoff(failures)
                        continue
                    raise AdapterError(
                        f"{what}: Salesforce answered HTTP {status} {code} "
                        f"{failures} times: {message}"
                    ) from None
                if status == 403:
                    raise ConfigurationError(
                        f"{what}: Salesforce refused access ({code}): {message}"
                    ) from None
                raise AdapterError(
                    f"{what}: Salesforce answered HTTP {status} {code}: {message}",
                    retryable=False,
                ) from None
            except requests.exceptions.SSLError:
                raise ConfigurationError(
                    f"{what}: TLS verification of the Salesforce instance failed (check ca_bundle)"
                ) from None
            except (requests.ConnectionError, requests.Timeout, ValueError) as err:
                # ValueError: a 2xx answer that is not JSON (a proxy's error page, a cut body).
                failures += 1
                if failures < self.retry_attempts:
                    log.warning("salesforce: %s failed (%s), retrying", what, type(err).__name__)
                    self._backoff(failures)
                    continue
                raise AdapterError(
                    f"{what}: Salesforce unreachable after {failures} attempts "
                    f"({type(err).__name__})"
                ) from None

    # -- Adapter ---------------------------------------------------------------------------

    def test(self) -> dict[str, Any]:
        self._client()

        def versions(sf: Salesforce) -> Any:
            response = self._session.get(
                f"https://{sf.sf_instance}/services/data/", headers={"Accept": "application/json"}
            )
            if response.status_code >= 300:
                exception_handler(response, name="versions")
            return response.json()

        offered = [v.get("version") for v in self._call("versions", versions) or ()]
        if self.api_version not in offered:
            newest = offered[-1] if offered else "none"
            raise ConfigurationError(
                f"Salesforce does not offer API version {self.api_version} (newest: {newest})"
            )
        self._call("resources", lambda sf: sf.restful(""))
        facts: dict[str, Any] = {"instance_url": self.instance_url, "api_version": self.api_version}
        usage = self._sf.api_usage.get("api-usage") if self._sf is not None else None
        if usage is not None:
            facts["api_usage"] = f"{usage.used}/{usage.total}"
        return facts

    def read_changes(self, object: str, since: str | None) -> Iterator[Page]:
        self._check_object(object)
        soql = f"SELECT {', '.join(self.fields[object])} FROM {object}"
        if since:
            moment = _parse_watermark(since) - timedelta(seconds=self.lookback_seconds)
            soql += format_soql(" WHERE SystemModstamp > {}", moment)
        soql += " ORDER BY SystemModstamp, Id"
        return self._pages(object, soql, since)

    def _pages(self, object: str, soql: str, since: str | None) -> Iterator[Page]:
        headers = {"Sforce-Query-Options": f"batchSize={self.page_size}"} if self.page_size else {}
        result = self._call(
            "query",
            lambda sf: sf.query(soql, include_deleted=self.include_deleted, headers=headers),
        )
        bookmark = since
        total = result.get("totalSize")
        total = total if isinstance(total, int) and not isinstance(total, bool) else None
        while True:
            records = [self._remote(object, raw) for raw in result.get("records") or ()]
            next_url = None if result.get("done", True) else result.get("nextRecordsUrl")
            result = None
            if records:
                bookmark = records[-1].watermark or bookmark
                yield Page(records=records, bookmark=bookmark, total=total)
            del records
            if not next_url:
                return
            result = self._call(
                "query_more",
                lambda sf, url=next_url: sf.query_more(
                    url, identifier_is_url=True, headers=headers
                ),
            )

    def read_one(self, object: str, external_id: str) -> RemoteRecord | None:
        self._check_object(object)
        if not isinstance(external_id, str) or not _RECORD_ID.fullmatch(external_id):
            return None  # not a Salesforce id, so no record can have it
        found = self.find(object, "Id", external_id, limit=1)
        return found[0] if found else None

    def find(self, object: str, field: str, value: Any, limit: int = 200) -> list[RemoteRecord]:
        """Records whose `field` equals `value` (escaped into the SOQL), at most `limit`."""
        self._check_object(object)
        if not _FIELD_NAME.fullmatch(field):
            raise AdapterError(f"{field!r} is not a field API name", retryable=False)
        soql = format_soql(
            f"SELECT {', '.join(self.fields[object])} FROM {object} WHERE {field} = {{}}"
            f" ORDER BY SystemModstamp, Id LIMIT {int(limit)}",
            value,
        )
        result = self._call(
            "query", lambda sf: sf.query(soql, include_deleted=self.include_deleted)
        )
        return [self._remote(object, raw) for raw in result.get("records") or ()]

    def write(self, object: str, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        self._check_object(object)
        results: list[WriteResult | None] = [None] * len(requests)
        pending: list[int] = []
        for index, req in enumerate(requests):
            problem = _write_problem(req)
            if problem:
                results[index] = WriteResult(req.external_id, False, error=problem)
            else:
                pending.append(index)
        answered = False
        for start in range(0, len(pending), COLLECTION_LIMIT):
            batch = pending[start : start + COLLECTION_LIMIT]
            body = {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": object},
                        "id": requests[i].external_id,
                        **{k: _jsonable(v) for k, v in requests[i].fields.items()},
                    }
                    for i in batch
                ],
            }
            try:
                answer = self._call(
                    "write",
                    lambda sf, body=body: sf.restful(
                        "composite/sobjects", method="PATCH", json=body
                    ),
                )
            except AdapterError as err:
                request_rejected = not err.retryable and not isinstance(err, ConfigurationError)
                if not (answered or request_rejected):
                    raise
                # Salesforce refused this batch as a whole (a 400): its records fail, the
                # others may still go through. Otherwise stop: the remote is down or limited.
                rest = batch if request_rejected else pending[start:]
                for i in rest:
                    results[i] = WriteResult(
                        requests[i].external_id, False, error=str(err), retryable=err.retryable
                    )
                if request_rejected:
                    answered = True
                    continue
                break
            answered = True
            items = answer if isinstance(answer, list) else []
            if len(items) != len(batch):
                for i in batch:
                    results[i] = WriteResult(
                        requests[i].external_id,
                        False,
                        error="Salesforce answered a different number of results than records",
                    )
                continue
            for i, item in zip(batch, items, strict=True):
                results[i] = _write_result(requests[i].external_id, item)
        done = [r for r in results if r is not None]
        failed = sum(1 for r in done if not r.ok)
        log.info("salesforce: wrote %d %s records, %d failed", len(done), object, failed)
        return done

    # -- helpers ---------------------------------------------------------------------------

    def _check_object(self, object: str) -> None:
        if object not in self.objects:
            raise ConfigurationError(
                f"Salesforce adapter does not handle {object!r} (only {', '.join(self.objects)})"
            )

    def _remote(self, object: str, data: dict[str, Any]) -> RemoteRecord:
        """The record of a decoded query answer, which it takes over (less its `attributes`)."""
        data.pop("attributes", None)
        deleted = bool(data.get("IsDeleted"))
        if object == "ServiceResource" and not data.get("IsActive", True):
            deleted = True
        stamp = data.get("SystemModstamp")
        return RemoteRecord(
            external_id=str(data.get("Id", "")),
            data=data,
            watermark=str(stamp) if stamp is not None else None,
            deleted=deleted,
        )


def _required(settings: Mapping[str, Any], name: str) -> str:
    value = settings.get(name)
    if not value or not isinstance(value, str):
        raise ConfigurationError(f"Salesforce setting {name} is required")
    return value


def _number(settings: Mapping[str, Any], name: str, default, kind, low, high):
    value = settings.get(name, default)
    if value is None:
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"Salesforce setting {name} must be a number") from None
    if not low <= number <= high:
        raise ConfigurationError(f"Salesforce setting {name} must be between {low} and {high}")
    return number


def _parse_watermark(text: str) -> datetime:
    """A SystemModstamp as Salesforce writes it (2026-11-28T10:00:00.000+0000) or any ISO 8601
    datetime; naive ones are UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except (AttributeError, ValueError):
        raise AdapterError(f"watermark {text!r} is not an ISO datetime", retryable=False) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _error_of(content: Any) -> tuple[str, str]:
    """(errorCode, message) of a Salesforce error body: [{"errorCode", "message"}] or text."""
    first = content[0] if isinstance(content, list) and content else content
    if isinstance(first, Mapping):
        code = str(first.get("errorCode") or first.get("error") or "")
        message = str(first.get("message") or first.get("error_description") or "")
        return code, message[:300]
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    return "", str(content or "")[:200]


def _write_problem(req: WriteRequest) -> str | None:
    if not isinstance(req.external_id, str) or not _RECORD_ID.fullmatch(req.external_id):
        return f"MALFORMED_ID: {req.external_id!r} is not a Salesforce record id"
    for name in req.fields:
        if name.lower() in ("id", "attributes") or not _FIELD_NAME.fullmatch(name):
            return f"INVALID_FIELD: {name!r} cannot be written"
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _write_result(external_id: str, item: Any) -> WriteResult:
    if isinstance(item, Mapping) and item.get("success"):
        return WriteResult(external_id, True)
    errors = item.get("errors") if isinstance(item, Mapping) else None
    errors = [e for e in errors or () if isinstance(e, Mapping)]
    codes = [str(e.get("statusCode", "")) for e in errors]
    text = "; ".join(
        f"{code}: {e.get('message', '')}" + (f" {list(e['fields'])}" if e.get("fields") else "")
        for code, e in zip(codes, errors, strict=True)
    )
    return WriteResult(
        external_id,
        False,
        error=text or "Salesforce reported a failure without details",
        retryable=bool(codes) and all(c in _RETRYABLE_RECORD_ERRORS for c in codes),
    )
