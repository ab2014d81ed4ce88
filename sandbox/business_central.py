"""A stand-in for a Dynamics NAV / Business Central SOAP page web service (the Vendor page).

It speaks the wire format of a published page: the WSDL is served at the service address
(`GET .../WS/{Company}/Page/Vendor` or `...?wsdl`) with target namespace
`urn:microsoft-dynamics-schemas/page/vendor`, and SOAP 1.1 document/literal calls are answered
on the same address: `Read(No)`, `ReadMultiple(filter[], bookmarkKey, setSize)`,
`Create(Vendor)`, `Update(Vendor)` and `Delete(Key)`.

What it reproduces because clients depend on it:
- every record carries a `Key` that changes on every write; `Update` with a stale `Key` is a
  SOAP fault "Other user has modified ..." and changes nothing;
- `ReadMultiple` returns records ordered by `No`, after the record named by `bookmarkKey`, at
  most `setSize` of them (0 = all); an empty answer ends a read;
- filter criteria use the page filter syntax: `V10010`, `>2026-11-01`, `>=x`, `<x`, `<=x`, `<>x`,
  `a..b`, alternatives `a|b`, `*` wildcards, `@` for case-insensitive, `''` for blank;
- HTTP Basic authentication on every request (401 otherwise), SOAP faults with HTTP 500.

Test controls: `seed_vendors`, `corrupt`, `faults` (503 bursts, slow answers, SOAP faults; also
`POST /__sandbox/faults`), `calls` (a Counter of operations served).

Requests are parsed with xml.etree after refusing any DOCTYPE or entity declaration; this is a
local stand-in, not a hardened server.
"""

from __future__ import annotations

import base64
import bisect
import fnmatch
import hmac
import random
import re
import threading
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from flask import Flask, Response, has_request_context, request

from sandbox.faults import Faults
from sandbox.server import Peer

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
BLOCKED_OPTIONS = ("_blank_", "Payment", "All")
MAX_REQUEST_BYTES = 1024 * 1024

