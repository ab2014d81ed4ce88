"""Marshmallow schemas for the HTTP API: what a request may carry and what a response holds.

Request schemas validate input (JSON bodies, query arguments, CSV rows) and turn it into plain
Python dicts: calendar dates become `datetime.date`, timestamps become UTC-aware `datetime`, names
are stripped, work types and regions are lower-cased and de-duplicated. Anything wrong raises
`marshmallow.ValidationError` whose `messages` are keyed by field path the way marshmallow nests
them (`{"policies": {0: {"limits": {"each_occurrence": [...]}}}}`); unknown fields are errors too.
The API turns that error into a 422 response in one place.

Response schemas (`VendorSchema`, `ComplianceResultSchema`, `GateDecisionSchema`, ...) document
what the API returns; together with the request schemas they feed the OpenAPI document built with
apispec's MarshmallowPlugin, so every field uses a standard marshmallow field and validator.

Every schema is instantiated once, at import (the `*_schema` singletons at the bottom): request
handlers, the gate's hot path included, reuse them and never build a schema per request.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from adapters import REGISTRY as ADAPTER_REGISTRY
from connector.compliance.model import DEFICIENCY_CODES, LIMIT_KEYS, LINES, SEVERITIES, STATUSES
from connector.compliance.ratings import AM_BEST_ORDER
from connector.services.events import EVENT_TYPES as WEBHOOK_EVENT_TYPES
from mappings import DEFAULTS as MAPPING_DEFAULTS
from mappings import DIRECTIONS as MAPPING_DIRECTIONS
from mappings import OBJECTS as MAPPING_OBJECTS

#: A.M. Best financial strength ratings, best first.
AM_BEST_RATINGS = tuple(reversed(AM_BEST_ORDER))
RISK_TIERS = ("low", "medium", "high")
CERTIFICATE_SOURCES = ("api", "pdf", "email", "agent", "sync")
NOTICE_CHANNELS = ("mail", "email", "fax", "carrier_portal", "agent", "api", "webhook")
GATE_DECISIONS = ("allow", "warn", "block")

#: Requirement set keys (they appear in URLs).
REQUIREMENT_KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
NAIC_PATTERN = r"^[0-9]{5}$"

#: The only limit key that is a flag rather than an amount, and the one line that may carry it.
STATUTORY = "statutory"
STATUTORY_LINE = "workers_compensation"

#: Bounds that keep integers inside the database columns they end up in.
MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1
MAX_PAGE = 1_000_000
MAX_PER_PAGE = 200
#: A vendor is known in a handful of systems; the cap keeps the binding lookup one small query.
MAX_EXTERNAL_REFS = 50


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


class CalendarDate(fields.Date):
    """An ISO calendar date; an ISO date-time is accepted too and its date part kept as written.

    Coverage and work dates carry no time zone, so `2025-01-31T23:00:00-05:00` means 2025-01-31.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        try:
            return super()._deserialize(value, attr, data, **kwargs)
        except ValidationError:
            if not isinstance(value, str) or len(value) <= 10:
                raise
            try:
                return dt.datetime.fromisoformat(value).date()
            except ValueError:
                raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from None


def _single_line(value: str) -> None:
    # `$` in a pattern also matches before a trailing newline; refuse line breaks outright.
    if "\n" in value or "\r" in value:
        raise ValidationError("Must not contain line breaks.")


def _not_blank(max_length: int) -> list[validate.Validator]:
    return [validate.Length(min=1, error="Must not be blank."), validate.Length(max=max_length)]


def ordered_unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _amount_error(value: Any) -> str | None:
    if value is True or value is False:
        return "Must be a whole amount, not true or false."
    if isinstance(value, float):
        return "Must be a whole number (no decimals)."
    if not isinstance(value, int):
        return "Must be a non-negative integer."
    if value < 0:
        return "Must not be negative."
    if value > MAX_INT64:
        return "Too large."
    return None


def policy_limits_errors(
    line: str | None, limits: Mapping[str, Any], *, allow_statutory: bool = True
) -> dict[str, list[str]]:
    """Problems with the `limits` of one coverage line, keyed by limit key; empty when valid.

    The one place per-line limits are checked, for policies on certificates and for the minimums
    of requirement-set coverages alike. Keys must be the line's ACORD 25 names (`LIMIT_KEYS`);
    amounts are non-negative integers (floats, booleans and strings are refused). `statutory` is
    a boolean allowed on `workers_compensation` only, and only when `allow_statutory` (a
    requirement says "statutory" with its own flag instead). When `line` is unknown only the
    amounts are checked, since the line itself is already reported.
    """
    allowed = LIMIT_KEYS.get(line) if line is not None else None
    errors: dict[str, list[str]] = {}
    for key, value in limits.items():
        if key == STATUTORY:
            if not allow_statutory:
                message = "Not a limit; use the coverage's `statutory` flag."
            elif allowed is not None and line != STATUTORY_LINE:
                message = f"`statutory` applies to {STATUTORY_LINE} only, not {line}."
            elif value is not True and value is not False:
                message = "Must be true or false."
            else:
                continue
        elif allowed is not None and key not in allowed:
            message = f"Not a limit of {line}; expected one of: {', '.join(allowed)}."
        else:
            message = _amount_error(value)
            if message is None:
                continue
        errors[key] = [message]
    return errors


