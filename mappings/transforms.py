"""The transforms a mapping rule may chain: a registry of small pure functions.

Adding a transform is one function under the `@transform` decorator, which names the value types
it takes and gives (for the save-time type check) and the marshmallow fields of its parameters:

    @transform(accepts=STR, returns=STR, params={"length": fields.Int(required=True)})
    def truncate(value: str, length: int) -> str:
        return value[:length]

A transform is called with the value and then its parameters, positionally in the order of its
signature. It is never called with None (a missing value skips the rest of the chain); given
empty text it returns empty text or None (`""` read as a date is no date), and for a value it
cannot convert it raises `TransformError` with a readable message. A transform that takes a
scalar, given a list, is applied to every element (empty results are left out), so `split` then
`lower` lower-cases each part.

`prepare` (optional) turns the loaded parameters into what the function uses at run time
(compiled patterns, normalised tables) once, when the mapping is compiled. `strict` says the
function itself refuses values of other types (as a str method does); otherwise the engine
checks a remote value's type before calling it. `builtin` names a builtin that does the same
job faster (`str.strip`).
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from mappings.canonical import (
    ANY,
    BOOL,
    CENTS,
    DATE,
    DATETIME,
    DICT,
    INT,
    MONEY,
    NUMBER,
    SCALAR_TYPES,
    STR,
    can_reach,
    describe,
    item_type,
    list_of,
    type_of,
    value_check,
)


class TransformError(ValueError):
    """A value the transform cannot convert; the message says why."""


class TypeMismatch(ValueError):
    """A transform placed where the value's type cannot feed it (found when a spec is saved)."""


_ABSENT = object()