#: The Vendor page's fields as published (name, XSD type). `Key` comes first and is not a
#: filterable field.
VENDOR_FIELDS: tuple[tuple[str, str], ...] = (
    ("No", "xsd:string"),
    ("Name", "xsd:string"),
    ("Address", "xsd:string"),
    ("Address_2", "xsd:string"),
    ("City", "xsd:string"),
    ("Post_Code", "xsd:string"),
    ("County", "xsd:string"),
    ("Country_Region_Code", "xsd:string"),
    ("Phone_No", "xsd:string"),
    ("E_Mail", "xsd:string"),
    ("VAT_Registration_No", "xsd:string"),
    ("Blocked", "tns:Blocked"),
    ("Last_Date_Modified", "xsd:date"),
)
READ_ONLY_FIELDS = ("No", "Last_Date_Modified")
_EMAIL = re.compile(r"^[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


class SoapFault(Exception):
    """Answered as a SOAP 1.1 Fault with HTTP 500, the way the NAV service tier does."""

    def __init__(self, message: str, code: str = "Microsoft.Dynamics.Nav.Types.NavException"):
        super().__init__(message)
        self.message = message
        self.code = code


class BusinessCentralSandbox(Peer):
    """One company's page web service on a real socket. `start()` returns self."""

    def __init__(
        self,
        company: str = "CRONUS",
        page: str = "Vendor",
        *,
        username: str = "WEBUSER",
        password: str = "Sandbox-Pa55word!",
        expose_modified: bool = True,
        today: date | None = None,
    ):
        self.company = company
        self.page = page
        self.namespace = f"urn:microsoft-dynamics-schemas/page/{page.lower()}"
        self.username = username
        self.password = password
        #: Whether the page exposes `Last_Date_Modified` (not every customised page does).
        self.fields = tuple(
            (name, kind)
            for name, kind in VENDOR_FIELDS
            if expose_modified or name != "Last_Date_Modified"
        )
        self.field_names = tuple(name for name, _ in self.fields)
        #: The service tier's "today" (stamped into Last_Date_Modified on writes).
        self.today = today
        self.faults = Faults()
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, str]] = {}
        self._order: list[str] = []
        self._versions: dict[str, int] = {}
        self._hidden: dict[str, set[str]] = {}
        self._clock = 4_000_000
        self.app = self._make_app()

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`.../WS/{Company}/Page/` — what a connection's `base_url` setting holds."""
        return f"{self.root_url}/WS/{quote(self.company, safe='')}/Page/"

    @property
    def url(self) -> str:
        """The service address `.../WS/{Company}/Page/{Page}`."""
        return self.base_url + quote(self.page, safe="")

    @property
    def wsdl_url(self) -> str:
        return self.url + "?wsdl"

    def reset(self) -> None:
        """Forget every record, counted call and armed fault (the server keeps running)."""
        with self._lock:
            self._records.clear()
            self._order.clear()
            self._versions.clear()
            self._hidden.clear()
        self.faults.reset()
        self.faults.requests = 0
        self.calls.clear()

    # -- data -------------------------------------------------------------------------------

    def current_date(self) -> date:
        return self.today or date.today()

    def seed_vendors(self, n: int, seed: int = 0) -> list[str]:
        """Add `n` realistic vendors numbered V10000, V10010, ... after any already there;
        Last_Date_Modified is spread over the year before `today`. Returns their numbers."""
        rng = random.Random(seed)
        numbers = []
        with self._lock:
            start = len(self._records)
            for i in range(start, start + n):
                no = f"V{10000 + 10 * i}"
                record = _fake_vendor(rng, no, self.current_date())
                self._store(no, {k: v for k, v in record.items() if k in self.field_names})
                numbers.append(no)
        return numbers

    def vendor(self, no: str) -> dict[str, str] | None:
        """The stored record (with its current Key), or None."""
        with self._lock:
            if no not in self._records:
                return None
            return {"Key": self._key(no), **self._records[no]}

    def set_fields(self, no: str, **fields: str) -> str:
        """Change a record as another BC user would (new Key, today's date); returns the Key."""
        with self._lock:
            self._require(no)
            self._records[no].update(fields)
            self._touch(no)
            return self._key(no)

    def corrupt(self, no: str, kind: str = "date") -> None:
        """Make one record malformed on the wire: `date` (Last_Date_Modified not a date),
        `blocked` (a Blocked value outside the option list) or `no` (the No element missing)."""
        with self._lock:
            self._require(no)
            if kind == "date":
                self._records[no]["Last_Date_Modified"] = "31.02.20XX"
            elif kind == "blocked":
                self._records[no]["Blocked"] = "Sometimes"
            elif kind == "no":
                self._hidden.setdefault(no, set()).add("No")
            else:
                raise ValueError(f"unknown corruption {kind!r}")

    def soap_fault(self, count: int, message: str = "The service tier is busy.") -> None:
        """The next `count` requests answer a SOAP fault (HTTP 500) with this message."""
        self.faults.fail(count, status=500, body={"faultstring": message})

    def _require(self, no: str) -> None:
        if no not in self._records:
            raise KeyError(no)

    def _store(self, no: str, record: dict[str, str]) -> None:
        if no not in self._records:
            bisect.insort(self._order, no)
        self._records[no] = {"No": no, **{k: v for k, v in record.items() if k != "No"}}
        self._clock += 1
        self._versions[no] = self._clock

    def _touch(self, no: str) -> None:
        self._clock += 1
        self._versions[no] = self._clock
        if "Last_Date_Modified" in self.field_names:
            self._records[no]["Last_Date_Modified"] = self.current_date().isoformat()

    def _key(self, no: str) -> str:
        encoded = base64.b64encode(no.encode("utf-16-le")).decode("ascii")
        return f"{len(no) * 2 + 6};{encoded};{self._versions[no]};"

    @staticmethod
    def _parse_key(key: str) -> tuple[str, int] | None:
        parts = key.split(";")
        if len(parts) != 4 or parts[3] != "":
            return None
        try:
            no = base64.b64decode(parts[1], validate=True).decode("utf-16-le")
            return no, int(parts[2])
        except (ValueError, UnicodeDecodeError):
            return None

    # -- HTTP -------------------------------------------------------------------------------

    def _make_app(self) -> Flask:
        app = Flask(f"bc-sandbox-{self.page}")
        app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES

        @app.post("/__sandbox/faults")
        def arm_faults():
            spec = request.get_json(silent=True) or {}
            if spec.get("reset"):
                self.faults.reset()
            if spec.get("soap_fault"):
                self.soap_fault(int(spec["soap_fault"]), str(spec.get("message", "Busy")))
            self.faults.arm(spec)
            return {"armed": True}

        @app.route("/WS/<company>/Page/<page>", methods=["GET", "POST"])
        def service(company: str, page: str):
            fault = self.faults.next_error()
            if fault is not None:
                return self._fault_response(fault.status, fault.retry_after, fault.body)
            if not self._authorized():
                return Response(
                    "Unauthorized",
                    status=401,
                    headers={"WWW-Authenticate": 'Basic realm=""'},
                    mimetype="text/plain",
                )
            if company != self.company or page != self.page:
                return Response("Not Found", status=404, mimetype="text/plain")
            if request.method == "GET":
                self.calls["wsdl"] += 1
                return Response(self.wsdl(), content_type="text/xml; charset=utf-8")
            return self._soap()

        return app

    def _authorized(self) -> bool:
        auth = request.authorization
        return (
            auth is not None
            and auth.type == "basic"
            and hmac.compare_digest((auth.username or "").encode(), self.username.encode())
            and hmac.compare_digest((auth.password or "").encode(), self.password.encode())
        )

    def _fault_response(self, status: int, retry_after, body) -> Response:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if body and "faultstring" in body:
            return _soap_fault_response(SoapFault(str(body["faultstring"])), status, headers)
        text = "Service Unavailable" if status == 503 else f"HTTP {status}"
        return Response(text, status=status, headers=headers, mimetype="text/html")

    def _soap(self) -> Response:
        raw = request.get_data(cache=False)
        try:
            operation = _parse_envelope(raw)
            if operation.tag.partition("}")[0].lstrip("{") != self.namespace:
                raise SoapFault(
                    f"Namespace of '{_local(operation.tag)}' is not {self.namespace}",
                    "Microsoft.Dynamics.Nav.Service.WebServices.ServiceBrokerException",
                )
            name = _local(operation.tag)
            handler = self._operations().get(name)
            if handler is None:
                raise SoapFault(
                    f"Operation {name} is not supported by page {self.page}",
                    "Microsoft.Dynamics.Nav.Service.WebServices.ServiceBrokerException",
                )
            with self._lock:
                self.calls[name] += 1
                body = handler(operation)
        except SoapFault as fault:
            return _soap_fault_response(fault, 500, {})
        envelope = (
            f'<Soap:Envelope xmlns:Soap="{SOAP_ENV}"><Soap:Body>{body}</Soap:Body></Soap:Envelope>'
        )
        return Response(envelope, content_type="text/xml; charset=utf-8")

    def _operations(self) -> dict[str, Callable[[ET.Element], str]]:
        return {
            "Read": self._op_read,
            "ReadMultiple": self._op_read_multiple,
            "Create": self._op_create,
            "Update": self._op_update,
            "Delete": self._op_delete,
        }

    # -- operations (called with the lock held) --------------------------------------------

    def _op_read(self, operation: ET.Element) -> str:
        no = _child_text(operation, "No") or ""
        inner = self._render(no) if no in self._records else ""
        return self._element("Read_Result", inner)

    def _op_read_multiple(self, operation: ET.Element) -> str:
        filters = []
        for element in _children(operation, "filter"):
            field = _child_text(element, "Field") or ""
            criteria = _child_text(element, "Criteria") or ""
            if field not in self.field_names:
                raise SoapFault(f"The field '{field}' is not a field of page {self.page}.")
            filters.append((field, _compile_criteria(field, criteria, self._field_kind(field))))
        try:
            set_size = int(_child_text(operation, "setSize") or "0")
        except ValueError:
            raise SoapFault("setSize must be an integer.") from None
        bookmark = _child_text(operation, "bookmarkKey")
        order = self._order if set_size >= 0 else list(reversed(self._order))
        start = 0
        if bookmark:
            parsed = self._parse_key(bookmark)
            if parsed is None:
                raise SoapFault(f"The bookmark key '{bookmark}' is not valid.")
            no = parsed[0]
            if set_size >= 0:
                start = bisect.bisect_right(self._order, no)
            else:
                start = len(self._order) - bisect.bisect_left(self._order, no)
        limit = abs(set_size) or len(order)
        chosen = []
        for no in order[start:]:
            record = self._records[no]
            if all(match(record.get(field, "")) for field, match in filters):
                chosen.append(no)
                if len(chosen) >= limit:
                    break
        if not chosen:
            return self._element("ReadMultiple_Result", "")
        rows = "".join(self._render(no) for no in chosen)
        return self._element(
            "ReadMultiple_Result", f"<ReadMultiple_Result>{rows}</ReadMultiple_Result>"
        )

    def _op_create(self, operation: ET.Element) -> str:
        values = self._record_values(operation)
        values.pop("Key", None)
        no = values.get("No") or self._next_no()
        if no in self._records:
            raise SoapFault(
                f"The {self.page} already exists. Identification fields and values: No.='{no}'"
            )
        self._validate(values)
        record = dict.fromkeys(self.field_names, "")
        record["Blocked"] = "_blank_"
        record.update(values)
        record["No"] = no
        self._store(no, record)
        self._touch(no)
        return self._element("Create_Result", self._render(no))

    def _op_update(self, operation: ET.Element) -> str:
        values = self._record_values(operation)
        no = self._check_key(values.pop("Key", None))
        current = self._records[no]
        for name in READ_ONLY_FIELDS:
            if name in values and values[name] != current.get(name, ""):
                raise SoapFault(
                    f"You cannot change the {name} field on page {self.page}: it is not editable."
                )
        self._validate(values)
        current.update({k: v for k, v in values.items() if k not in READ_ONLY_FIELDS})
        self._touch(no)
        return self._element("Update_Result", self._render(no))

    def _op_delete(self, operation: ET.Element) -> str:
        no = self._check_key(_child_text(operation, "Key"))
        del self._records[no]
        del self._versions[no]
        self._hidden.pop(no, None)
        self._order.remove(no)
        return self._element("Delete_Result", "<Delete_Result>true</Delete_Result>")

    def _check_key(self, key: str | None) -> str:
        if not key:
            raise SoapFault(f"The Key field must be given to change a {self.page}.")
        parsed = self._parse_key(key)
        if parsed is None:
            raise SoapFault(f"The key '{key}' is not valid.")
        no, version = parsed
        if no not in self._records:
            raise SoapFault(
                f"The {self.page} does not exist. Identification fields and values: No.='{no}'"
            )
        if self._versions[no] != version:
            raise SoapFault(
                f"Other user has modified {self.page} No.='{no}' so the change could not be saved."
            )
        return no

    def _record_values(self, operation: ET.Element) -> dict[str, str]:
        record = next(_children(operation, self.page), None)
        if record is None:
            raise SoapFault(f"The {self.page} element is missing.")
        values: dict[str, str] = {}
        for child in record:
            name = _local(child.tag)
            if name != "Key" and name not in self.field_names:
                raise SoapFault(f"'{name}' is not a field of page {self.page}.")
            values[name] = child.text or ""
        return values

    def _validate(self, values: dict[str, str]) -> None:
        blocked = values.get("Blocked")
        if blocked is not None and blocked not in BLOCKED_OPTIONS:
            raise SoapFault(
                f"Instance validation error: '{blocked}' is not a valid value for Blocked."
            )
        email = values.get("E_Mail")
        if email and not _EMAIL.match(email):
            raise SoapFault(f'The email address "{email}" is not valid.')

    def _next_no(self) -> str:
        return f"V{10000 + 10 * len(self._records)}"

    def _field_kind(self, field: str) -> str:
        return dict(self.fields)[field]

    def _render(self, no: str) -> str:
        record = self._records[no]
        hidden = self._hidden.get(no, ())
        parts = [f"<Key>{escape(self._key(no))}</Key>"]
        for name in self.field_names:
            value = record.get(name)
            if name in hidden or value is None:
                continue
            if value == "" and self._field_kind(name) == "xsd:date":
                value = "0001-01-01"  # how the service tier writes a blank date
            parts.append(f"<{name}>{escape(_XML_INVALID.sub('', value))}</{name}>")
        return f"<{self.page}>{''.join(parts)}</{self.page}>"

    def _element(self, name: str, inner: str) -> str:
        return f"<{name} xmlns={quoteattr(self.namespace)}>{inner}</{name}>"

    # -- WSDL -------------------------------------------------------------------------------

    def wsdl(self, address: str | None = None) -> str:
        """The WSDL in the shape the service tier publishes for a page."""
        page, ns = self.page, self.namespace
        location = address or (request.base_url if has_request_context() else self.url)
        field_elements = "".join(
            f'<xsd:element minOccurs="0" maxOccurs="1" name="{name}" type="{kind}"/>'
            for name, kind in self.fields
        )
        field_enum = "".join(f'<xsd:enumeration value="{name}"/>' for name in self.field_names)
        blocked_enum = "".join(f'<xsd:enumeration value="{value}"/>' for value in BLOCKED_OPTIONS)
        operations = [
            (
                "Read",
                '<xsd:element minOccurs="1" maxOccurs="1" name="No" type="xsd:string"/>',
                f'<xsd:element minOccurs="0" maxOccurs="1" name="{page}" type="tns:{page}"/>',
            ),
            (
                "ReadMultiple",
                f'<xsd:element minOccurs="1" maxOccurs="unbounded" name="filter" '
                f'type="tns:{page}_Filter"/>'
                '<xsd:element minOccurs="0" maxOccurs="1" name="bookmarkKey" type="xsd:string"/>'
                '<xsd:element minOccurs="1" maxOccurs="1" name="setSize" type="xsd:int"/>',
                '<xsd:element minOccurs="0" maxOccurs="1" name="ReadMultiple_Result" '
                f'type="tns:{page}_List"/>',
            ),
            (
                "Create",
                f'<xsd:element minOccurs="1" maxOccurs="1" name="{page}" type="tns:{page}"/>',
                f'<xsd:element minOccurs="1" maxOccurs="1" name="{page}" type="tns:{page}"/>',
            ),
            (
                "Update",
                f'<xsd:element minOccurs="1" maxOccurs="1" name="{page}" type="tns:{page}"/>',
                f'<xsd:element minOccurs="1" maxOccurs="1" name="{page}" type="tns:{page}"/>',
            ),
            (
                "Delete",
                '<xsd:element minOccurs="1" maxOccurs="1" name="Key" type="xsd:string"/>',
                '<xsd:element minOccurs="1" maxOccurs="1" name="Delete_Result" '
                'type="xsd:boolean"/>',
            ),
        ]
        elements = "".join(
            f'<xsd:element name="{op}"><xsd:complexType><xsd:sequence>{request_part}'
            f"</xsd:sequence></xsd:complexType></xsd:element>"
            f'<xsd:element name="{op}_Result"><xsd:complexType><xsd:sequence>{result_part}'
            f"</xsd:sequence></xsd:complexType></xsd:element>"
            for op, request_part, result_part in operations
        )
        messages = "".join(
            f'<message name="{name}"><part name="parameters" element="tns:{name}"/></message>'
            for op, _, _ in operations
            for name in (op, f"{op}_Result")
        )
        port_ops = "".join(
            f'<operation name="{op}"><input name="{op}" message="tns:{op}"/>'
            f'<output name="{op}_Result" message="tns:{op}_Result"/></operation>'
            for op, _, _ in operations
        )
        binding_ops = "".join(
            f'<operation name="{op}">'
            f'<operation soapAction="{ns}:{op}" style="document" '
            'xmlns="http://schemas.xmlsoap.org/wsdl/soap/"/>'
            f'<input name="{op}"><body use="literal" '
            'xmlns="http://schemas.xmlsoap.org/wsdl/soap/"/></input>'
            f'<output name="{op}_Result"><body use="literal" '
            'xmlns="http://schemas.xmlsoap.org/wsdl/soap/"/></output></operation>'
            for op, _, _ in operations
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" targetNamespace="{ns}" '
            f'xmlns:tns="{ns}">'
            "<types>"
            f'<xsd:schema elementFormDefault="qualified" targetNamespace="{ns}" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
            f'<xsd:simpleType name="Blocked"><xsd:restriction base="xsd:string">{blocked_enum}'
            "</xsd:restriction></xsd:simpleType>"
            f'<xsd:complexType name="{page}"><xsd:sequence>'
            '<xsd:element minOccurs="0" maxOccurs="1" name="Key" type="xsd:string"/>'
            f"{field_elements}</xsd:sequence></xsd:complexType>"
            f'<xsd:complexType name="{page}_List"><xsd:sequence>'
            f'<xsd:element minOccurs="1" maxOccurs="unbounded" name="{page}" type="tns:{page}"/>'
            "</xsd:sequence></xsd:complexType>"
            f'<xsd:simpleType name="{page}_Fields"><xsd:restriction base="xsd:string">'
            f"{field_enum}</xsd:restriction></xsd:simpleType>"
            f'<xsd:complexType name="{page}_Filter"><xsd:sequence>'
            f'<xsd:element minOccurs="1" maxOccurs="1" name="Field" type="tns:{page}_Fields"/>'
            '<xsd:element minOccurs="1" maxOccurs="1" name="Criteria" type="xsd:string"/>'
            "</xsd:sequence></xsd:complexType>"
            f"{elements}</xsd:schema></types>"
            f"{messages}"
            f'<portType name="{page}_Port">{port_ops}</portType>'
            f'<binding name="{page}_Binding" type="tns:{page}_Port">'
            '<binding transport="http://schemas.xmlsoap.org/soap/http" '
            'xmlns="http://schemas.xmlsoap.org/wsdl/soap/"/>'
            f"{binding_ops}</binding>"
            f'<service name="{page}_Service"><port name="{page}_Port" binding="tns:{page}_Binding">'
            f"<address location={quoteattr(location)} "
            'xmlns="http://schemas.xmlsoap.org/wsdl/soap/"/></port></service>'
            "</definitions>"
        )