def _limits_field(description: str) -> fields.Dict:
    return fields.Dict(
        keys=fields.Str(),
        values=fields.Raw(),
        load_default=dict,
        metadata={"description": description},
    )


class _Base(Schema):
    """Base of the request schemas: unknown fields raise; before validation the string fields
    named in `strip_fields` are stripped and those in `lower_fields` (strings or lists of
    strings) stripped and lower-cased; after loading the lists in `lower_fields` are
    de-duplicated, first occurrence kept."""

    strip_fields: tuple[str, ...] = ()
    lower_fields: tuple[str, ...] = ()

    class Meta:
        unknown = RAISE

    @pre_load
    def _normalise(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, Mapping) or not (self.strip_fields or self.lower_fields):
            return data
        out = dict(data)
        for name in self.strip_fields:
            if isinstance(out.get(name), str):
                out[name] = out[name].strip()
        for name in self.lower_fields:
            value = out.get(name)
            if isinstance(value, str):
                out[name] = value.strip().lower()
            elif isinstance(value, list):
                out[name] = [v.strip().lower() if isinstance(v, str) else v for v in value]
        return out

    @post_load
    def _dedupe(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        for name in self.lower_fields:
            if isinstance(data.get(name), list):
                data[name] = ordered_unique(data[name])
        return data


def _tag_list(description: str) -> fields.List:
    return fields.List(
        fields.Str(validate=validate.Length(min=1, max=64)),
        load_default=list,
        metadata={"description": description},
    )


class _PageArgs(_Base):
    """`page` / `per_page` query arguments shared by list endpoints."""

    page = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={"description": "Page number, from 1."},
    )
    per_page = fields.Integer(
        load_default=50,
        validate=validate.Range(min=1, max=MAX_PER_PAGE),
        metadata={"description": f"Items per page (1..{MAX_PER_PAGE})."},
    )


# --------------------------------------------------------------------------------------------
# Vendors
# --------------------------------------------------------------------------------------------


class ExternalRefSchema(_Base):
    """A record's identity in another system."""

    system = fields.Str(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "Connection / system name, e.g. `salesforce`."},
    )
    external_id = fields.Str(
        required=True,
        validate=validate.Length(min=1, max=255),
        metadata={"description": "The record's id in that system."},
    )


class VendorCreateSchema(_Base):
    """A vendor (contractor) to create or upsert."""

    strip_fields = ("name", "email", "tax_id")
    lower_fields = ("work_types", "regions")

    name = fields.Str(required=True, validate=_not_blank(200))
    email = fields.Email(allow_none=True, validate=validate.Length(max=254))
    tax_id = fields.Str(allow_none=True, validate=validate.Length(max=32))
    work_types = _tag_list("Work types the vendor performs (lower-cased, de-duplicated).")
    regions = _tag_list("Regions the vendor works in (lower-cased, de-duplicated).")
    risk_tier = fields.Str(allow_none=True, validate=validate.OneOf(RISK_TIERS))
    external_refs = fields.List(
        fields.Nested(ExternalRefSchema),
        load_default=list,
        validate=validate.Length(max=MAX_EXTERNAL_REFS),
        metadata={"description": "The vendor's identities in connected systems."},
    )

    @post_load
    def _dedupe_refs(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        seen = {(ref["system"], ref["external_id"]): ref for ref in data["external_refs"]}
        data["external_refs"] = list(seen.values())
        return data


class VendorQuerySchema(_PageArgs):
    """Query arguments of the vendor list."""

    strip_fields = ("q",)
    lower_fields = ("work_type", "region")

    status = fields.Str(validate=validate.OneOf(STATUSES))
    work_type = fields.Str(validate=validate.Length(max=64))
    region = fields.Str(validate=validate.Length(max=64))
    q = fields.Str(
        validate=validate.Length(max=200),
        metadata={"description": "Search in names, tax ids and external ids."},
    )


# --------------------------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------------------------


class InsurerSchema(_Base):
    strip_fields = ("name", "naic", "am_best")

    name = fields.Str(required=True, validate=_not_blank(200))
    naic = fields.Str(
        allow_none=True,
        validate=[validate.Regexp(NAIC_PATTERN, error="Must be 5 digits."), _single_line],
        metadata={"description": "NAIC company code (5 digits)."},
    )
    am_best = fields.Str(
        allow_none=True,
        validate=validate.OneOf(AM_BEST_RATINGS),
        metadata={"description": "A.M. Best rating as printed on the certificate."},
    )


class PolicySchema(_Base):
    """One policy listed on a certificate."""

    strip_fields = ("policy_number",)

    line = fields.Str(required=True, validate=validate.OneOf(LINES))
    policy_number = fields.Str(required=True, validate=_not_blank(64))
    insurer = fields.Nested(InsurerSchema, required=True)
    effective_date = CalendarDate(required=True)
    expiration_date = CalendarDate(
        required=True,
        metadata={"description": "Not covered itself: coverage ends at 12:01 a.m. that day."},
    )
    limits = _limits_field(
        "Limit key (ACORD 25 name for the line) -> whole currency units; workers' compensation "
        "may also carry `statutory: true`."
    )
    additional_insured = fields.Bool(load_default=False)
    waiver_of_subrogation = fields.Bool(load_default=False)
    primary_noncontributory = fields.Bool(load_default=False)
    claims_made = fields.Bool(load_default=False)

    @validates_schema(skip_on_field_errors=False)
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, Any] = {}
        start, end = data.get("effective_date"), data.get("expiration_date")
        if start is not None and end is not None and end <= start:
            errors["expiration_date"] = ["Must be after the effective date."]
        if isinstance(data.get("limits"), Mapping):
            limit_errors = policy_limits_errors(data.get("line"), data["limits"])
            if limit_errors:
                errors["limits"] = limit_errors
        if errors:
            raise ValidationError(errors)


