"""The canonical records a mapping reads or writes, and the small type system that checks rules.

`mappings/` may import nothing of ours (see DESIGN.md), so the few names it shares with the core
(coverage lines, limit keys, statuses, risk tiers, certificate sources) are copied here; a test
keeps them equal to `connector.compliance.model` and `connector.schemas`.

Value types are short strings: `str`, `int`, `bool`, `date`, `datetime`, `money` (an integer of
whole currency units, e.g. a policy limit), `cents` (an integer of cents, e.g. a work-order
amount), `dict`, `any`, and lists written `list[T]`. A list of records (`list[dict]`) catalog field
carries the catalog of its items.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# --- copied from connector.compliance.model / connector.schemas (kept equal by a test) -------

LINES = (
    "general_liability",
    "automobile_liability",
    "umbrella_liability",
    "excess_liability",
    "workers_compensation",
    "professional_liability",
    "pollution_liability",
    "cyber_liability",
    "property",
)
#: Every limit key of any line (ACORD 25 names); which line takes which is checked by the API.
LIMIT_KEY_NAMES = (
    "each_occurrence",
    "damage_to_rented_premises",
    "medical_expense",
    "personal_advertising_injury",
    "general_aggregate",
    "products_completed_operations_aggregate",
    "combined_single_limit",
    "bodily_injury_per_person",
    "bodily_injury_per_accident",
    "property_damage",
    "aggregate",
    "el_each_accident",
    "el_disease_each_employee",
    "el_disease_policy_limit",
    "each_claim",
)
STATUSES = ("compliant", "expiring", "non_compliant")
RISK_TIERS = ("low", "medium", "high")
CERTIFICATE_SOURCES = ("api", "pdf", "email", "agent", "sync")

# --- value types -------------------------------------------------------------------------------

ANY = "any"
STR = "str"
INT = "int"
BOOL = "bool"
DATE = "date"
DATETIME = "datetime"
MONEY = "money"
CENTS = "cents"
DICT = "dict"
#: A number with a fraction, as remote systems send them (never a canonical type).
NUMBER = "number"
STR_LIST = "list[str]"
RECORDS = "list[dict]"

SCALAR_TYPES = (STR, INT, BOOL, DATE, DATETIME, MONEY, CENTS)
_INTEGERS = (INT, MONEY, CENTS)

TYPE_NAMES = {
    ANY: "any value",
    STR: "text",
    INT: "an integer",
    BOOL: "true/false",
    DATE: "a date",
    DATETIME: "a date-time",
    MONEY: "an amount in whole units",
    CENTS: "an amount in cents",
    DICT: "an object",
    NUMBER: "a number",
}


def list_of(item: str) -> str:
    return f"list[{item}]"


def item_type(kind: str) -> str | None:
    """`T` for `list[T]`, else None."""
    return kind[5:-1] if kind.startswith("list[") else None


def describe(kind: str) -> str:
    inner = item_type(kind)
    if inner is not None:
        return "a list of records" if inner == DICT else f"a list of ({describe(inner)})"
    return TYPE_NAMES.get(kind, kind)


def can_reach(source: str, target: str) -> bool:
    """Whether a value of type `source` may go where `target` is expected (`any` on either side
    defers the question to a check of the value when a record is mapped)."""
    if source == target or ANY in (source, target):
        return True
    if source in _INTEGERS and target in _INTEGERS:
        # A plain integer may be an amount; whole units and cents never mix.
        return INT in (source, target)
    source_item, target_item = item_type(source), item_type(target)
    if source_item is not None and target_item is not None:
        return can_reach(source_item, target_item)
    return False


def is_certain(source: str, target: str) -> bool:
    """Whether every value of static type `source` is a valid `target` value without a check."""
    if target == ANY:
        return True
    if ANY in (source, target):
        return False
    if source in _INTEGERS and target in _INTEGERS:
        return True
    source_item, target_item = item_type(source), item_type(target)
    if source_item is not None and target_item is not None:
        return is_certain(source_item, target_item)
    return source == target


def type_of(value: Any) -> str:
    """The static type of a constant written in a spec."""
    if value is True or value is False:
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return NUMBER
    if isinstance(value, str):
        return STR
    if isinstance(value, dt.datetime):
        return DATETIME
    if isinstance(value, dt.date):
        return DATE
    if isinstance(value, dict):
        return DICT
    if isinstance(value, list):
        kinds = {type_of(v) for v in value}
        return list_of(kinds.pop() if len(kinds) == 1 else ANY)
    return ANY


def _is_str_list(value: Any) -> bool:
    return type(value) is list and all(isinstance(v, str) for v in value)


def _is_records(value: Any) -> bool:
    return type(value) is list and all(isinstance(v, dict) for v in value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and value is not True and value is not False


_CHECKS: dict[str, Callable[[Any], bool]] = {
    STR: lambda v: isinstance(v, str),
    INT: _is_int,
    MONEY: _is_int,
    CENTS: _is_int,
    BOOL: lambda v: v is True or v is False,
    DATE: lambda v: isinstance(v, dt.date) and not isinstance(v, dt.datetime),
    DATETIME: lambda v: isinstance(v, dt.datetime),
    DICT: lambda v: isinstance(v, dict),
    NUMBER: lambda v: isinstance(v, float),
    STR_LIST: _is_str_list,
    RECORDS: _is_records,
}


def value_check(kind: str) -> Callable[[Any], bool] | None:
    """A predicate telling whether a value is of type `kind` (None: anything goes)."""
    if kind == ANY:
        return None
    if kind in _CHECKS:
        return _CHECKS[kind]
    inner = item_type(kind)
    if inner is not None:
        inner_check = value_check(inner)
        if inner_check is None:
            return lambda v: type(v) is list
        return lambda v: type(v) is list and all(inner_check(x) for x in v)
    return None


def coerce_constant(value: Any, kind: str) -> Any:
    """A constant or default written in a spec, as a value of type `kind`; ValueError if it
    cannot be one. Dates are written as ISO strings (specs are stored as JSON)."""
    if kind == ANY or value is None:
        return value
    if kind == DATE and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None
    if kind == DATETIME and isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO date-time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    check = value_check(kind)
    if check is not None and not check(value):
        raise ValueError(f"{value!r} is not {describe(kind)}")
    return value


# --- the catalog -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CanonicalField:
    """One field of a canonical record. `items` is the catalog of a list of records' items."""

    type: str
    doc: str = ""
    choices: tuple[str, ...] | None = None
    items: Mapping[str, CanonicalField] | None = None


