"""Dynamics NAV / Business Central SOAP page web services (the Vendor page), through zeep.

A published page is a SOAP service at `.../WS/{Company}/Page/{Service name}` whose WSDL is served
at the same address. This adapter loads that WSDL once per instance and calls:

- `ReadMultiple(filter[], bookmarkKey, setSize)` for change reads, filtered on the page's
  modification date field when one is exposed, paging with the last record's `Key`;
- `Read(No)` for one vendor;
- `Read` then `Update` for each write (the record must carry its current `Key`; a stale `Key`
  is re-read and retried once).

Records are plain dicts in the page's own field names (`No`, `Name`, `E_Mail`, `Blocked`, ...)
including `Key`; dates are ISO strings. Authentication is HTTP Basic (on-premises NAV / BC with
NavUserPassword credentials). The password comes from `password_env` / `password_file` and is
never logged.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
import zeep
import zeep.exceptions
from requests.auth import HTTPBasicAuth
from zeep.helpers import serialize_object
from zeep.transports import Transport
from zeep.xsd.types import builtins as xsd_builtins

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

logger = logging.getLogger(__name__)

T = TypeVar("T")

BLOCKED_CLEAR = "_blank_"
BLOCKED_PAYMENT = "Payment"
BLOCKED_ALL = "All"
#: Values the connector may write into Blocked. It never writes `All`: blocking a vendor for
#: everything is a decision for people in the ERP, not for an insurance check.
WRITABLE_BLOCKED = (BLOCKED_CLEAR, BLOCKED_PAYMENT)
#: Fields the service tier maintains itself; a write must not try to set them.
SERVER_FIELDS = ("Key", "Last_Date_Modified", "Last_Modified_Date_Time")
#: The watermark of a full read still under way (the service tier's blank date): reading
#: "since" it reads everything.
FROM_START = "0001-01-01"

_STALE_KEY = "other user has modified"
#: Fault texts that mean "a lock or a busy service tier; the same write can succeed later".
_TRANSIENT_FAULTS = (
    "being updated in a transaction",
    "deadlock",
    "locked",
    "lock request time out",
    "try again",
    "is busy",
)
_WATERMARK = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$"
)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _SoapFault(Exception):
    """A SOAP fault answered by the service tier (business logic said no)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    @property
    def stale_key(self) -> bool:
        return _STALE_KEY in self.message.lower()

    @property
    def transient(self) -> bool:
        lowered = self.message.lower()
        return any(text in lowered for text in _TRANSIENT_FAULTS)