# -- SOAP helpers -------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(element: ET.Element, name: str) -> Iterable[ET.Element]:
    return (child for child in element if _local(child.tag) == name)


def _child_text(element: ET.Element, name: str) -> str | None:
    child = next(_children(element, name), None)
    return None if child is None else (child.text or "")


def _parse_envelope(raw: bytes) -> ET.Element:
    """The operation element inside the SOAP body. DOCTYPEs and entities are refused before
    parsing (xml.etree would expand internal entities)."""
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise SoapFault("DTDs and entity declarations are not allowed.", "Client")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as err:
        raise SoapFault(f"The request is not well-formed XML: {err}", "Client") from None
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SoapFault("The request is not a SOAP 1.1 envelope.", "Client")
    body = root.find(f"{{{SOAP_ENV}}}Body")
    if body is None or len(body) == 0:
        raise SoapFault("The SOAP body is empty.", "Client")
    return body[0]


def _soap_fault_response(fault: SoapFault, status: int, headers: dict) -> Response:
    code = fault.code if fault.code == "Client" else f"a:{fault.code}"
    body = (
        f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><s:Fault>'
        f'<faultcode xmlns:a="urn:microsoft-dynamics-schemas/error">{escape(code)}</faultcode>'
        f'<faultstring xml:lang="en-US">{escape(fault.message)}</faultstring>'
        '<detail><string xmlns="http://schemas.microsoft.com/2003/10/Serialization/">'
        f"{escape(fault.message)}</string></detail>"
        "</s:Fault></s:Body></s:Envelope>"
    )
    return Response(body, status=status, headers=headers, content_type="text/xml; charset=utf-8")