F = CanonicalField

VENDOR: dict[str, CanonicalField] = {
    "external_id": F(STR, "The vendor's id in the remote system (its binding)."),
    "name": F(STR, "Legal or trading name."),
    "email": F(STR, "Contact e-mail address."),
    "phone": F(STR, "Contact phone number."),
    "tax_id": F(STR, "Tax identification number (EIN, VAT number)."),
    "work_types": F(STR_LIST, "Work types (trades) the vendor performs; lower case."),
    "regions": F(STR_LIST, "Regions the vendor works in; lower case."),
    "risk_tier": F(STR, "Risk tier.", RISK_TIERS),
    "active": F(BOOL, "False deactivates the vendor."),
}

POLICY: dict[str, CanonicalField] = {
    "line": F(STR, "Coverage line.", LINES),
    "policy_number": F(STR, "Policy number as printed."),
    "insurer.name": F(STR, "Insurer's name."),
    "insurer.naic": F(STR, "Insurer's NAIC code (5 digits)."),
    "insurer.am_best": F(STR, "A.M. Best rating as printed, e.g. `A-`."),
    "effective_date": F(DATE, "First day of coverage."),
    "expiration_date": F(DATE, "Expiration date (not covered itself)."),
    **{f"limits.{key}": F(MONEY, "Limit in whole currency units.") for key in LIMIT_KEY_NAMES},
    "limits.statutory": F(BOOL, "Workers' compensation: statutory limits."),
    "additional_insured": F(BOOL, "ADDL INSD."),
    "waiver_of_subrogation": F(BOOL, "SUBR WVD."),
    "primary_noncontributory": F(BOOL, "Primary and non-contributory."),
    "claims_made": F(BOOL, "Claims-made (not occurrence) form."),
}