class BusinessCentralAdapter(Adapter):
    """Reads and writes vendors through a Business Central / NAV SOAP page web service.

    Settings (see docs/adapters/business_central.md): `base_url`, `company`, `page`,
    `username`, `password_env` | `password_file`, `page_size`, `modified_field`,
    `block_payment`, `timeout`, `retry_base_seconds`, `max_attempts`, `ca_bundle`.
    """

    kind = "business_central"
    objects = ("Vendor",)

    def __init__(self, settings: Mapping[str, Any]):
        super().__init__(settings)
        self.page_name = str(settings.get("page") or "Vendor")
        self.namespace = f"urn:microsoft-dynamics-schemas/page/{self.page_name.lower()}"
        self.address = _service_address(settings, self.page_name)
        self.username = str(settings.get("username") or "")
        if not self.username:
            raise ConfigurationError("username is required")
        self.page_size = _int_setting(settings, "page_size", 500, minimum=1)
        self.modified_field = settings.get("modified_field", "Last_Date_Modified") or None
        self.block_payment = _block_payment(settings)
        self.timeout = _float_setting(settings, "timeout", 30.0)
        self.retry_base_seconds = _float_setting(settings, "retry_base_seconds", 1.0)
        self.max_attempts = _int_setting(settings, "max_attempts", 4, minimum=1)
        self.max_retry_wait = _float_setting(settings, "max_retry_wait_seconds", 60.0)
        self._session: requests.Session | None = None
        self._client: zeep.Client | None = None
        self._service: Any = None
        self._fields: tuple[str, ...] = ()
        self._date_fields: frozenset[str] = frozenset()
        self._last_status = 0
        self._last_retry_after: float | None = None

    # -- connection -------------------------------------------------------------------------

    def _connect(self) -> Any:
        if self._service is not None:
            return self._service
        password = secret(self.settings, "password")
        session = requests.Session()
        session.auth = HTTPBasicAuth(self.username, password)
        if self.settings.get("ca_bundle"):
            session.verify = str(self.settings["ca_bundle"])
        session.hooks["response"].append(self._remember_response)
        transport = Transport(session=session, timeout=self.timeout, operation_timeout=self.timeout)
        self._session = session
        try:
            client = self._retrying(
                "load WSDL", lambda: zeep.Client(self.address, transport=transport)
            )
            binding = self._binding_name(client)
            self._fields, self._date_fields = self._page_fields(client)
        except (AdapterError, _SoapFault) as err:
            session.close()
            self._session = None
            if isinstance(err, _SoapFault):
                raise ConfigurationError(f"loading the WSDL failed: {err.message}") from None
            raise
        self._client = client
        self._service = client.create_service(binding, self.address)
        if self.modified_field and self.modified_field not in self._fields:
            logger.info(
                "page %s does not expose %s; every read of it is a full read",
                self.page_name,
                self.modified_field,
            )
        return self._service

    def _binding_name(self, client: zeep.Client) -> str:
        wanted = f"{{{self.namespace}}}{self.page_name}_Binding"
        bindings = list(client.wsdl.bindings)
        if wanted in bindings:
            return wanted
        matching = [name for name in bindings if name.endswith(f"}}{self.page_name}_Binding")]
        if matching:
            return matching[0]
        raise ConfigurationError(
            f"the WSDL at {self.address} does not describe page {self.page_name} "
            f"(bindings: {', '.join(bindings) or 'none'})"
        )

    def _page_fields(self, client: zeep.Client) -> tuple[tuple[str, ...], frozenset[str]]:
        """The page's field names, and those typed xsd:date."""
        try:
            page_type = client.get_type(f"{{{self.namespace}}}{self.page_name}")
        except (zeep.exceptions.LookupError, ValueError):
            raise ConfigurationError(
                f"the WSDL at {self.address} has no {self.page_name} record type"
            ) from None
        elements = page_type.elements
        dates = frozenset(name for name, el in elements if isinstance(el.type, xsd_builtins.Date))
        return tuple(name for name, _ in elements), dates

    def _remember_response(self, response: requests.Response, *args, **kwargs) -> None:
        self._last_status = response.status_code
        header = response.headers.get("Retry-After")
        try:
            self._last_retry_after = float(header) if header is not None else None
        except ValueError:
            self._last_retry_after = None

    @property
    def incremental(self) -> bool:
        """Whether change reads can filter on `modified_field` (known once connected)."""
        self._connect()
        return bool(self.modified_field) and self.modified_field in self._fields

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session = self._client = self._service = None

    # -- calls, errors and retries ----------------------------------------------------------

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        """Run one remote call; transport failures, 5xx and 429 are retried with exponential
        backoff (honouring Retry-After), then raised as retryable AdapterError / RateLimited.
        SOAP faults come back as _SoapFault for the caller to judge."""
        attempt = 0
        while True:
            attempt += 1
            self._last_status, self._last_retry_after = 0, None
            try:
                return call()
            except zeep.exceptions.Fault as fault:
                status = self._last_status
                if status >= 500 and fault.message == "Unknown fault occured":
                    error = self._http_error(what, status)  # an XML error page, not a fault
                else:
                    raise _SoapFault(str(fault.message or "SOAP fault")) from None
            except zeep.exceptions.TransportError as err:
                error = self._http_error(what, err.status_code or self._last_status)
            except requests.HTTPError as err:
                status = err.response.status_code if err.response is not None else 0
                error = self._http_error(what, status)
            except requests.RequestException as err:
                error = AdapterError(
                    f"Business Central at {self.address} did not answer ({what}): "
                    f"{type(err).__name__}"
                )
            except zeep.exceptions.ValidationError as err:
                # zeep would not build the request from these values (a mapping mistake)
                raise _SoapFault(f"invalid request: {err}") from None
            except (zeep.exceptions.XMLSyntaxError, zeep.exceptions.XMLParseError) as err:
                raise ConfigurationError(
                    f"{self.address} did not answer with a page web service WSDL/SOAP "
                    f"document ({what}): {err}"
                ) from None
            if not error.retryable or attempt >= self.max_attempts:
                raise error
            wait = min(self.retry_base_seconds * 2 ** (attempt - 1), self.max_retry_wait)
            if error.retry_after is not None:
                wait = min(max(wait, error.retry_after), self.max_retry_wait)
            logger.warning(
                "Business Central %s failed (%s); retry %d/%d in %.2fs",
                what,
                error,
                attempt,
                self.max_attempts - 1,
                wait,
            )
            time.sleep(wait)

    def _http_error(self, what: str, status: int) -> AdapterError:
        where = f"Business Central at {self.address}"
        if status == 401:
            return ConfigurationError(
                f"{where} rejected the credentials of user {self.username!r} (HTTP 401)"
            )
        if status == 403:
            return ConfigurationError(
                f"{where} refused user {self.username!r} (HTTP 403): check the user's "
                "permissions and that the web service is published"
            )
        if status == 404:
            return ConfigurationError(
                f"{where} has no such page web service (HTTP 404): check base_url, company and "
                "page, and that the page is published"
            )
        if status == 429:
            return RateLimited(
                f"{where} asked us to slow down ({what}, HTTP 429)",
                retry_after=self._last_retry_after,
            )
        retryable = status >= 500 or status in (0, 408)
        return AdapterError(
            f"{where} failed ({what}, HTTP {status or 'error'})",
            retryable=retryable,
            retry_after=self._last_retry_after,
        )

    def _operation(self, name: str, **kwargs: Any) -> Any:
        service = self._connect()
        return self._retrying(name, lambda: getattr(service, name)(**kwargs))

    # -- Adapter ----------------------------------------------------------------------------

    def test(self) -> dict[str, Any]:
        try:
            self._operation("ReadMultiple", filter=zeep.xsd.SkipValue, setSize=1)
        except _SoapFault as fault:
            raise AdapterError(
                f"Business Central refused ReadMultiple: {fault.message}", retryable=False
            ) from None
        return {
            "address": self.address,
            "page": self.page_name,
            "namespace": self.namespace,
            "user": self.username,
            "incremental": self.incremental,
            "modified_field": self.modified_field if self.incremental else None,
            "fields": list(self._fields),
        }

    def read_changes(self, object: str, since: str | None) -> Iterator[Page]:
        """Pages of vendors in `No` order (the only order a page service reads in), then, when
        the page exposes `modified_field`, one empty page whose bookmark is the new watermark.

        Because records do not arrive in change order, no page before the end may advance the
        watermark: every earlier page carries the watermark the read started from (`since`, or
        FROM_START for a full read), so a read stopped half way is simply repeated."""
        self._check_object(object)
        incremental = self.incremental
        filters: Any = zeep.xsd.SkipValue
        resume: str | None = None
        if incremental:
            resume = FROM_START
            if since and since.strip() != FROM_START:
                by_date = self.modified_field in self._date_fields
                criteria = _after(since, by_date)
                filters = [{"Field": self.modified_field, "Criteria": criteria}]
                resume = criteria.lstrip("<>=")
        highest = resume if resume != FROM_START else None
        bookmark: str | None = None
        while True:
            try:
                batch = self._operation(
                    "ReadMultiple", filter=filters, bookmarkKey=bookmark, setSize=self.page_size
                )
            except _SoapFault as fault:
                raise AdapterError(
                    f"Business Central refused ReadMultiple on {self.page_name}: {fault.message}",
                    retryable=fault.transient,
                ) from None
            items = _items(batch, self.page_name)
            if not items:
                break
            records = []
            for item in items:
                record = self._record(item)
                if record is None:
                    continue
                records.append(record)
                if record.watermark and (highest is None or record.watermark > highest):
                    highest = record.watermark
            yield Page(records=records, bookmark=resume)
            bookmark = getattr(items[-1], "Key", None)
            if not bookmark:
                raise AdapterError(
                    f"page {self.page_name} answered a record without a Key; cannot page on",
                    retryable=False,
                )
        if incremental and highest and highest != resume:
            yield Page(records=[], bookmark=highest)

    def read_one(self, object: str, external_id: str) -> RemoteRecord | None:
        self._check_object(object)
        item = self._read(external_id)
        return None if item is None else self._record(item)

    def write(self, object: str, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        self._check_object(object)
        self._connect()
        results: list[WriteResult] = []
        for index, request in enumerate(requests):
            try:
                results.append(self._write_one(request))
            except AdapterError as err:
                if not results:
                    raise  # nothing could be attempted: the service is down or refuses us
                for rest in requests[index:]:
                    note = "" if rest is request else "not attempted: "
                    results.append(
                        WriteResult(rest.external_id, False, f"{note}{err}", err.retryable)
                    )
                break
        return results

    # -- helpers ----------------------------------------------------------------------------

    def _check_object(self, object: str) -> None:
        if object not in self.objects:
            raise ConfigurationError(f"{self.kind} adapter has no object {object!r}")

    def _read(self, no: str) -> Any:
        try:
            return self._operation("Read", No=no)
        except _SoapFault as fault:
            raise AdapterError(
                f"Business Central refused Read of {self.page_name} {no}: {fault.message}",
                retryable=fault.transient,
            ) from None

    def _record(self, item: Any) -> RemoteRecord | None:
        data = {key: _plain(value) for key, value in serialize_object(item, dict).items()}
        no = data.get("No")
        if not no:
            logger.warning(
                "page %s answered a record without No (Key %s); skipped",
                self.page_name,
                data.get("Key"),
            )
            return None
        watermark = data.get(self.modified_field) if self.modified_field else None
        if watermark == "0001-01-01":  # the service tier's blank date
            watermark = None
        return RemoteRecord(
            external_id=str(no),
            data=data,
            watermark=watermark,
            deleted=data.get("Blocked") == BLOCKED_ALL,
        )

    def _write_one(self, request: WriteRequest) -> WriteResult:
        no = request.external_id
        fields = dict(request.fields)
        refusal = self._refuse(no, fields)
        if refusal:
            return WriteResult(no, False, refusal, retryable=False)
        for attempt in (1, 2):
            current = self._read(no)
            if current is None:
                return WriteResult(no, False, f"{self.page_name} {no} does not exist", False)
            have = {key: _plain(value) for key, value in serialize_object(current, dict).items()}
            change = dict(fields)
            if "Blocked" in change and have.get("Blocked") == BLOCKED_ALL:
                # Someone in the ERP blocked this vendor for everything; never weaken that.
                del change["Blocked"]
                logger.info("%s %s is blocked for All; Blocked left unchanged", self.page_name, no)
            change = {k: v for k, v in change.items() if not _same(have.get(k), v)}
            if not change:
                return WriteResult(no, True)  # already as asked: no Update, no new Key
            try:
                self._operation("Update", **{self.page_name: {"Key": have["Key"], **change}})
            except _SoapFault as fault:
                if fault.stale_key and attempt == 1:
                    logger.info("%s %s changed under us; re-reading once", self.page_name, no)
                    continue
                # A vendor still being edited by someone else can be written later.
                retryable = fault.transient or fault.stale_key
                return WriteResult(no, False, fault.message, retryable=retryable)
            return WriteResult(no, True)
        raise AssertionError("unreachable")  # pragma: no cover

    def _refuse(self, no: str, fields: dict[str, Any]) -> str | None:
        """Why a write must not be sent at all (a mapping or configuration mistake), or None."""
        unknown = [name for name in fields if name not in self._fields]
        if unknown:
            return f"page {self.page_name} has no field(s) {', '.join(sorted(unknown))}"
        fixed = [name for name in fields if name in SERVER_FIELDS]
        if fixed:
            return f"field(s) {', '.join(fixed)} are maintained by Business Central"
        if "No" in fields and fields["No"] != no:
            return "renaming a vendor (changing No) is not supported"
        if "Blocked" in fields:
            value = fields["Blocked"]
            if value in (None, "", " "):
                fields["Blocked"] = value = BLOCKED_CLEAR
            if not self.block_payment:
                return "writing Blocked needs the connection setting block_payment: true"
            if value not in WRITABLE_BLOCKED:
                return (
                    f"Blocked may only be set to {' or '.join(WRITABLE_BLOCKED)} "
                    f"by the connector, not {value!r}"
                )
        return None


# -- settings and values --------------------------------------------------------------------


def _service_address(settings: Mapping[str, Any], page: str) -> str:
    """`base_url` is `.../WS/{Company}/Page/` (or contains `{company}`, or ends at `.../WS/`
    with `company` given); the page's service name is appended."""
    base = str(settings.get("base_url") or "").strip()
    if not base:
        raise ConfigurationError("base_url is required")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError("base_url must be an http(s) URL")
    if parts.username or parts.password:
        raise ConfigurationError(
            "base_url must not carry credentials; use username and password_env / password_file"
        )
    company = settings.get("company")
    if "{company}" in base:
        if not company:
            raise ConfigurationError("company is required when base_url contains {company}")
        base = base.replace("{company}", quote(str(company), safe=""))
    base = base.rstrip("/")
    if base.endswith("/WS"):
        if not company:
            raise ConfigurationError("company is required when base_url ends at /WS/")
        base = f"{base}/{quote(str(company), safe='')}/Page"
    elif not base.endswith("/Page"):
        raise ConfigurationError(
            "base_url must look like https://host:port/Instance/WS/Company/Page/"
        )
    return f"{base}/{quote(page, safe='')}"


def _int_setting(settings: Mapping[str, Any], name: str, default: int, *, minimum: int) -> int:
    try:
        value = int(settings.get(name, default))
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} must be an integer") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}")
    return value