# -- filter criteria ----------------------------------------------------------------------


def _compile_criteria(field: str, criteria: str, kind: str) -> Callable[[str], bool]:
    """A predicate for one field's filter expression (the subset of the page filter syntax
    that integrations use: alternatives, ranges, comparisons, wildcards, blanks)."""
    criteria = criteria.strip()
    if criteria == "":
        return lambda value: True
    if "&" in criteria or "(" in criteria:
        raise SoapFault(f"The filter '{criteria}' on {field} is not supported by the sandbox.")
    is_date = kind == "xsd:date"
    alternatives = [_compile_term(field, term.strip(), is_date) for term in criteria.split("|")]
    return lambda value: any(test(value) for test in alternatives)


def _compile_term(field: str, term: str, is_date: bool) -> Callable[[str], bool]:
    def literal(text: str) -> str:
        text = text.strip()
        if len(text) >= 2 and text[0] == text[-1] == "'":
            text = text[1:-1]
        if is_date and text and not _ISO_DATE.match(text):
            raise SoapFault(f"The filter value '{text}' is not a valid date for {field}.")
        return text

    def normal(value: str) -> str:
        return "" if is_date and value == "0001-01-01" else value

    if ".." in term:
        low, _, high = term.partition("..")
        low, high = literal(low), literal(high)
        return lambda v: (not low or normal(v) >= low) and (not high or normal(v) <= high)
    for op in ("<>", ">=", "<=", ">", "<", "="):
        if term.startswith(op):
            operand = literal(term[len(op) :])
            compare = {
                "<>": lambda a, b: a != b,
                ">=": lambda a, b: a >= b,
                "<=": lambda a, b: a <= b,
                ">": lambda a, b: a > b,
                "<": lambda a, b: a < b,
                "=": lambda a, b: a == b,
            }[op]
            return lambda v: compare(normal(v), operand)
    insensitive = term.startswith("@")
    pattern = literal(term[1:] if insensitive else term)
    if "*" in pattern or "?" in pattern:
        regex = re.compile(fnmatch.translate(pattern), re.IGNORECASE if insensitive else 0)
        return lambda v: regex.match(v) is not None
    if insensitive:
        return lambda v: v.lower() == pattern.lower()
    return lambda v: normal(v) == pattern