class ProducerSchema(_Base):
    strip_fields = ("name", "email", "phone")

    name = fields.Str(allow_none=True, validate=validate.Length(max=200))
    email = fields.Email(allow_none=True, validate=validate.Length(max=254))
    phone = fields.Str(allow_none=True, validate=validate.Length(max=40))


class InsuredSchema(_Base):
    strip_fields = ("name",)

    name = fields.Str(required=True, validate=_not_blank(200))


class CertificateHolderSchema(_Base):
    strip_fields = ("name", "address")

    name = fields.Str(required=True, validate=_not_blank(200))
    address = fields.Str(allow_none=True, validate=validate.Length(max=500))


class CertificateSchema(_Base):
    """A certificate of insurance (ACORD 25 shaped)."""

    producer = fields.Nested(ProducerSchema, allow_none=True)
    insured = fields.Nested(InsuredSchema, required=True)
    certificate_holder = fields.Nested(CertificateHolderSchema, required=True)
    description_of_operations = fields.Str(allow_none=True, validate=validate.Length(max=4000))
    received_at = fields.AwareDateTime(
        default_timezone=dt.UTC,
        allow_none=True,
        metadata={"description": "When the certificate arrived (UTC if no offset is given)."},
    )
    source = fields.Str(load_default="api", validate=validate.OneOf(CERTIFICATE_SOURCES))
    policies = fields.List(
        fields.Nested(PolicySchema), required=True, validate=validate.Length(min=1, max=50)
    )

    @post_load
    def _utc(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("received_at") is not None:
            try:
                data["received_at"] = data["received_at"].astimezone(dt.UTC)
            except OverflowError:
                raise ValidationError(
                    "Must be a time that exists in UTC.", field_name="received_at"
                ) from None
        return data


# --------------------------------------------------------------------------------------------
# Requirement sets
# --------------------------------------------------------------------------------------------


class AppliesToSchema(_Base):
    """When a requirement set applies; an empty list means "any"."""

    lower_fields = ("work_types", "regions", "risk_tiers")

    work_types = _tag_list("Work types the set applies to.")
    regions = _tag_list("Regions the set applies to.")
    risk_tiers = fields.List(
        fields.Str(validate=validate.OneOf(RISK_TIERS)),
        load_default=list,
        metadata={"description": "Vendor risk tiers the set applies to."},
    )
    min_amount = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_INT64),
        metadata={"description": "Applies to work orders of at least this amount (cents)."},
    )


class RequiredHolderSchema(_Base):
    strip_fields = ("name",)

    name = fields.Str(
        required=True,
        validate=_not_blank(200),
        metadata={"description": "Certificate holder every certificate must name."},
    )


