"""The plain loading path gives exactly what the schema gives, for every schema that has one."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, validate

from connector import schemas as s
from connector.schema_load import load, plain_loader

PLAIN_SCHEMAS = {
    name: schema
    for name, schema in vars(s).items()
    if isinstance(schema, Schema) and plain_loader(schema) is not None
}

_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.just([]),
    st.just({}),
)
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=70)


def _valid_string(field: fields.Field) -> st.SearchStrategy:
    """Strings the field's validators accept (most of them: the checks are the schema's)."""
    lengths = [v for v in field.validators if isinstance(v, validate.Length)]
    low = max([v.min or 0 for v in lengths], default=0)
    high = min([v.max for v in lengths if v.max is not None], default=30)
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            return st.sampled_from([str(c) for c in validator.choices])
        if isinstance(validator, validate.Regexp):
            return st.from_regex(validator.regex, fullmatch=True)
    if isinstance(field, fields.Email):
        return st.emails()
    return st.text("aBz 9-", min_size=max(low, 1), max_size=min(high, 40))


def _valid(field: fields.Field, normalised: bool = False) -> st.SearchStrategy:
    if isinstance(field, s.CalendarDate):
        return st.dates().map(lambda d: d.isoformat())
    if isinstance(field, fields.Integer):
        return st.integers(min_value=1, max_value=10**6)
    if isinstance(field, fields.Nested):
        return _bodies(field.schema, valid=True)
    if isinstance(field, fields.List):
        return st.lists(_valid(field.inner, normalised), max_size=3)
    if not normalised:
        return _valid_string(field)
    # Upper case and spaces the schema strips and lower-cases.
    return _valid_string(field).flatmap(lambda v: st.sampled_from([v, f" {v} ", v.upper()]))


def _any(field: fields.Field) -> st.SearchStrategy:
    if isinstance(field, s.CalendarDate):
        odd = st.sampled_from(
            ["2025-1-1", "20250131", "2025-02-30", "2025-W05-1", "2025-01-31T23:00"]
        )
        return st.one_of(odd, _junk)
    if isinstance(field, fields.Integer):
        bounds = [v.max for v in field.validators if isinstance(v, validate.Range) and v.max]
        edges = st.sampled_from([0, -1, *bounds, *(b + 1 for b in bounds)])
        return st.one_of(edges, _junk, st.just("7"))
    if isinstance(field, fields.Nested):
        return st.one_of(_bodies(field.schema, valid=False), _junk)
    if isinstance(field, fields.List):
        return st.one_of(st.lists(_values(field.inner), max_size=4), _junk, _text)
    lengths = [v.max for v in field.validators if isinstance(v, validate.Length) and v.max]
    long = [st.text("aB ", min_size=n - 2, max_size=n + 2) for n in lengths]
    return st.one_of(_text, st.text(" \tabcXYZ\n", max_size=8), _junk, *long)


def _values(field: fields.Field) -> st.SearchStrategy:
    # Mostly valid values, so that many whole bodies are valid and take the plain path.
    return st.one_of(_valid(field), _valid(field), _valid(field), _any(field))


def _bodies(schema: Schema, *, valid: bool = False) -> st.SearchStrategy:
    normalised = {*getattr(schema, "lower_fields", ()), *getattr(schema, "strip_fields", ())}
    fields_ = schema.load_fields
    if valid:
        values = {name: _valid(f, name in normalised) for name, f in fields_.items()}
    else:
        values = {name: _values(f) for name, f in fields_.items()}
    required = {name: values[name] for name, f in fields_.items() if f.required}
    optional = {name: values[name] for name, f in fields_.items() if not f.required}
    if valid:
        # Bodies the schema accepts (its own rules across fields decide, as in the gate's
        # "vendor or vendor_id"): on these the plain path must give the same result.
        return st.fixed_dictionaries(required, optional=optional).filter(_loads(schema))
    return st.one_of(
        st.fixed_dictionaries(required, optional=optional),
        st.fixed_dictionaries({}, optional={**required, **optional, "unknown_field": _text}),
    )


def _loads(schema: Schema):
    def accepted(body: dict) -> bool:
        try:
            schema.load(body)
        except ValidationError:
            return False
        return True

    return accepted


@pytest.mark.parametrize("name", sorted(PLAIN_SCHEMAS))
def test_the_plain_path_agrees_with_the_schema(name):
    schema = PLAIN_SCHEMAS[name]
    loader = plain_loader(schema)

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(st.one_of(_bodies(schema, valid=True), _bodies(schema)))
    def agrees(body):
        try:
            expected = schema.load(body)
        except ValidationError:
            assert loader(body) is None
        else:
            assert loader(body) in (None, expected)
            assert load(schema, body) == expected

    agrees()


def test_a_plainly_valid_gate_request_takes_the_plain_path():
    body = {
        "work_order": {"system": "dispatch", "external_id": "WO-1"},
        "vendor": {"system": "salesforce", "external_id": "001A"},
        "work_type": " Plumbing ",
        "region": "TX",
        "scheduled_start": "2026-11-29",
        "scheduled_end": "2026-12-01",
        "amount": 500000,
    }

    loaded = plain_loader(s.gate_request_schema)(body)

    assert loaded == s.gate_request_schema.load(body)
    assert loaded["work_type"] == "plumbing" and "vendor_id" not in loaded


def test_a_plainly_valid_vendor_takes_the_plain_path():
    body = {
        "name": "  Northwind Plumbing ",
        "email": "ops@northwind.example",
        "work_types": ["Plumbing", "plumbing ", "HVAC"],
        "regions": ["TX"],
        "external_refs": [{"system": "crm", "external_id": "1"}] * 2,
    }

    loaded = plain_loader(s.vendor_create_schema)(body)

    assert loaded == s.vendor_create_schema.load(body)
    assert loaded["work_types"] == ["plumbing", "hvac"] and len(loaded["external_refs"]) == 1


def test_a_schema_with_fields_the_plain_path_does_not_know_has_no_plain_loader():
    assert plain_loader(s.certificate_schema) is None
    assert plain_loader(s.requirement_set_schema) is None


def test_errors_still_come_from_the_schema():
    body = {"work_order": {"system": "d"}, "work_type": "x", "region": "y"}

    with pytest.raises(ValidationError) as raised:
        load(s.gate_request_schema, body)

    assert set(raised.value.messages) >= {"work_order", "scheduled_start", "vendor"}