@dataclass(frozen=True, slots=True)
class Transform:
    """One registered transform: the function, its parameter schema and its typing."""

    name: str
    fn: Callable[..., Any]
    doc: str
    params: Schema
    accepts: tuple[str, ...]
    returns: str | Callable[[str, dict[str, Any]], str]
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: Which values the transform can give, when that is a closed set (lookup tables, ...).
    outputs: Callable[[dict[str, Any]], list[Any] | None] | None = None
    #: The function itself raises for any value of a type it does not take (as a str method
    #: does), so the engine need not check values first.
    strict: bool = False
    #: A builtin doing the same as the function (of a parameterless transform), used instead.
    builtin: Callable[[Any], Any] | None = None
    _checks: tuple[Callable[[Any], bool], ...] = field(default=(), repr=False)
    #: The classes of values accepted for sure (a quick test before `_checks`).
    _classes: frozenset[type] = field(default=frozenset(), repr=False)
    #: The parameters after the value, in order, with their defaults.
    _signature: tuple[tuple[str, Any], ...] = field(default=(), repr=False)

    def takes(self, kind: str) -> bool:
        return ANY in self.accepts or any(can_reach(kind, a) for a in self.accepts)

    def lifts(self, kind: str) -> bool:
        """Whether a value of type `kind` is a list whose elements this transform maps."""
        inner = item_type(kind)
        return inner is not None and kind != ANY and not self.takes(kind) and self.takes(inner)

    def output_type(self, kind: str, params: dict[str, Any]) -> str:
        """The type this transform gives for an input of type `kind`; TypeMismatch if it cannot
        take that type. `params` are the loaded (not prepared) parameters."""
        if self.lifts(kind):
            return list_of(self.output_type(item_type(kind) or ANY, params))
        if not self.takes(kind):
            wanted = " or ".join(describe(a) for a in self.accepts)
            raise TypeMismatch(f"{self.name} takes {wanted}, not {describe(kind)}")
        return self.returns(kind, params) if callable(self.returns) else self.returns

    def load_params(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Validated parameters (marshmallow ValidationError otherwise)."""
        return self.params.load(raw)

    def bind(self, loaded: dict[str, Any]) -> Callable[[Any], Any]:
        """The function of one value, parameters prepared and bound (positionally: calls with
        keywords cost several times more, and this runs for every value mapped)."""
        params = self.prepare(dict(loaded)) if self.prepare else loaded
        args = tuple(params.get(name, default) for name, default in self._signature)
        fn = self.fn
        if not args:
            return self.builtin or fn
        if len(args) == 1:
            (first,) = args
            return lambda value: fn(value, first)
        if len(args) == 2:
            first, second = args
            return lambda value: fn(value, first, second)
        return lambda value: fn(value, *args)

    def accepts_value(self, value: Any) -> bool:
        if not self._checks or value.__class__ in self._classes:
            return True
        return any(check(value) for check in self._checks)

    def describe_accepts(self) -> str:
        return " or ".join(describe(a) for a in self.accepts)


_CLASSES: dict[str, tuple[type, ...]] = {
    STR: (str,),
    INT: (int,),
    MONEY: (int,),
    CENTS: (int,),
    BOOL: (bool,),
    NUMBER: (float,),
    DATE: (dt.date,),
    DATETIME: (dt.datetime,),
    DICT: (dict,),
}

#: name -> Transform. Filled by the `@transform` functions below.
TRANSFORMS: dict[str, Transform] = {}


def transform(
    *,
    accepts: str | tuple[str, ...],
    returns: str | Callable[[str, dict[str, Any]], str],
    params: Mapping[str, fields.Field] | type[Schema] | None = None,
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    outputs: Callable[[dict[str, Any]], list[Any] | None] | None = None,
    strict: bool = False,
    builtin: Callable[[Any], Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the transform of its name. `accepts` / `returns`
    are value types (a function of the input type and the parameters may compute `returns`),
    `params` the marshmallow fields (or Schema) of the parameters; see `Transform` for the
    rest."""
    accepted = (accepts,) if isinstance(accepts, str) else tuple(accepts)

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        checks = tuple(c for c in (value_check(a) for a in accepted) if c is not None)
        if isinstance(params, type):
            schema = params()
        else:
            schema = Schema.from_dict(dict(params or {}), name=f"{fn.__name__}_params")()
        TRANSFORMS[fn.__name__] = Transform(
            name=fn.__name__,
            fn=fn,
            doc=(fn.__doc__ or "").strip(),
            params=schema,
            accepts=accepted,
            returns=returns,
            prepare=prepare,
            outputs=outputs,
            strict=strict or builtin is not None,
            builtin=builtin,
            _checks=() if ANY in accepted else checks,
            _classes=frozenset(c for a in accepted for c in _CLASSES.get(a, ())),
            _signature=tuple(
                (p.name, None if p.default is inspect.Parameter.empty else p.default)
                for p in list(inspect.signature(fn).parameters.values())[1:]
            ),
        )
        return fn

    return register


# --------------------------------------------------------------------------------------------
# Parameter fields and checks
# --------------------------------------------------------------------------------------------


class Scalar(fields.Field):
    """Text, a number, true/false or null: a value written in a spec."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if value is None or isinstance(value, str | bool | int):
            return value
        if isinstance(value, float) and value == value and abs(value) != float("inf"):
            return value
        raise ValidationError("Must be text, a number, true, false or null.")


def check_regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as err:
        raise ValidationError(f"Not a valid regular expression: {err}.") from None


def _regex() -> fields.Str:
    return fields.Str(required=True, validate=[validate.Length(min=1, max=500), check_regex])


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


@transform(accepts=STR, returns=STR, builtin=str.strip)
def strip(value: str) -> str:
    """Remove leading and trailing whitespace."""
    return value.strip()


@transform(accepts=STR, returns=STR, builtin=str.lower)
def lower(value: str) -> str:
    """Lower-case the text."""
    return value.lower()


@transform(accepts=STR, returns=STR, builtin=str.upper)
def upper(value: str) -> str:
    """Upper-case the text."""
    return value.upper()


@transform(accepts=STR, returns=STR, builtin=str.title)
def title(value: str) -> str:
    """Capitalise each word."""
    return value.title()


@transform(
    accepts=STR,
    returns=STR,
    params={"length": fields.Int(required=True, strict=True, validate=validate.Range(1))},
)
def truncate(value: str, length: int) -> str:
    """Cut the text to at most `length` characters (e.g. a remote field's size)."""
    return value[:length]


def as_text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


@transform(accepts=(STR, INT, NUMBER, BOOL, DATE, DATETIME), returns=STR)
def to_str(value: Any) -> str:
    """Write a number, true/false or date as text (`42`, `true`, `2026-12-31`)."""
    return value if isinstance(value, str) else as_text(value)


def _prepare_regex(params: dict[str, Any]) -> dict[str, Any]:
    params["pattern"] = re.compile(params["pattern"])
    return params


def _prepare_extract(params: dict[str, Any]) -> dict[str, Any]:
    pattern = re.compile(params["pattern"])
    group = params.get("group")
    if group is None:
        group = 1 if pattern.groups else 0
    return {"pattern": pattern, "group": group}


class _ExtractParams(Schema):
    pattern = _regex()
    group = fields.Raw(metadata={"note": "group number or name; default 1 (0 if none)"})

    @validates_schema
    def _check_group(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "group" not in data:
            return
        group, pattern = data["group"], re.compile(data["pattern"])
        if isinstance(group, bool) or not isinstance(group, int | str):
            raise ValidationError("Must be a group number or name.", "group")
        if isinstance(group, int) and not 0 <= group <= pattern.groups:
            raise ValidationError(f"The pattern has {pattern.groups} group(s).", "group")
        if isinstance(group, str) and group not in pattern.groupindex:
            raise ValidationError(f"The pattern has no group named {group!r}.", "group")


@transform(accepts=STR, returns=STR, params=_ExtractParams, prepare=_prepare_extract, strict=True)
def regex_extract(value: str, pattern: re.Pattern[str], group: int | str) -> str | None:
    """The part of the text a regular expression finds (its first group); empty if none."""
    match = pattern.search(value)
    return None if match is None else match.group(group)


@transform(
    accepts=STR,
    returns=STR,
    params={"pattern": _regex(), "replace": fields.Str(validate=validate.Length(max=200))},
    prepare=_prepare_regex,
    strict=True,
)
def regex_replace(value: str, pattern: re.Pattern[str], replace: str = "") -> str:
    """Replace every match of a regular expression (`\\1` refers to a group)."""
    return pattern.sub(replace, value)


# --------------------------------------------------------------------------------------------
# Lists
# --------------------------------------------------------------------------------------------


@transform(
    accepts=STR,
    returns=list_of(STR),
    params={
        "sep": fields.Str(validate=validate.Length(min=1, max=10)),
        "strip": fields.Bool(),
    },
    strict=True,
)
def split(value: str, sep: str = ",", strip: bool = True) -> list[str] | None:
    """Split text into a list at `sep` (default `,`); parts are stripped, empty ones dropped."""
    if not value.strip():
        return None
    parts = value.split(sep)
    return list(filter(None, map(str.strip, parts) if strip else parts))


def _item_of(kind: str, params: dict[str, Any]) -> str:
    return item_type(kind) or ANY


def _scalar_texts(values: list[Any], key: str | None) -> list[str]:
    out: list[str] = []
    for item in values:
        if key is not None:
            if not isinstance(item, dict):
                raise TransformError(f"{item!r} is not a record with {key!r}")
            item = item.get(key)
        if item is None or item == "":
            continue
        if isinstance(item, dict | list):
            raise TransformError(f"{item!r} is not text")
        out.append(as_text(item))
    return out


def _join_type(kind: str, params: dict[str, Any]) -> str:
    inner = item_type(kind)
    if inner == DICT and params.get("key") is None:
        raise TypeMismatch("join of a list of records needs `key` (the field to join)")
    if params.get("key") is not None and inner not in (DICT, ANY):
        raise TypeMismatch("`key` applies to a list of records")
    return STR


@transform(
    accepts=(list_of(ANY),),
    returns=_join_type,
    params={
        "sep": fields.Str(validate=validate.Length(max=10)),
        "key": fields.Str(validate=validate.Length(min=1, max=100)),
    },
)
def join(value: list[Any], sep: str = ", ", key: str | None = None) -> str:
    """Join a list into text with `sep` (default `, `); `key` takes that field of each record
    (e.g. the `message` of each deficiency). Empty elements are left out."""
    return sep.join(_scalar_texts(value, key))


@transform(
    accepts=(list_of(ANY),),
    returns=STR,
    params={"sep": fields.Str(validate=validate.Length(max=10))},
)
def concat(value: list[Any], sep: str = " ") -> str:
    """Join the values of `sources` into one text with `sep` (default a space), leaving out
    empty ones."""
    return sep.join(_scalar_texts(value, None))


@transform(accepts=(list_of(ANY),), returns=_item_of)
def coalesce(value: list[Any]) -> Any:
    """The first value that is not empty (of `sources`, or of a list)."""
    for item in value:
        if item is not None and item != "":
            return item
    return None


def _to_list_type(kind: str, params: dict[str, Any]) -> str:
    return kind if item_type(kind) is not None else list_of(kind)


@transform(accepts=ANY, returns=_to_list_type)
def to_list(value: Any) -> list[Any] | None:
    """Make a single value a list of one (a list stays as it is)."""
    if isinstance(value, list):
        return value
    return None if value == "" else [value]


# --------------------------------------------------------------------------------------------
# Numbers and money
# --------------------------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.0*)?")


@transform(accepts=(STR, INT, NUMBER), returns=INT, strict=True)
def parse_int(value: Any) -> int | None:
    """Read a whole number: `42`, `1,200`, `42.0`, or a number sent as such."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if not _INTEGER.fullmatch(text):
            raise TransformError(f"{value!r} is not a whole number")
        return int(text.split(".")[0].replace(",", ""))
    if value is True or value is False:
        raise TransformError(f"{value!r} is not a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise TransformError(f"{value!r} is not a whole number")
        return int(value)
    if isinstance(value, int):
        return value
    raise TransformError(f"{value!r} is not a whole number")


_AMOUNT = re.compile(
    r"(?P<neg>-)?\s*(?:[$€£]|USD|US\$|EUR|GBP|CAD)?\s*(?P<neg2>-)?\s*"
    r"(?P<num>\d{1,3}(?:,\d{3})+|\d+)?(?P<frac>\.\d+)?"
    r"\s*(?P<suffix>mm|k|m|b)?\s*(?:USD|EUR|GBP|CAD)?",
    re.IGNORECASE,
)
_SCALE = {None: 1, "k": 1_000, "m": 1_000_000, "mm": 1_000_000, "b": 1_000_000_000}
_UNITS = ("units", "cents")


def _money_type(kind: str, params: dict[str, Any]) -> str:
    return CENTS if params.get("unit") == "cents" else MONEY


def _unit_field() -> fields.Str:
    return fields.Str(validate=validate.OneOf(_UNITS))


@transform(
    accepts=(STR, INT, NUMBER),
    returns=_money_type,
    params={"unit": _unit_field()},
    strict=True,
)
def parse_money(value: Any, unit: str = "units") -> int | None:
    """Read an amount of money: `$1,000,000`, `1M`, `1.5MM`, `250K`, `1000000.00`, numbers.
    `unit: units` (default) gives whole currency units (limits), `unit: cents` gives cents
    (work-order amounts)."""
    if value is True or value is False:
        raise TransformError(f"{value!r} is not an amount")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TransformError(f"{value!r} is not an amount")
        amount = Decimal(repr(value))
    else:
        text = value.strip()
        if not text:
            return None
        match = _AMOUNT.fullmatch(text)
        if (
            match is None
            or (match["num"] is None and match["frac"] is None)
            or (match["neg"] and match["neg2"])
        ):
            raise TransformError(f"{value!r} is not an amount")
        try:
            amount = Decimal((match["num"] or "0").replace(",", "") + (match["frac"] or ""))
        except InvalidOperation:  # pragma: no cover - the pattern admits digits only
            raise TransformError(f"{value!r} is not an amount") from None
        amount *= _SCALE[(match["suffix"] or "").lower() or None]
        if match["neg"] or match["neg2"]:
            amount = -amount
    if unit == "cents":
        amount *= 100
    if amount != amount.to_integral_value():
        if unit == "cents":
            raise TransformError(f"{value!r} has a fraction of a cent")
        raise TransformError(f"{value!r} is not a whole amount (use unit: cents for cents)")
    return int(amount)


@transform(
    accepts=(INT, MONEY, CENTS),
    returns=STR,
    params={
        "unit": _unit_field(),
        "symbol": fields.Str(validate=validate.Length(max=5)),
        "thousands": fields.Str(validate=validate.OneOf(("", ",", " ", ".", "'"))),
    },
)
def format_money(value: int, unit: str = "units", symbol: str = "", thousands: str = ",") -> str:
    """Write an amount as text: `1,000,000` (units) or `1,234.56` (cents), after `symbol`."""
    sign = "-" if value < 0 else ""
    whole, cents = divmod(abs(value), 100) if unit == "cents" else (abs(value), None)
    text = f"{whole:,}".replace(",", thousands)
    if cents is not None:
        text += f".{cents:02d}"
    return f"{sign}{symbol}{text}"


# --------------------------------------------------------------------------------------------
# Booleans
# --------------------------------------------------------------------------------------------

TRUE_TEXTS = ("true", "t", "yes", "y", "1", "x", "/1", "/yes", "/on", "on", "checked")
FALSE_TEXTS = ("false", "f", "no", "n", "0", "/off", "/0", "off", "unchecked")


def _prepare_bool(params: dict[str, Any]) -> dict[str, Any]:
    truthy = frozenset(v.strip().lower() for v in params.get("true", TRUE_TEXTS))
    falsy = frozenset(v.strip().lower() for v in params.get("false", FALSE_TEXTS))
    return {"table": {**dict.fromkeys(falsy, False), **dict.fromkeys(truthy, True)}}


def _texts() -> fields.List:
    return fields.List(
        fields.Str(validate=validate.Length(min=1, max=50)),
        validate=validate.Length(min=1, max=50),
    )


class _BoolParams(Schema):
    true = _texts()
    false = _texts()

    @validates_schema
    def _disjoint(self, data: dict[str, Any], **kwargs: Any) -> None:
        truthy = {v.strip().lower() for v in data.get("true", TRUE_TEXTS)}
        falsy = {v.strip().lower() for v in data.get("false", FALSE_TEXTS)}
        both = sorted(truthy & falsy)
        if both:
            raise ValidationError(f"Both true and false: {', '.join(both)}.", "false")


@transform(
    accepts=(STR, BOOL, INT), returns=BOOL, params=_BoolParams, prepare=_prepare_bool, strict=True
)
def parse_bool(value: Any, table: dict[str, bool]) -> bool | None:
    """Read yes/no: `Y`/`N`, `X`, `/1` (ACORD check box), `true`/`false`, `1`/`0`, `yes`/`no`
    (any case). `true` / `false` replace the lists of texts that mean yes and no."""
    if value is True or value is False:
        return value
    if isinstance(value, int):
        if value in (0, 1):
            return value == 1
        raise TransformError(f"{value!r} is not a yes/no value")
    text = value.strip().lower()
    if not text:
        return None
    try:
        return table[text]
    except KeyError:
        raise TransformError(f"{value!r} is not a yes/no value") from None


def _format_bool_type(kind: str, params: dict[str, Any]) -> str:
    kinds = {type_of(params.get("true", True)), type_of(params.get("false", False))}
    kinds.discard(type_of(None))
    return kinds.pop() if len(kinds) == 1 else ANY


@transform(
    accepts=BOOL,
    returns=_format_bool_type,
    params={"true": Scalar(), "false": Scalar()},
    outputs=lambda p: [p.get("true", True), p.get("false", False)],
)
def format_bool(value: bool, true: Any = True, false: Any = False) -> Any:
    """Write true/false as the remote system's values, e.g. a check box `X` / `` or Business
    Central's `Blocked`: `Payment` / `_blank_`."""
    return true if value else false


# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------

_SAMPLE = dt.datetime(2026, 12, 31, 13, 45, 30)
_SIMPLE_FORMAT = re.compile(r"(?:%[Ymd]|[^%])+")
_DIRECTIVES = {"%Y": r"(\d{4})", "%m": r"(\d{1,2})", "%d": r"(\d{1,2})"}


def _check_date_format(fmt: str) -> None:
    if fmt == "iso":
        return
    try:
        written = _SAMPLE.strftime(fmt)
        read = dt.datetime.strptime(written, fmt)
    except (ValueError, TypeError) as err:
        raise ValidationError(f"{fmt!r} is not a usable date format: {err}.") from None
    if read.date() != _SAMPLE.date():
        raise ValidationError(f"{fmt!r} cannot read a whole date (it needs year, month and day).")


def _date_formats() -> fields.List:
    return fields.List(
        fields.Str(validate=[validate.Length(min=1, max=50), _check_date_format]),
        validate=validate.Length(min=1, max=10),
        metadata={"note": "`iso` or strptime formats such as `%m/%d/%Y`"},
    )


DateReader = Callable[[str], dt.datetime | dt.date | None]


_ISO_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ].*)?")


def _iso_reader(text: str) -> dt.date | dt.datetime | None:
    if not _ISO_SHAPE.fullmatch(text):
        return None
    if len(text) == 10:
        return dt.date.fromisoformat(text)
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        dt.date.fromisoformat(text[:10])  # raises if the day itself is not real
        return None


def _reader(fmt: str) -> DateReader:
    """A function reading one format: None if the text does not have its shape; ValueError if
    it does but names no real day (`31/02/2026`)."""
    if fmt == "iso":
        return _iso_reader
    if _SIMPLE_FORMAT.fullmatch(fmt):
        order = re.findall(r"%[Ymd]", fmt)
        if sorted(order) == ["%Y", "%d", "%m"]:
            regex = re.compile(
                "".join(_DIRECTIVES.get(part, re.escape(part)) for part in re.split(r"(%.)", fmt))
            )
            slots = {d: order.index(d) + 1 for d in order}

            def read_simple(text: str) -> dt.date | None:
                match = regex.fullmatch(text)
                if match is None:
                    return None
                return dt.date(
                    int(match[slots["%Y"]]), int(match[slots["%m"]]), int(match[slots["%d"]])
                )

            return read_simple

    def read(text: str) -> dt.datetime | None:
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError as err:
            if "does not match format" in str(err) or "unconverted data" in str(err):
                return None
            raise

    return read


def _prepare_dates(params: dict[str, Any]) -> dict[str, Any]:
    formats = tuple(params.get("formats", ("iso",)))
    return {"readers": tuple(_reader(f) for f in formats), "formats": ", ".join(formats)}


def _read_date(text: str, readers: tuple[DateReader, ...], formats: str) -> Any:
    problem = None
    for reader in readers:
        try:
            found = reader(text)
        except ValueError as err:
            problem = problem or err
            continue
        if found is not None:
            return found
    if problem is not None:
        raise TransformError(f"{text!r} is not a real date ({problem})")
    raise TransformError(f"{text!r} does not match the date format {formats}")


@transform(
    accepts=(STR, DATE, DATETIME),
    returns=DATE,
    params={"formats": _date_formats()},
    prepare=_prepare_dates,
    strict=True,
)
def parse_date(value: Any, readers: tuple[DateReader, ...], formats: str) -> dt.date | None:
    """Read a calendar date with the given formats, tried in order: `iso` (the default,
    `2026-12-31`; of a date-time the date as written is kept) or strptime formats such as
    `%m/%d/%Y` (`12/31/2026`). `31/02/2026` is an error, not March."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = value.strip()
    if not text:
        return None
    found = _read_date(text, readers, formats)
    return found.date() if isinstance(found, dt.datetime) else found


@transform(
    accepts=(STR, DATE, DATETIME),
    returns=DATETIME,
    params={"formats": _date_formats()},
    prepare=_prepare_dates,
    strict=True,
)
def parse_datetime(value: Any, readers: tuple[DateReader, ...], formats: str) -> dt.datetime | None:
    """Read a date-time (`iso` by default, or strptime formats) as UTC; a time without an
    offset is taken as UTC, a date alone as its midnight."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        value = _read_date(text, readers, formats)
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


_STRFTIME_DIRECTIVES = set("aAwdbBmyYHIpMSfzZjUWcxXGuV%")


def _check_output_format(fmt: str) -> None:
    if fmt == "iso":
        return
    directives = re.findall(r"%(.?)", fmt)
    if not directives:
        raise ValidationError(f"{fmt!r} has no date directive such as %Y.")
    unknown = [d for d in directives if d not in _STRFTIME_DIRECTIVES]
    if unknown:
        raise ValidationError(f"%{unknown[0]} is not a date directive.")
    try:
        _SAMPLE.strftime(fmt)
    except ValueError as err:
        raise ValidationError(f"{fmt!r} is not a usable date format: {err}.") from None


@transform(
    accepts=(DATE, DATETIME, STR),
    returns=STR,
    params={"format": fields.Str(validate=[validate.Length(min=1, max=50), _check_output_format])},
    strict=True,
)
def format_date(value: Any, format: str = "iso") -> str | None:
    """Write a date as text: `iso` (default, `2026-12-31`) or a strftime format such as
    `%m/%d/%Y`. An ISO date text is read first."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise TransformError(f"{value!r} is not an ISO date") from None
    if format == "iso":
        return value.isoformat()
    return value.strftime(format)


# --------------------------------------------------------------------------------------------
# Lookup tables
# --------------------------------------------------------------------------------------------


def _lookup_key(value: Any, fold: bool) -> Any:
    if isinstance(value, str):
        text = value.strip()
        return text.lower() if fold else text
    return as_text(value) if not isinstance(value, dict | list) else value


def _prepare_lookup(params: dict[str, Any]) -> dict[str, Any]:
    fold = not params.get("case_sensitive", False)
    table = {_lookup_key(k, fold): v for k, v in params["table"].items()}
    default = params.get("default", _ABSENT)
    known = ", ".join(sorted(map(str, params["table"])))
    if len(known) > 200:
        known = known[:200] + "..."
    return {
        "table": table,
        "fold": fold,
        "default": default,
        "keep_unknown": params.get("keep_unknown", False),
        "known": known,
    }


def _lookup_type(kind: str, params: dict[str, Any]) -> str:
    values = [v for v in params.get("table", {}).values() if v is not None]
    if params.get("default") is not None:
        values.append(params["default"])
    kinds = {type_of(v) for v in values}
    if params.get("keep_unknown"):
        kinds.add(kind)
    return kinds.pop() if len(kinds) == 1 else ANY


def _lookup_outputs(params: dict[str, Any]) -> list[Any] | None:
    if params.get("keep_unknown"):
        return None
    values = [v for v in params.get("table", {}).values() if v is not None]
    if params.get("default") is not None:
        values.append(params["default"])
    return values


@transform(
    accepts=(*SCALAR_TYPES, NUMBER),
    returns=_lookup_type,
    params={
        "table": fields.Dict(
            keys=fields.Str(validate=validate.Length(max=200)),
            values=Scalar(),
            required=True,
            validate=validate.Length(min=1, max=5000),
        ),
        "default": Scalar(),
        "keep_unknown": fields.Bool(),
        "case_sensitive": fields.Bool(),
    },
    prepare=_prepare_lookup,
    outputs=_lookup_outputs,
    strict=True,
)
def lookup(
    value: Any,
    table: dict[Any, Any],
    fold: bool,
    default: Any,
    keep_unknown: bool,
    known: str,
) -> Any:
    """Translate through a table: trade codes to work types, picklist values to statuses,
    statuses to picklist values. Keys match after stripping and ignoring case (unless
    `case_sensitive`); a value not in the table gives `default` if one is set, itself with
    `keep_unknown: true`, else an error. A table value of null means "no value"."""
    key = value.strip().lower() if fold and isinstance(value, str) else _lookup_key(value, fold)
    try:
        return table[key]
    except KeyError:
        if key == "":
            return None  # an empty value stays empty
    except TypeError:
        raise TransformError(f"{value!r} cannot be looked up") from None
    if default is not _ABSENT:
        return default
    if keep_unknown:
        return value
    raise TransformError(f"{value!r} is not in the lookup table (known: {known})")