class CoverageRequirementSchema(_Base):
    """One coverage line a requirement set demands, with its minimums."""

    line = fields.Str(required=True, validate=validate.OneOf(LINES))
    limits = _limits_field("Limit key (ACORD 25 name for the line) -> minimum, whole units.")
    additional_insured = fields.Bool(load_default=False)
    waiver_of_subrogation = fields.Bool(load_default=False)
    primary_noncontributory = fields.Bool(load_default=False)
    statutory = fields.Bool(
        load_default=False,
        metadata={"description": "Statutory workers' compensation limits required."},
    )

    @validates_schema(skip_on_field_errors=False)
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, Any] = {}
        line = data.get("line")
        if isinstance(data.get("limits"), Mapping):
            limit_errors = policy_limits_errors(line, data["limits"], allow_statutory=False)
            if limit_errors:
                errors["limits"] = limit_errors
        if data.get("statutory") and line is not None and line != STATUTORY_LINE:
            errors["statutory"] = [f"Applies to {STATUTORY_LINE} only, not {line}."]
        if errors:
            raise ValidationError(errors)


class RequirementSetSchema(_Base):
    """A requirement set as PUT to /requirement-sets/<key> (the key comes from the URL)."""

    strip_fields = ("name",)

    name = fields.Str(required=True, validate=_not_blank(200))
    applies_to = fields.Nested(
        AppliesToSchema,
        load_default=lambda: {"work_types": [], "regions": [], "risk_tiers": []},
    )
    priority = fields.Integer(
        strict=True,
        load_default=0,
        validate=validate.Range(min=-MAX_INT32 - 1, max=MAX_INT32),
        metadata={"description": "Higher wins when several sets apply."},
    )
    expiring_window_days = fields.Integer(
        strict=True,
        load_default=30,
        validate=validate.Range(min=0, max=365),
        metadata={"description": "Days before expiry at which a vendor becomes `expiring`."},
    )
    certificate_holder = fields.Nested(RequiredHolderSchema, allow_none=True)
    min_am_best = fields.Str(allow_none=True, validate=validate.OneOf(AM_BEST_RATINGS))
    coverages = fields.List(
        fields.Nested(CoverageRequirementSchema),
        required=True,
        validate=validate.Length(min=1, max=len(LINES)),
    )
    umbrella_counts_toward = fields.List(
        fields.Str(validate=validate.OneOf(LINES)),
        load_default=list,
        metadata={"description": "Lines whose limits an umbrella / excess policy may top up."},
    )
    severity = fields.Dict(
        keys=fields.Str(validate=validate.OneOf(DEFICIENCY_CODES)),
        values=fields.Str(validate=validate.OneOf(SEVERITIES)),
        load_default=dict,
        metadata={"description": "Deficiency code -> `block` | `warn` (unnamed codes block)."},
    )
    effective_from = CalendarDate(
        allow_none=True, metadata={"description": "First day the set applies (future-dated)."}
    )

    @validates_schema  # skipped on field errors: the coverages are then known to be whole
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        seen: set[str] = set()
        errors: dict[int, Any] = {}
        for index, coverage in enumerate(data["coverages"]):
            line = coverage["line"]
            if line in seen:
                errors[index] = {"line": [f"{line} is listed more than once."]}
            seen.add(line)
        if errors:
            raise ValidationError({"coverages": errors})

    @post_load
    def _dedupe_lines(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["umbrella_counts_toward"] = ordered_unique(data["umbrella_counts_toward"])
        return data


class RequirementKeySchema(_Base):
    """The requirement set key from the URL (`{"key": ...}`)."""

    key = fields.Str(
        required=True,
        validate=[
            validate.Regexp(
                REQUIREMENT_KEY_PATTERN,
                error="Must be 1-64 of a-z, 0-9, `_`, `.`, `-`, starting with a letter or digit.",
            ),
            _single_line,
        ],
    )


def validate_requirement_key(key: str) -> str:
    """Return `key` if it is a valid requirement set key, else raise ValidationError on `key`."""
    return requirement_key_schema.load({"key": key})["key"]


# --------------------------------------------------------------------------------------------
# Compliance, waivers, gate, notices, audit, insurers
# --------------------------------------------------------------------------------------------


class ComplianceQuerySchema(_Base):
    """Query arguments of a compliance read: the set to use and the window to evaluate."""

    requirement_set = fields.Str(
        validate=[validate.Regexp(REQUIREMENT_KEY_PATTERN), _single_line],
        metadata={"description": "Requirement set key; default: the set that applies."},
    )
    as_of = CalendarDate(metadata={"description": "First day of the window; default today."})
    until = CalendarDate(metadata={"description": "Last day of the window; default `as_of`."})

    @validates_schema(skip_on_field_errors=False)
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "as_of" in data and "until" in data and data["until"] < data["as_of"]:
            raise ValidationError({"until": ["Must not be before as_of."]})


class WaiverSchema(_Base):
    """A waiver: suppresses one deficiency of one vendor until a date."""

    strip_fields = ("reason", "granted_by")

    code = fields.Str(required=True, validate=validate.OneOf(DEFICIENCY_CODES))
    line = fields.Str(
        allow_none=True,
        validate=validate.OneOf(LINES),
        metadata={"description": "The line waived; omitted: the code on any line."},
    )
    reason = fields.Str(required=True, validate=_not_blank(1000))
    granted_by = fields.Str(allow_none=True, validate=validate.Length(max=200))
    until = CalendarDate(required=True, metadata={"description": "Last day the waiver holds."})


class GateRequestSchema(_Base):
    """A gate check: may this vendor take this work order?"""

    lower_fields = ("work_type", "region")

    work_order = fields.Nested(ExternalRefSchema, required=True)
    vendor = fields.Nested(
        ExternalRefSchema,
        allow_none=True,
        metadata={"description": "The vendor by its id in the calling system (or `vendor_id`)."},
    )
    vendor_id = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=1, max=MAX_INT32),
        metadata={"description": "The vendor by its id here (or `vendor`)."},
    )
    work_type = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    region = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    scheduled_start = CalendarDate(required=True)
    scheduled_end = CalendarDate(required=True)
    amount = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_INT64),
        metadata={"description": "Work-order amount in cents."},
    )

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _check(self, data: dict[str, Any], original_data: Any, **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        if isinstance(original_data, Mapping):
            given = [original_data.get(k) is not None for k in ("vendor", "vendor_id")]
            if all(given):
                errors["vendor"] = ["Give vendor or vendor_id, not both."]
            elif not any(given):
                errors["vendor"] = ["vendor or vendor_id is required."]
        start, end = data.get("scheduled_start"), data.get("scheduled_end")
        if start is not None and end is not None and end < start:
            errors["scheduled_end"] = ["Must not be before scheduled_start."]
        if errors:
            raise ValidationError(errors)

    @post_load
    def _drop_nulls(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # Exactly one of `vendor` / `vendor_id` is left in the result.
        for name in ("vendor", "vendor_id"):
            if name in data and data[name] is None:
                del data[name]
        return data


class CancellationNoticeSchema(_Base):
    """A notice that an insurer cancels a policy."""

    strip_fields = ("policy_number", "insurer_name")

    policy_number = fields.Str(required=True, validate=_not_blank(64))
    insurer_name = fields.Str(required=True, validate=_not_blank(200))
    effective_date = CalendarDate(
        required=True, metadata={"description": "First day the policy is no longer in force."}
    )
    received_via = fields.Str(required=True, validate=validate.OneOf(NOTICE_CHANNELS))
    notes = fields.Str(allow_none=True, validate=validate.Length(max=4000))


class AuditQuerySchema(_PageArgs):
    """Query arguments of the audit log."""

    entity_type = fields.Str(validate=validate.Length(max=64))
    entity_id = fields.Str(validate=validate.Length(max=64))
    action = fields.Str(validate=validate.Length(max=64))


class InsurerRowSchema(_Base):
    """One row of the insurer ratings CSV (NAIC code -> A.M. Best rating)."""

    strip_fields = ("naic", "name", "am_best")

    naic = fields.Str(
        required=True,
        validate=[validate.Regexp(NAIC_PATTERN, error="Must be 5 digits."), _single_line],
    )
    name = fields.Str(required=True, validate=_not_blank(200))
    am_best = fields.Str(required=True, validate=validate.OneOf(AM_BEST_RATINGS))


# --------------------------------------------------------------------------------------------
# Responses (dump only; for the OpenAPI document)
# --------------------------------------------------------------------------------------------


class VendorSchema(Schema):
    id = fields.Integer()
    name = fields.Str()
    email = fields.Str(allow_none=True)
    tax_id = fields.Str(allow_none=True)
    work_types = fields.List(fields.Str())
    regions = fields.List(fields.Str())
    risk_tier = fields.Str(allow_none=True, validate=validate.OneOf(RISK_TIERS))
    active = fields.Bool()
    status = fields.Str(
        allow_none=True,
        validate=validate.OneOf(STATUSES),
        metadata={"description": "Under the requirement set that applies; null: not evaluated."},
    )
    score = fields.Integer(allow_none=True, metadata={"description": "0-100."})
    expires_on = fields.Date(allow_none=True)
    external_refs = fields.List(fields.Nested(ExternalRefSchema))
    created_at = fields.DateTime()


class DeficiencySchema(Schema):
    code = fields.Str(validate=validate.OneOf(DEFICIENCY_CODES))
    line = fields.Str(allow_none=True)
    field = fields.Str(allow_none=True)
    required = fields.Raw(allow_none=True, metadata={"description": "What the set requires."})
    actual = fields.Raw(allow_none=True, metadata={"description": "What the vendor has."})
    severity = fields.Str(validate=validate.OneOf(SEVERITIES))
    message = fields.Str()


class ComplianceResultSchema(Schema):
    vendor_id = fields.Integer()
    requirement_set = fields.Str()
    as_of = fields.Date()
    until = fields.Date()
    status = fields.Str(validate=validate.OneOf(STATUSES))
    score = fields.Integer(metadata={"description": "0-100; see score_parts."})
    score_parts = fields.Dict(keys=fields.Str(), values=fields.Float())
    expires_on = fields.Date(
        allow_none=True, metadata={"description": "Earliest expiry of a required policy."}
    )
    deficiencies = fields.List(fields.Nested(DeficiencySchema))
    waived = fields.List(
        fields.Nested(DeficiencySchema),
        metadata={"description": "Deficiencies suppressed by waivers."},
    )
    stable_until = fields.Date(
        allow_none=True,
        metadata={"description": "Last day on which this result stays as it is."},
    )


class GateReasonSchema(Schema):
    code = fields.Str(metadata={"description": "A deficiency code, or e.g. `unknown_vendor`."})
    message = fields.Str()


class GateAlternativeSchema(Schema):
    vendor_id = fields.Integer()
    name = fields.Str()
    score = fields.Integer()
    status = fields.Str(validate=validate.OneOf(STATUSES))


class GateDecisionSchema(Schema):
    decision = fields.Str(validate=validate.OneOf(GATE_DECISIONS))
    vendor_id = fields.Integer(allow_none=True)
    status = fields.Str(allow_none=True, validate=validate.OneOf(STATUSES))
    score = fields.Integer(allow_none=True)
    requirement_set = fields.Str(allow_none=True)
    reasons = fields.List(fields.Nested(GateReasonSchema))
    alternatives = fields.List(
        fields.Nested(GateAlternativeSchema),
        metadata={
            "description": "Compliant vendors for the same work type and region, best first."
        },
    )
    decision_id = fields.Str(
        metadata={"description": "Names the stored decision (in the audit log's `gate.decision`)."}
    )


class ErrorBodySchema(Schema):
    code = fields.Str()
    message = fields.Str()
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.Str(),
        values=fields.Raw(),
        metadata={"description": "Validation messages keyed by field path (nested)."},
    )


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema)