# -- realistic vendors ----------------------------------------------------------------------

_SURNAMES = (
    "Abbott", "Barrett", "Carver", "Dalton", "Ellison", "Fletcher", "Garner", "Hayward", "Ingram",
    "Jarvis", "Kendall", "Lowell", "Marsh", "Norris", "Oakley", "Pritchard", "Quinn", "Radcliffe",
    "Sutton", "Thorne", "Underwood", "Vickers", "Walsh", "Yates",
)  # fmt: skip
_TRADES = (
    "Plumbing", "Electrical", "Roofing", "HVAC Services", "Glazing", "Landscaping", "Scaffolding",
    "Joinery", "Fire Protection", "Lift Engineering", "Cleaning Services", "Painting & Decorating",
)  # fmt: skip
_SUFFIXES = ("Ltd", "Ltd.", "Limited", "& Sons Ltd", "Group Ltd", "LLP")
_CITIES = (
    ("London", "EC1A 1BB", "Greater London", "20"),
    ("Manchester", "M1 1AE", "Greater Manchester", "161"),
    ("Birmingham", "B1 1AA", "West Midlands", "121"),
    ("Bristol", "BS1 4DJ", "Bristol", "117"),
    ("Leeds", "LS1 4AP", "West Yorkshire", "113"),
    ("Glasgow", "G1 1XQ", "Glasgow City", "141"),
    ("Cardiff", "CF10 1EP", "South Glamorgan", "29"),
    ("Newcastle", "NE1 7RU", "Tyne and Wear", "191"),
    ("Reading", "RG1 1AF", "Berkshire", "118"),
)
_STREETS = (
    "High Street",
    "Station Road",
    "Mill Lane",
    "Church Street",
    "Victoria Road",
    "Park Way",
)


def _fake_vendor(rng: random.Random, no: str, today: date) -> dict[str, str]:
    surname, trade = rng.choice(_SURNAMES), rng.choice(_TRADES)
    name = f"{surname} {trade} {rng.choice(_SUFFIXES)}"
    city, post_code, county, area = rng.choice(_CITIES)
    slug = re.sub(r"[^a-z]", "", f"{surname}{trade.split()[0]}".lower())
    modified = today - timedelta(days=rng.randint(1, 365))
    return {
        "No": no,
        "Name": name,
        "Address": f"{rng.randint(1, 240)} {rng.choice(_STREETS)}",
        "Address_2": rng.choice(("", "", f"Unit {rng.randint(1, 40)}")),
        "City": city,
        "Post_Code": post_code,
        "County": county,
        "Country_Region_Code": "GB",
        "Phone_No": f"+44 {area} {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
        "E_Mail": f"accounts@{slug}{no[1:]}.example.co.uk",
        "VAT_Registration_No": f"GB{rng.randint(100_000_000, 999_999_999)}",
        "Blocked": "_blank_",
        "Last_Date_Modified": modified.isoformat(),
    }
