"""A ServiceChannel-like dispatch system over REST (requests), with OAuth 2.0 client credentials.

Objects: `Provider` (the contractors; the connector's vendors) and `WorkOrder`.

Settings (see docs/adapters/dispatch.md):

- `base_url` (required): API root, e.g. `https://api.dispatch.example.com`; paths are `/v3/...`.
- `token_url`: OAuth token endpoint (default `base_url + "/oauth2/token"`).
- `client_id` (required); `client_secret_env` or `client_secret_file` (the secret itself is
  never a setting); `scope` (optional).
- `page_size` (default 100), `timeout` seconds per request (default 30), `verify` (TLS: true,
  false or a CA bundle path; default true).
- `max_retries` (default 4): retries of one request after 429, 5xx or a connection error.
- `retry_base_seconds` (default 0.5): first exponential-backoff delay (doubling, capped 30 s).
- `max_retry_after` (default 60): the longest `Retry-After` we sleep through; a longer one
  raises `RateLimited(retry_after=...)` at once so the job can be rescheduled instead.

Secrets and tokens are never logged nor put into error messages.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
import urllib3

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

API = "/v3"
#: Statuses after which the server did not act on the request, so even a POST may be resent.
_RETRY_ANY_METHOD = {429, 502, 503, 504}
_CLIENT_ERRORS = {"invalid_client", "unauthorized_client", "invalid_grant", "invalid_scope"}
_MAX_BACKOFF = 30.0


class DispatchAdapter(Adapter):
    kind = "dispatch"
    objects = ("Provider", "WorkOrder")

    def __init__(
        self,
        settings: Mapping[str, Any],
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(settings)
        base_url = str(settings.get("base_url") or "").rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError("base_url is required (http:// or https://)")
        if not settings.get("client_id"):
            raise ConfigurationError("client_id is required")
        self.base_url = base_url
        self.token_url = str(settings.get("token_url") or base_url + "/oauth2/token")
        self.client_id = str(settings["client_id"])
        self.scope = settings.get("scope")
        self.page_size = _number(settings, "page_size", 100, int, low=1)
        self.timeout = _number(settings, "timeout", 30.0, float, low=0.001)
        self.max_retries = _number(settings, "max_retries", 4, int, low=0)
        self.retry_base_seconds = _number(settings, "retry_base_seconds", 0.5, float, low=0)
        self.max_retry_after = _number(settings, "max_retry_after", 60.0, float, low=0)
        self.verify = settings.get("verify", True)
        self._own_session = session is None
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", "coi-connector")
        self._sleep = sleep
        self._clock = clock
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lifetime: float | None = None

    # --- Adapter interface -------------------------------------------------------------------

    def test(self) -> dict[str, Any]:
        self._fetch_token()
        data = self._json("GET", f"{API}/providers", params={"limit": 1})
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise AdapterError("GET /v3/providers answered no item list", retryable=False)
        return {
            "base_url": self.base_url,
            "token_url": self.token_url,
            "client_id": self.client_id,
            "token_expires_in": self._token_lifetime,
            "providers_readable": True,
        }

    def read_changes(self, object: str, since: str | None) -> Iterator[Page]:
        """Providers changed at or after `since` (their `UpdatedAt`), oldest first, one Page per
        API page; records whose UpdatedAt equals `since` come again, so a run that stopped
        between two records with the same time loses neither. Work orders: every work order
        (the API has no change filter), page by page; `since` is ignored."""
        self._check_object(object)
        if object == "Provider":
            return self._read_providers(since)
        return self._read_work_orders()

    def read_one(self, object: str, external_id: str) -> RemoteRecord | None:
        self._check_object(object)
        if not external_id:
            return None
        path = "providers" if object == "Provider" else "workorders"
        response = self._request("GET", f"{API}/{path}/{_segment(external_id)}")
        if response.status_code == 404:
            return None
        _raise_for_status(response, "GET", f"{API}/{path}/<id>")
        item = _decode(response)
        return _provider_record(item) if object == "Provider" else _work_order_record(item)

    def write(self, object: str, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        """Provider: one PATCH per request (e.g. `DoNotDispatch`, `ComplianceNote`).
        WorkOrder: the fields other than `Note` in one PATCH (`ProviderId: None` un-assigns),
        then `Note` (if any) as a new note; PATCH first, so retrying after a failed note repeats
        only the idempotent PATCH. One result per request, in order; 4xx answers are not
        retryable, 429 / 5xx / connection failures are. Raises when not even the first record
        could be attempted (bad credentials, remote down, rate-limited)."""
        self._check_object(object)
        results: list[WriteResult] = []
        for index, req in enumerate(requests):
            if not req.external_id:
                results.append(WriteResult("", False, "no external id to write to"))
                continue
            try:
                if object == "Provider":
                    results.append(self._write_provider(req))
                else:
                    results.append(self._write_work_order(req))
            except ConfigurationError:
                raise
            except AdapterError as err:
                if not results:
                    raise
                # The remote stopped answering: the rest would fail alike; try them later.
                for rest in requests[index:]:
                    results.append(WriteResult(rest.external_id, False, str(err), err.retryable))
                break
        return results

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    # --- reading -----------------------------------------------------------------------------

    def _read_providers(self, since: str | None) -> Iterator[Page]:
        params: dict[str, Any] = {"limit": self.page_size}
        if since:
            params["updated_since"] = since
        cursor: str | None = None
        while True:
            query = dict(params, cursor=cursor) if cursor else params
            data = self._json("GET", f"{API}/providers", params=query)
            items = _items(data, "GET /v3/providers")
            next_cursor = data.get("next_cursor")
            if next_cursor is not None and not isinstance(next_cursor, str):
                raise AdapterError("GET /v3/providers answered a bad next_cursor")
            yield Page([_provider_record(item) for item in items], bookmark=next_cursor)
            if not next_cursor:
                return
            if next_cursor == cursor:
                raise AdapterError("GET /v3/providers repeated its cursor", retryable=False)
            cursor = next_cursor

    def _read_work_orders(self) -> Iterator[Page]:
        page = 1
        while True:
            data = self._json(
                "GET", f"{API}/workorders", params={"page": page, "page_size": self.page_size}
            )
            items = _items(data, "GET /v3/workorders")
            total_pages = data.get("total_pages")
            if not isinstance(total_pages, int) or isinstance(total_pages, bool):
                raise AdapterError("GET /v3/workorders answered no total_pages")
            yield Page([_work_order_record(item) for item in items], bookmark=str(page))
            if not items or page >= total_pages:
                return
            page += 1

    # --- writing -----------------------------------------------------------------------------

    def _write_provider(self, req: WriteRequest) -> WriteResult:
        if not req.fields:
            return WriteResult(req.external_id, True)
        path = f"{API}/providers/{_segment(req.external_id)}"
        response = self._request("PATCH", path, json=req.fields)
        return _result(req.external_id, response)

    def _write_work_order(self, req: WriteRequest) -> WriteResult:
        fields = dict(req.fields)
        note = fields.pop("Note", None)
        base = f"{API}/workorders/{_segment(req.external_id)}"
        if fields:
            result = _result(req.external_id, self._request("PATCH", base, json=fields))
            if not result.ok:
                return result
        if note is not None:
            response = self._request(
                "POST", f"{base}/notes", json={"Note": str(note)}, idempotent=False
            )
            return _result(req.external_id, response)
        return WriteResult(req.external_id, True)

    # --- HTTP --------------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        _raise_for_status(response, method, path)
        return _decode(response)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
    ) -> requests.Response:
        """One API call with a bearer token: refreshes the token once on 401, sleeps through
        429 `Retry-After` (bounded) and backs off after 5xx / connection failures. Returns the
        final response (2xx or 4xx); raises AdapterError when retries run out."""
        return self._send(
            method, self.base_url + path, path, params=params, json=json, idempotent=idempotent
        )

    def _send(
        self,
        method: str,
        url: str,
        label: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        idempotent: bool = True,
        authorized: bool = True,
    ) -> requests.Response:
        attempt = 0
        refreshed = False
        while True:
            headers = {"Accept": "application/json"}
            if authorized:
                headers["Authorization"] = f"Bearer {self._access_token()}"
            started = time.monotonic()
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    headers=headers,
                    timeout=self.timeout,
                    verify=self.verify,
                )
            except requests.RequestException as err:
                reason = type(err).__name__
                safe = idempotent or _never_sent(err)
                log.warning("dispatch %s %s failed: %s", method, label, reason)
                if not safe or attempt >= self.max_retries:
                    raise AdapterError(f"{method} {label}: {reason}", retryable=True) from None
                self._sleep(self._backoff(attempt))
                attempt += 1
                continue
            status = response.status_code
            elapsed = time.monotonic() - started
            log.debug("dispatch %s %s -> %s (%.3f s)", method, label, status, elapsed)
            if status == 401 and authorized:
                if refreshed:
                    raise AdapterError(
                        f"{method} {label}: a fresh access token was refused (401)",
                        retryable=False,
                    )
                refreshed = True
                self._token = None
                continue
            if status == 429:
                retry_after = _retry_after(response.headers.get("Retry-After"))
                if retry_after is not None and retry_after > self.max_retry_after:
                    raise RateLimited(
                        f"{method} {label}: rate limited for {retry_after:g} s",
                        retry_after=retry_after,
                    )
                if attempt >= self.max_retries:
                    raise RateLimited(
                        f"{method} {label}: still rate limited after {attempt} retries",
                        retry_after=retry_after,
                    )
                wait = retry_after if retry_after is not None else self._backoff(attempt)
                log.info("dispatch %s %s rate limited; waiting %.2f s", method, label, wait)
                self._sleep(wait)
                attempt += 1
                continue
            if status >= 500:
                if not (idempotent or status in _RETRY_ANY_METHOD) or attempt >= self.max_retries:
                    raise AdapterError(f"{method} {label}: HTTP {status}", retryable=True)
                self._sleep(self._backoff(attempt))
                attempt += 1
                continue
            return response

    def _backoff(self, attempt: int) -> float:
        delay = min(_MAX_BACKOFF, self.retry_base_seconds * 2**attempt)
        return delay * (0.5 + random.random() / 2)

    # --- OAuth 2.0 client credentials --------------------------------------------------------

    def _access_token(self) -> str:
        if self._token is None or self._clock() >= self._token_expires_at:
            self._fetch_token()
        assert self._token is not None
        return self._token

    def _fetch_token(self) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": secret(self.settings, "client_secret") or "",
        }
        if self.scope:
            form["scope"] = str(self.scope)
        response = self._send("POST", self.token_url, "token", data=form, authorized=False)
        if response.status_code in (400, 401, 403):
            code = _error_code(response)
            if response.status_code != 400 or code in _CLIENT_ERRORS:
                raise ConfigurationError(
                    f"the token endpoint refused client {self.client_id!r}"
                    f" (HTTP {response.status_code} {code or ''})".rstrip()
                )
        _raise_for_status(response, "POST", "token")
        body = _decode(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AdapterError("the token endpoint answered no access_token", retryable=False)
        lifetime = body.get("expires_in", 300)
        try:
            lifetime = max(0.0, float(lifetime))
        except (TypeError, ValueError):
            lifetime = 300.0
        # Refresh a little before expiry: 10 % of the lifetime, at most 30 s.
        self._token = token
        self._token_lifetime = lifetime
        self._token_expires_at = self._clock() + lifetime - min(30.0, lifetime * 0.1)
        log.info("dispatch: new access token for client %s (%g s)", self.client_id, lifetime)

    def _check_object(self, object: str) -> None:
        if object not in self.objects:
            raise ConfigurationError(
                f"dispatch has no object {object!r}; known: {', '.join(self.objects)}"
            )


# --- helpers ---------------------------------------------------------------------------------


def _number(settings: Mapping[str, Any], name: str, default, kind, *, low):
    value = settings.get(name, default)
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} must be a number") from None
    if isinstance(settings.get(name), bool) or value < low:
        raise ConfigurationError(f"{name} must be at least {low}")
    return value


def _segment(external_id: str) -> str:
    if not external_id:
        raise AdapterError("an empty external id cannot be addressed", retryable=False)
    return quote(str(external_id), safe="")


def _never_sent(err: requests.RequestException) -> bool:
    """The connection could not be opened, so the server cannot have acted on the request."""
    if isinstance(err, requests.ConnectTimeout):
        return True
    reason = getattr(err.args[0], "reason", None) if err.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _decode(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise AdapterError(
            f"HTTP {response.status_code} answer is not JSON", retryable=True
        ) from None


def _error_code(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    if isinstance(code, dict):  # {"error": {"code": ...}}
        code = code.get("code")
    return str(code)[:100] if code else None


def _raise_for_status(response: requests.Response, method: str, label: str) -> None:
    if response.status_code < 400:
        return
    code = _error_code(response)
    raise AdapterError(
        f"{method} {label}: HTTP {response.status_code}" + (f" {code}" if code else ""),
        retryable=False,
    )


def _items(data: Any, label: str) -> list[Any]:
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise AdapterError(f"{label} answered no item list")
    return data["items"]


def _result(external_id: str, response: requests.Response) -> WriteResult:
    if response.status_code < 400:
        return WriteResult(external_id, True)
    code = _error_code(response) or "error"
    if response.status_code == 404:
        return WriteResult(external_id, False, f"not found in the dispatch system ({code})")
    return WriteResult(external_id, False, f"HTTP {response.status_code} {code}")


def _provider_record(item: Any) -> RemoteRecord:
    """A provider; one without an Id keeps external_id "" (the sync rejects it with a reason);
    one that is not a JSON object comes as {"_raw": item}."""
    if not isinstance(item, dict):
        return RemoteRecord("", {"_raw": item})
    updated = item.get("UpdatedAt")
    return RemoteRecord(
        external_id=_id(item.get("Id")),
        data=item,
        watermark=updated if isinstance(updated, str) and updated else None,
        deleted=item.get("Status") == "Inactive",
    )


def _work_order_record(item: Any) -> RemoteRecord:
    if not isinstance(item, dict):
        return RemoteRecord("", {"_raw": item})
    return RemoteRecord(external_id=_id(item.get("Id")), data=item)


def _id(value: Any) -> str:
    if value is None or isinstance(value, bool | dict | list):
        return ""
    return str(value)