# --------------------------------------------------------------------------------------------
# Singletons: build once, reuse everywhere.
# --------------------------------------------------------------------------------------------

external_ref_schema = ExternalRefSchema()
vendor_create_schema = VendorCreateSchema()
vendor_query_schema = VendorQuerySchema()
certificate_schema = CertificateSchema()
requirement_set_schema = RequirementSetSchema()
requirement_key_schema = RequirementKeySchema()
compliance_query_schema = ComplianceQuerySchema()
waiver_schema = WaiverSchema()
gate_request_schema = GateRequestSchema()
cancellation_notice_schema = CancellationNoticeSchema()
audit_query_schema = AuditQuerySchema()
insurer_row_schema = InsurerRowSchema()

vendor_schema = VendorSchema()
vendors_schema = VendorSchema(many=True)
compliance_result_schema = ComplianceResultSchema()
gate_decision_schema = GateDecisionSchema()
error_schema = ErrorSchema()


# --------------------------------------------------------------------------------------------
# Embed links (signed links to the dispatcher page)
# --------------------------------------------------------------------------------------------

EMBED_TTL_DEFAULT = 3600
EMBED_TTL_MIN = 60
#: A link is a bearer credential for one vendor's page: it must not outlive a working week.
EMBED_TTL_MAX = 7 * 24 * 3600