def _block_payment(settings: Mapping[str, Any]) -> bool:
    """`block_payment` (or `block_payments`, the name the outbox reads): may writes set
    Blocked? Both may be given only with the same value."""
    given = {
        name: _bool_setting(settings, name, False)
        for name in ("block_payment", "block_payments")
        if name in settings
    }
    if len(set(given.values())) > 1:
        raise ConfigurationError("block_payment and block_payments disagree")
    return any(given.values())


def _float_setting(settings: Mapping[str, Any], name: str, default: float) -> float:
    try:
        value = float(settings.get(name, default))
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} must be a number") from None
    if value < 0:
        raise ConfigurationError(f"{name} must not be negative")
    return value


def _bool_setting(settings: Mapping[str, Any], name: str, default: bool) -> bool:
    value = settings.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.lower() in ("true", "yes", "1")
    raise ConfigurationError(f"{name} must be true or false")


def _after(since: str, by_date: bool) -> str:
    """The filter criteria for "changed since the watermark". A date field (Last_Date_Modified)
    is compared with >= on the watermark's date: records changed later on the watermark's own
    day carry the same date and would otherwise be missed; re-reading that day is harmless."""
    since = since.strip()
    if not _WATERMARK.match(since):
        raise ConfigurationError(f"watermark {since!r} is not an ISO date or date-time")
    if by_date or _DATE_ONLY.match(since):
        return f">={since[:10]}"
    return f">{since}"


def _items(batch: Any, page: str) -> list[Any]:
    """The records of a ReadMultiple answer (zeep unwraps the list; tolerate the wrapper)."""
    if batch is None:
        return []
    if isinstance(batch, list):
        return batch
    inner = getattr(batch, page, None)
    return list(inner or [])


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # amounts stay exact; never a float
    return value


def _same(have: Any, want: Any) -> bool:
    if have is None:
        have = ""
    if want is None:
        want = ""
    return str(_plain(have)) == str(_plain(want))