CERTIFICATE: dict[str, CanonicalField] = {
    "vendor_external_id": F(
        STR,
        "The vendor the certificate belongs to, by its id in the remote system (a file row "
        "names it); not part of the certificate body.",
    ),
    "producer.name": F(STR, "Agency or broker."),
    "producer.email": F(STR, "Producer contact e-mail."),
    "producer.phone": F(STR, "Producer contact phone."),
    "insured.name": F(STR, "Named insured (the vendor)."),
    "certificate_holder.name": F(STR, "Certificate holder."),
    "certificate_holder.address": F(STR, "Certificate holder's address."),
    "description_of_operations": F(STR, "Description of operations / locations / vehicles."),
    "received_at": F(DATETIME, "When the certificate arrived (UTC)."),
    "source": F(STR, "How the certificate arrived.", CERTIFICATE_SOURCES),
    "policies": F(RECORDS, "The policies the certificate lists.", items=POLICY),
}

WORK_ORDER: dict[str, CanonicalField] = {
    "external_id": F(STR, "The work order's id in the dispatch system."),
    "vendor_external_id": F(STR, "The assigned vendor's id in the dispatch system."),
    "work_type": F(STR, "Work type (trade); lower case."),
    "region": F(STR, "Region (location); lower case."),
    "scheduled_start": F(DATE, "First scheduled day."),
    "scheduled_end": F(DATE, "Last scheduled day."),
    "amount": F(CENTS, "Not-to-exceed amount in cents."),
    "status": F(STR, "The dispatch system's status of the work order."),
    "event_type": F(STR, "The webhook event, e.g. `WorkOrderCreated`."),
}

DEFICIENCY: dict[str, CanonicalField] = {
    "code": F(STR, "Deficiency code, e.g. `expired`."),
    "line": F(STR, "Coverage line, when the deficiency concerns one."),
    "field": F(STR, "The field at fault, e.g. `each_occurrence`."),
    "severity": F(STR, "`block` or `warn`."),
    "message": F(STR, "Readable message."),
}

COMPLIANCE: dict[str, CanonicalField] = {
    "status": F(STR, "Compliance status.", STATUSES),
    "score": F(INT, "Score 0-100."),
    "expires_on": F(DATE, "Earliest expiry of a required policy (may be empty)."),
    "deficiencies": F(RECORDS, "The deficiencies, each {code, message, ...}.", items=DEFICIENCY),
    "compliant": F(BOOL, "True when the status is compliant or expiring."),
    "payment_block": F(
        BOOL,
        "True when the connection blocks payment of non-compliant vendors and this one is; "
        "empty when the connection does not block payments.",
    ),
    "deficiency_summary": F(STR, "The deficiency messages, one per line."),
}

#: Canonical object kind -> its catalog: field path (dotted) -> CanonicalField.
OBJECTS: dict[str, dict[str, CanonicalField]] = {
    "vendor": VENDOR,
    "certificate": CERTIFICATE,
    "work_order": WORK_ORDER,
    "compliance": COMPLIANCE,
}
DIRECTIONS = ("in", "out")


def compliance_record(
    result: Mapping[str, Any], *, block_payments: bool = False, summary_separator: str = "\n"
) -> dict[str, Any]:
    """The canonical `compliance` record an outbound mapping reads, from a compliance result
    (`Result.to_dict()` or the API's result body: dates may be ISO strings).

    `block_payments` is the connection's setting: when set, `payment_block` is True for a
    non-compliant vendor and False otherwise; when not set it is None, so a rule guarded by
    `when: {source: payment_block, present: true}` leaves the remote field alone.
    """
    status = result.get("status")
    expires_on = result.get("expires_on")
    if isinstance(expires_on, str):
        expires_on = dt.date.fromisoformat(expires_on[:10])
    deficiencies = list(result.get("deficiencies") or ())
    messages = [d.get("message") for d in deficiencies if d.get("message")]
    return {
        "status": status,
        "score": result.get("score"),
        "expires_on": expires_on,
        "deficiencies": deficiencies,
        "compliant": status in ("compliant", "expiring"),
        "payment_block": (status == "non_compliant") if block_payments else None,
        "deficiency_summary": summary_separator.join(messages),
    }