class EmbedLinkRequestSchema(ExternalRefSchema):
    """A signed link to the dispatcher page of the vendor bound to (system, external_id)."""

    ttl_seconds = fields.Integer(
        strict=True,
        load_default=EMBED_TTL_DEFAULT,
        validate=validate.Range(min=EMBED_TTL_MIN, max=EMBED_TTL_MAX),
        metadata={"description": "How long the link works, in seconds."},
    )


class EmbedLinkSchema(Schema):
    url = fields.Str(
        metadata={"description": "Path and query of the page, to append to the connector's URL."}
    )
    expires_at = fields.DateTime(metadata={"description": "When the link stops working (UTC)."})


embed_link_request_schema = EmbedLinkRequestSchema()
embed_link_schema = EmbedLinkSchema()


# --------------------------------------------------------------------------------------------
# Field mappings (admin API)
# --------------------------------------------------------------------------------------------

#: Connection names appear in URLs, like requirement set keys.
CONNECTION_NAME_PATTERN = REQUIREMENT_KEY_PATTERN
MAX_SPEC_TEXT = 256 * 1024


class MappingPathSchema(_Base):
    """The path of a mapping: which connection, canonical object and direction it serves."""

    connection = fields.Str(
        required=True, validate=[validate.Regexp(CONNECTION_NAME_PATTERN), _single_line]
    )
    object = fields.Str(required=True, validate=validate.OneOf(tuple(MAPPING_OBJECTS)))
    direction = fields.Str(required=True, validate=validate.OneOf(MAPPING_DIRECTIONS))


