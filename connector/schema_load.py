"""Loading input through a request schema, with a fast path for plainly valid input.

`load(schema, data)` returns exactly what `schema.load(data)` returns. For the flat request
schemas (strings, strict integers, calendar dates, nested references and lists of them) a
`PlainLoader` compiled once from the schema loads input that is plainly valid without
marshmallow's machinery, which was the largest single cost of the gate's request path (57 µs of
a gate body's load, against under 10 µs here) and of a sync's validation. It applies the same
field validators, the same stripping and lower-casing (`_Base.strip_fields` / `lower_fields`),
and the schema's own `validates_schema` and `post_load` hooks, in marshmallow's order. Anything
else — a wrong type, a missing or unknown field, a value a validator refuses — goes through
`schema.load`, which accepts it or gives the reasons it does not, so error messages come from
one place only. A property test checks the two paths always agree.

A schema with a field type or hook the plain path does not know has no plain loader: `load`
then always uses `schema.load`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from marshmallow import Schema, ValidationError, fields
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA

from connector.schemas import CalendarDate, ordered_unique

#: Marks "not plainly valid" inside the plain path (None is a value a field may hold).
_REFUSED = object()
_MISSING = object()

Convert = Callable[[Any], Any]


class Unsupported(TypeError):
    """The schema has a field or hook the plain path does not handle."""


class PlainLoader:
    """`schema.load` for plainly valid input; `None` for anything else (see the module)."""

    def __init__(self, schema: Schema) -> None:
        hooks = type(schema)._hooks
        if hooks[VALIDATES] or any(name != "_normalise" for name, *_ in hooks[PRE_LOAD]):
            raise Unsupported(f"{type(schema).__name__}: field validators or pre_load hooks")
        if schema.many or schema.load_only or schema.only or schema.exclude or schema.partial:
            raise Unsupported(f"{type(schema).__name__}: options other than the defaults")
        strip = set(getattr(schema, "strip_fields", ()))
        lower = set(getattr(schema, "lower_fields", ()))
        self._fields: dict[str, tuple[Convert, Any, bool]] = {}
        for name, field in schema.load_fields.items():
            if field.data_key not in (None, name) or field.attribute not in (None, name):
                raise Unsupported(f"{type(schema).__name__}.{name}: data_key or attribute")
            if isinstance(field, fields.List):
                self._fields[name] = (
                    _list(field, _scalar(field.inner, lower=name in lower)),
                    field.load_default,
                    field.required,
                )
            else:
                convert = _scalar(field, strip=name in strip, lower=name in lower)
                self._fields[name] = (convert, field.load_default, field.required)
        if any(many for _, many, _ in hooks[VALIDATES_SCHEMA] + hooks[POST_LOAD]):
            raise Unsupported(f"{type(schema).__name__}: hooks on the whole collection")
        self._validators = [
            (getattr(schema, name), kwargs.get("pass_original", False))
            for name, _, kwargs in hooks[VALIDATES_SCHEMA]
        ]
        # `_Base._dedupe` is done here, on the lists it would de-duplicate.
        self._post_load = [getattr(schema, name) for name, *_ in hooks[POST_LOAD]]
        self._dedupe: list[str] = []
        if any(name == "_dedupe" for name, *_ in hooks[POST_LOAD]):
            self._post_load.remove(schema._dedupe)
            self._dedupe = [n for n in lower if isinstance(schema.load_fields.get(n), fields.List)]
        self._hook_kwargs = {"many": False, "partial": None, "unknown": schema.unknown}

    def __call__(self, data: Any) -> dict[str, Any] | None:
        if type(data) is not dict or not data.keys() <= self._fields.keys():
            return None
        out: dict[str, Any] = {}
        for name, (convert, default, required) in self._fields.items():
            value = data.get(name, _MISSING)
            if value is _MISSING:
                if required:
                    return None
                if default is not fields.missing_:
                    out[name] = default() if callable(default) else default
                continue
            value = convert(value)
            if value is _REFUSED:
                return None
            out[name] = value
        try:
            for validator, pass_original in self._validators:
                if pass_original:
                    validator(out, data, **self._hook_kwargs)
                else:
                    validator(out, **self._hook_kwargs)
        except ValidationError:
            return None
        for name in self._dedupe:
            if type(out.get(name)) is list:
                out[name] = ordered_unique(out[name])
        for process in self._post_load:
            out = process(out, **self._hook_kwargs)
        return out


def _validated(field: fields.Field, convert: Convert) -> Convert:
    """`convert`, then the field's validators; None only where the field allows it."""
    validators = tuple(field.validators)
    allow_none = field.allow_none

    def run(value: Any) -> Any:
        if value is None:
            return None if allow_none else _REFUSED
        value = convert(value)
        if value is _REFUSED:
            return value
        try:
            for validator in validators:
                # A validator may return False instead of raising (marshmallow treats it so).
                if validator(value) is False:
                    return _REFUSED
        except ValidationError:
            return _REFUSED
        return value

    return run


def _scalar(field: fields.Field, *, strip: bool = False, lower: bool = False) -> Convert:
    if isinstance(field, CalendarDate):
        return _validated(field, _date)
    if type(field) in (fields.String, fields.Email):
        return _validated(field, _text(strip=strip or lower, lower=lower))
    if type(field) is fields.Integer and field.strict:
        return _validated(field, _integer)
    if type(field) is fields.Nested and not field.many and not (field.only or field.exclude):
        nested = PlainLoader(field.schema)
        return _validated(field, lambda value: _REFUSED if (v := nested(value)) is None else v)
    raise Unsupported(f"{type(field).__name__} fields")


def _list(field: fields.List, inner: Convert) -> Convert:
    def convert(values: Any) -> Any:
        if type(values) is not list:
            return _REFUSED
        out = [inner(value) for value in values]
        return _REFUSED if any(value is _REFUSED for value in out) else out

    return _validated(field, convert)


def _text(*, strip: bool, lower: bool) -> Convert:
    def convert(value: Any) -> Any:
        if type(value) is not str:
            return _REFUSED
        if strip:
            value = value.strip()
        return value.lower() if lower else value

    return convert


def _integer(value: Any) -> Any:
    return value if type(value) is int else _REFUSED


def _date(value: Any) -> Any:
    # Only the plain YYYY-MM-DD form; the other forms ISO allows go through the schema.
    if type(value) is not str or len(value) != 10 or value[4] != "-" or value[7] != "-":
        return _REFUSED
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return _REFUSED


_LOADERS: WeakKeyDictionary[Schema, PlainLoader | None] = WeakKeyDictionary()


def plain_loader(schema: Schema) -> PlainLoader | None:
    """The schema's plain loader, compiled on first use; None when it cannot have one."""
    try:
        return _LOADERS[schema]
    except KeyError:
        pass
    try:
        loader = _LOADERS[schema] = PlainLoader(schema)
    except Unsupported:
        loader = _LOADERS[schema] = None
    return loader


def load(schema: Schema, data: Any) -> Any:
    """`schema.load(data)`, taking the plain path when the input is plainly valid."""
    loader = plain_loader(schema)
    if loader is not None:
        loaded = loader(data)
        if loaded is not None:
            return loaded
    return schema.load(data)