class MappingPutSchema(_Base):
    """A new version: the spec as JSON, as YAML/JSON text, or the name of a shipped default."""

    spec = fields.Dict(metadata={"description": "The mapping spec as a JSON object."})
    spec_text = fields.Str(
        validate=validate.Length(max=MAX_SPEC_TEXT),
        metadata={"description": "The mapping spec as YAML or JSON text."},
    )
    default = fields.Str(
        validate=validate.OneOf(tuple(MAPPING_DEFAULTS)),
        metadata={"description": "Start from this shipped default mapping."},
    )
    note = fields.Str(allow_none=True, validate=validate.Length(max=1000))

    @validates_schema
    def _exactly_one_source(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = [k for k in ("spec", "spec_text", "default") if data.get(k) is not None]
        if len(given) != 1:
            raise ValidationError("Give exactly one of spec, spec_text or default.", "spec")


class MappingRollbackSchema(_Base):
    version = fields.Int(required=True, strict=True, validate=validate.Range(1, MAX_INT32))
    note = fields.Str(allow_none=True, validate=validate.Length(max=1000))


class MappingPreviewSchema(_Base):
    """A sample remote record (or canonical result, outbound) to run through a mapping."""

    record = fields.Dict(required=True)
    version = fields.Int(strict=True, validate=validate.Range(1, MAX_INT32))
    spec = fields.Dict(metadata={"description": "Preview an unsaved spec instead."})


mapping_path_schema = MappingPathSchema()
mapping_put_schema = MappingPutSchema()
mapping_rollback_schema = MappingRollbackSchema()
mapping_preview_schema = MappingPreviewSchema()


# --------------------------------------------------------------------------------------------
# Connections and syncs
# --------------------------------------------------------------------------------------------

SYNCED_OBJECTS = ("vendor", "work_order", "certificate")


class ConnectionObjectSchema(_Base):
    """One remote object a connection syncs, and how."""

    remote = fields.Str(required=True, validate=_not_blank(64))
    canonical = fields.Str(required=True, validate=validate.OneOf(SYNCED_OBJECTS))
    sync_in = fields.Bool(load_default=True)
    push = fields.Bool(load_default=False)
    mapping_in = fields.Str(allow_none=True, validate=validate.OneOf(tuple(MAPPING_DEFAULTS)))
    mapping_out = fields.Str(allow_none=True, validate=validate.OneOf(tuple(MAPPING_DEFAULTS)))


class ConnectionSchema(_Base):
    name = fields.Str(
        required=True, validate=[validate.Regexp(CONNECTION_NAME_PATTERN), _single_line]
    )
    kind = fields.Str(required=True, validate=validate.OneOf(tuple(ADAPTER_REGISTRY)))
    settings = fields.Dict(
        keys=fields.Str(validate=validate.Length(1, 64)),
        load_default=dict,
        metadata={"description": "Adapter settings; secrets only as <name>_env / <name>_file."},
    )
    objects = fields.List(fields.Nested(ConnectionObjectSchema), load_default=list)
    schedule_minutes = fields.Int(
        allow_none=True, strict=True, validate=validate.Range(1, 7 * 24 * 60)
    )
    fail_open = fields.Bool(load_default=False)


class SyncRequestSchema(_Base):
    object = fields.Str(required=True, validate=_not_blank(64))
    full = fields.Bool(load_default=False)


class SyncRunQuerySchema(_PageArgs):
    connection = fields.Str(validate=validate.Length(max=64))
    object = fields.Str(validate=validate.Length(max=64))


connection_schema = ConnectionSchema()
sync_request_schema = SyncRequestSchema()
sync_run_query_schema = SyncRunQuerySchema()


# --------------------------------------------------------------------------------------------
# Webhook subscriptions (outbound events; admin API)
# --------------------------------------------------------------------------------------------

WEBHOOK_SECRET_PREFIX = "whsec_"
#: Standard Webhooks keys are 24 to 64 bytes.
WEBHOOK_KEY_BYTES = (24, 64)
WEBHOOK_DELIVERY_STATUSES = ("pending", "sending", "delivered", "failed")


def _webhook_secret(value: str) -> None:
    problem = "Must be whsec_ followed by the base64 of a 24 to 64 byte key."
    if not value.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValidationError(problem)
    encoded = value[len(WEBHOOK_SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(problem) from None
    if not WEBHOOK_KEY_BYTES[0] <= len(key) <= WEBHOOK_KEY_BYTES[1]:
        raise ValidationError(problem)


def _webhook_url(**kwargs: Any) -> fields.Url:
    return fields.Url(
        schemes={"http", "https"},
        require_tld=False,
        validate=[validate.Length(max=2000), _single_line],
        metadata={"description": "Where events are POSTed (http or https)."},
        **kwargs,
    )


def _webhook_events(**kwargs: Any) -> fields.List:
    return fields.List(
        fields.Str(validate=validate.OneOf(WEBHOOK_EVENT_TYPES)),
        validate=validate.Length(min=1, max=len(WEBHOOK_EVENT_TYPES) * 4),
        metadata={"description": f"Event types to receive: {', '.join(WEBHOOK_EVENT_TYPES)}."},
        **kwargs,
    )


class _WebhookSubscriptionBase(_Base):
    strip_fields = ("name",)

    @post_load
    def _unique_events(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if "events" in data:
            data["events"] = ordered_unique(data["events"])
        return data


class WebhookSubscriptionCreateSchema(_WebhookSubscriptionBase):
    """A subscriber to outbound events; the signing secret is generated unless given."""

    name = fields.Str(required=True, validate=[*_not_blank(200), _single_line])
    url = _webhook_url(required=True)
    events = _webhook_events(required=True)
    secret = fields.Str(
        validate=[validate.Length(max=200), _webhook_secret],
        metadata={"description": "whsec_ + base64 key; omitted: one is generated."},
    )


class WebhookSubscriptionPatchSchema(_WebhookSubscriptionBase):
    """Change a subscription; `active: true` on a paused one resumes it."""

    name = fields.Str(validate=[*_not_blank(200), _single_line])
    url = _webhook_url()
    events = _webhook_events()
    active = fields.Bool(
        metadata={"description": "false stops deliveries; true resumes a paused subscription."}
    )

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give at least one of name, url, events, active.", "_schema")


class WebhookDeliveryQuerySchema(_PageArgs):
    status = fields.Str(validate=validate.OneOf(WEBHOOK_DELIVERY_STATUSES))
    event_type = fields.Str(validate=validate.OneOf(WEBHOOK_EVENT_TYPES))


class WebhookDeliveryCountsSchema(Schema):
    pending = fields.Integer()
    delivered = fields.Integer()
    failed = fields.Integer()


class WebhookSubscriptionSchema(Schema):
    id = fields.Integer()
    name = fields.Str()
    url = fields.Str()
    events = fields.List(fields.Str(validate=validate.OneOf(WEBHOOK_EVENT_TYPES)))
    active = fields.Bool()
    paused = fields.Bool()
    paused_at = fields.DateTime(allow_none=True)
    paused_reason = fields.Str(allow_none=True)
    consecutive_failures = fields.Integer()
    deliveries = fields.Nested(WebhookDeliveryCountsSchema)
    created_at = fields.DateTime()


class WebhookSubscriptionListSchema(Schema):
    items = fields.List(fields.Nested(WebhookSubscriptionSchema))


class WebhookSubscriptionCreatedSchema(WebhookSubscriptionSchema):
    secret = fields.Str(metadata={"description": "The signing secret; shown only this once."})


class WebhookSecretSchema(Schema):
    id = fields.Integer()
    secret = fields.Str(metadata={"description": "The new signing secret; shown only once."})


class WebhookAttemptSchema(Schema):
    at = fields.DateTime()
    status_code = fields.Integer(allow_none=True)
    error = fields.Str(allow_none=True)
    duration_ms = fields.Integer()


class WebhookDeliverySchema(Schema):
    id = fields.Integer()
    event_id = fields.Str(metadata={"description": "The webhook-id header (same on retries)."})
    event_type = fields.Str(validate=validate.OneOf(WEBHOOK_EVENT_TYPES))
    status = fields.Str(validate=validate.OneOf(WEBHOOK_DELIVERY_STATUSES))
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.Str(allow_none=True)
    created_at = fields.DateTime()
    delivered_at = fields.DateTime(allow_none=True)
    payload = fields.Dict(metadata={"description": "{type, timestamp, data}, as sent."})
    attempt_log = fields.List(fields.Nested(WebhookAttemptSchema))


class WebhookDeliveryPageSchema(Schema):
    items = fields.List(fields.Nested(WebhookDeliverySchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


webhook_subscription_create_schema = WebhookSubscriptionCreateSchema()
webhook_subscription_patch_schema = WebhookSubscriptionPatchSchema()
webhook_delivery_query_schema = WebhookDeliveryQuerySchema()
webhook_subscription_schema = WebhookSubscriptionSchema()
webhook_subscription_list_schema = WebhookSubscriptionListSchema()
webhook_subscription_created_schema = WebhookSubscriptionCreatedSchema()
webhook_secret_schema = WebhookSecretSchema()
webhook_delivery_page_schema = WebhookDeliveryPageSchema()
