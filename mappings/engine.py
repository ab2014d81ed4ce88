"""Compiling a mapping spec once and applying it to records.

`compile_mapping` validates a spec and turns every rule into a tuple of ready functions (path
readers, bound transforms, checks, writers); applying the mapping is one loop over those tuples,
with no look at the spec. A record is first mapped on that fast path; if anything there goes
wrong (a required value missing, a value a transform cannot read, a record of the wrong shape),
the record is mapped again on the careful path, which reports every problem with its rule and
source. So `apply` never raises for bad data: the outcome carries the errors.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mappings.canonical import (
    ANY,
    STR,
    CanonicalField,
    coerce_constant,
    describe,
    is_certain,
    value_check,
)
from mappings.flow import Scope, Step, rule_flow
from mappings.paths import PathError, compile_getter, compile_setter, parse_path
from mappings.spec import validate_spec
from mappings.transforms import TransformError, as_text


class _Reject(Exception):
    """Raised on the fast path: map this record again carefully."""


class _StepError(Exception):
    """A transform could not convert a value (careful path)."""


@dataclass(slots=True)
class MappingOutcome:
    """What mapping one record gave: the values, every error (each `{"rule", "source",
    "message"}`) and, from `apply_traced`, a per-field trace."""

    values: dict[str, Any]
    errors: list[dict[str, Any]]
    trace: list[dict[str, Any]] | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        """The outcome as JSON-ready data (dates as ISO text), e.g. for a preview response."""
        return {
            "ok": self.ok,
            "record": jsonable(self.values),
            "errors": jsonable(self.errors),
            "trace": jsonable(self.trace),
        }


def jsonable(value: Any) -> Any:
    """`value` with dates and date-times as ISO text, tuples as lists (for JSON)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is True or value is False:
        return "true/false"
    return type(value).__name__


# --------------------------------------------------------------------------------------------
# Compiled pieces
# --------------------------------------------------------------------------------------------


class _Step:
    """One transform of a rule, bound to its parameters."""

    __slots__ = ("fn", "lifted", "name", "run", "transform")

    def __init__(self, step: Step) -> None:
        transform = step.transform
        self.transform, self.name, self.lifted = transform, transform.name, step.lifted
        self.fn = transform.bind(step.params)
        # The fast path checks the input only where its type is not known before (a remote
        # value): there a transform must refuse what the careful path refuses.
        fast = self.fn
        if ANY in step.takes and not transform.strict and ANY not in transform.accepts:
            fast = _guard(fast, transform.accepts_value)
        self.run = _lift(fast) if self.lifted else fast

    def careful(self, value: Any) -> Any:
        if not self.lifted:
            return self._one(value, "")
        if not isinstance(value, list):
            raise _StepError(f"takes a list, not {_kind(value)} {_show(value)}")
        out = []
        for index, item in enumerate(value):
            if item is None or item == "":
                continue
            result = self._one(item, f"[{index}] ")
            if result is not None and result != "":
                out.append(result)
        return out

    def _one(self, value: Any, where: str) -> Any:
        if not self.transform.accepts_value(value):
            raise _StepError(
                f"{where}takes {self.transform.describe_accepts()}, "
                f"not {_kind(value)} {_show(value)}"
            )
        try:
            return self.fn(value)
        except TransformError as err:
            raise _StepError(f"{where}{err}") from None
        except Exception as err:  # a transform's own bug must not stop a sync run
            raise _StepError(f"{where}cannot convert {_show(value)} ({err})") from None


def _guard(fn: Callable[[Any], Any], accepts: Callable[[Any], bool]) -> Callable[[Any], Any]:
    def guarded(value: Any) -> Any:
        if accepts(value):
            return fn(value)
        raise _Reject

    return guarded


def _lift(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def each(values: Any) -> list[Any]:
        # Empty elements in the input make `fn` fail or give empty results; a failure sends
        # the record to the careful path, which leaves them out.
        if values.__class__ is not list:
            raise TransformError("expected a list")
        results = list(map(fn, values))
        if all(results):
            return results
        return [result for result in results if result is not None and result != ""]

    return each


def _chain(runs: tuple[Callable[[Any], Any], ...]) -> Callable[[Any], Any] | None:
    if not runs:
        return None
    if len(runs) == 1:
        return runs[0]
    if len(runs) == 2:
        first, second = runs

        def two(value: Any) -> Any:
            value = first(value)
            return None if value is None else second(value)

        return two

    def many(value: Any) -> Any:
        for run in runs:
            value = run(value)
            if value is None:
                return None
        return value

    return many


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | dict):
        return bool(value)
    return True


def _condition(spec: dict[str, Any]) -> Callable[[Any], bool]:
    get = compile_getter(parse_path(spec["source"]))
    if "equals" in spec:
        wanted = spec["equals"]
        return lambda record: get(record) == wanted
    if "not_equals" in spec:
        unwanted = spec["not_equals"]
        return lambda record: get(record) != unwanted
    if "in" in spec or "not_in" in spec:
        values = frozenset(spec.get("in", spec.get("not_in")))
        inside = "in" in spec

        def member(record: Any) -> bool:
            value = get(record)
            try:
                return (value in values) is inside
            except TypeError:  # an object or a list is in no list of scalars
                return not inside

        return member
    if "present" in spec:
        flag = spec["present"]
        return lambda record: _present(get(record)) is flag
    pattern = re.compile(spec["matches"])

    def matches(record: Any) -> bool:
        value = get(record)
        if value is None or isinstance(value, dict | list):
            return False
        return pattern.search(value if isinstance(value, str) else as_text(value)) is not None

    return matches


def _conditions(specs: list[dict[str, Any]] | None) -> Callable[[Any], bool] | None:
    if not specs:
        return None
    tests = tuple(_condition(s) for s in specs)
    if len(tests) == 1:
        return tests[0]
    return lambda record: all(test(record) for test in tests)


def _sources_getter(paths: list[str]) -> Callable[[Any], Any]:
    getters = tuple(compile_getter(parse_path(p)) for p in paths)

    def get_all(record: Any) -> list[Any] | None:
        values = [v for v in (get(record) for get in getters) if v is not None and v != ""]
        return values or None

    return get_all


def _constant_getter(value: Any) -> Callable[[Any], Any]:
    if isinstance(value, list):
        return lambda record: list(value)
    return lambda record: value


class _FieldRule:
    """A compiled field rule (careful path); `fast` is its tuple for the fast loop."""

    __slots__ = (
        "blank",
        "chain",
        "check",
        "check_kind",
        "choices",
        "default",
        "fast",
        "getter",
        "key",
        "label",
        "required",
        "setter",
        "source_label",
        "steps",
        "store_key",
        "when",
        "write_missing",
    )

    def __init__(
        self, rule: dict[str, Any], scope: Scope, catalog_field: CanonicalField | None
    ) -> None:
        self.label = rule["target"]
        self.when = _conditions(rule.get("when"))
        self.key: str | None = None
        if "constant" in rule:
            constant = rule["constant"]
            if catalog_field is not None and not rule.get("transforms"):
                constant = coerce_constant(constant, catalog_field.type)
            self.getter = _constant_getter(constant)
            self.source_label = None
        elif "sources" in rule:
            self.getter = _sources_getter(rule["sources"])
            self.source_label = ", ".join(rule["sources"])
        else:
            segments = parse_path(rule["source"])
            self.getter = compile_getter(segments)
            if len(segments) == 1 and isinstance(segments[0], str):
                self.key = segments[0]
            self.source_label = rule["source"]
        flow = rule_flow(rule, scope)
        kind, possible = flow.gives, flow.possible
        self.steps = tuple(_Step(step) for step in flow.steps)
        self.chain = _chain(tuple(step.run for step in self.steps))
        self.blank = kind in (STR, ANY)
        target_type = catalog_field.type if catalog_field is not None else ANY
        default = rule.get("default")
        self.default = coerce_constant(default, target_type) if default is not None else None
        self.required = bool(rule.get("required"))
        self.choices = catalog_field.choices if catalog_field is not None else None
        self.check_kind = target_type
        # Values from a closed set already checked against the choices need no check again.
        known = possible is not None and self.choices is not None
        if known and all(v is None or v in self.choices for v in possible):
            self.check = _value_check(kind, target_type, None)
        else:
            self.check = _value_check(kind, target_type, self.choices)
        keys = scope.target_keys(self.label)
        self.setter = compile_setter(keys)
        self.store_key = keys[0] if len(keys) == 1 else None
        self.write_missing = rule.get("on_missing", scope.on_missing) == "null"
        self.fast = (
            self.key,
            self.getter,
            self.when,
            self.chain,
            self.blank,
            self.default,
            self.required,
            self.check,
            self.store_key,
            self.setter,
            self.write_missing,
        )

    def bad_value(self, value: Any) -> str:
        if self.choices is not None and value not in self.choices:
            return f"{_show(value)} is not one of {', '.join(self.choices)}"
        return f"gets {_kind(value)} {_show(value)}, but {self.label} takes " + describe(
            self.check_kind
        )


def _value_check(
    kind: str, target: str, choices: tuple[str, ...] | None
) -> Callable[[Any], bool] | None:
    check = None if is_certain(kind, target) else value_check(target)
    if choices is None:
        return check
    allowed = frozenset(choices)
    if check is None:
        return lambda value: value in allowed
    return lambda value: check(value) and value in allowed


class _ListRule:
    """A compiled `each` or `items` rule: a list of records built by the rules of a level."""

    __slots__ = (
        "fast",
        "getter",
        "groups",
        "label",
        "level",
        "required",
        "setter",
        "source_label",
        "store_key",
        "when",
    )

    def __init__(self, rule: dict[str, Any], scope: Scope, inner: Scope) -> None:
        self.label = rule["target"]
        self.when = _conditions(rule.get("when"))
        self.required = bool(rule.get("required"))
        keys = scope.target_keys(self.label)
        self.setter = compile_setter(keys)
        self.store_key = keys[0] if len(keys) == 1 else None
        self.level: _Level | None = None
        self.groups: tuple[tuple[Callable[[Any], bool] | None, _Level], ...] = ()
        if "each" in rule:
            self.getter = compile_getter(parse_path(rule["source"]))
            self.source_label = rule["source"]
            self.level = _Level(rule["each"], inner)
            mapped = self._fast_each
        else:
            self.getter = None
            self.source_label = None
            self.groups = tuple(
                (_conditions(group.get("when")), _Level(group["fields"], inner))
                for group in rule["items"]
            )
            mapped = self._fast_items
        # Same shape as a field rule's tuple: the "getter" returns the finished list.
        self.fast = (
            None,
            mapped,
            self.when,
            None,
            False,
            None,
            self.required,
            None,
            self.store_key,
            self.setter,
            False,
        )

    def _fast_each(self, record: Any) -> list[dict[str, Any]] | None:
        items = self.getter(record)
        if items is None:
            return None
        if items.__class__ is not list:
            raise _Reject
        run = self.level.run_fast
        return [run(item) for item in items] or None

    def _fast_items(self, record: Any) -> list[dict[str, Any]] | None:
        groups = self.groups
        out = [level.run_fast(record) for when, level in groups if when is None or when(record)]
        return out or None


class _Level:
    """The compiled rules of one record (the top, or the items of a list)."""

    __slots__ = ("fast", "rules")

    def __init__(self, rules: list[dict[str, Any]], scope: Scope) -> None:
        compiled: list[_FieldRule | _ListRule] = []
        for rule in rules:
            if "each" in rule or "items" in rule:
                compiled.append(_ListRule(rule, scope, scope.inner(rule)))
            else:
                compiled.append(_FieldRule(rule, scope, scope.target_field(rule["target"])))
        self.rules = tuple(compiled)
        self.fast = tuple(rule.fast for rule in compiled)

    def run_fast(self, record: Any) -> dict[str, Any]:
        if record.__class__ is not dict:
            raise _Reject
        out: dict[str, Any] = {}
        get = record.get
        for (
            key,
            getter,
            when,
            chain,
            blank,
            default,
            required,
            check,
            store_key,
            setter,
            write_missing,
        ) in self.fast:
            if when is not None and not when(record):
                continue
            value = get(key) if key is not None else getter(record)
            if value is not None and chain is not None:
                value = chain(value)
            if blank and value.__class__ is str and (not value or value.isspace()):
                value = None
            if value is None:
                if default is not None:
                    value = default if default.__class__ is not list else list(default)
                elif required:
                    raise _Reject
                elif not write_missing:
                    continue
            elif check is not None and not check(value):
                raise _Reject
            if store_key is not None:
                out[store_key] = value
            else:
                setter(out, value)
        return out

    def run_careful(self, record: Any, run: _Run, prefix: str, source_prefix: str) -> dict:
        out: dict[str, Any] = {}
        if not isinstance(record, dict):
            run.error(
                prefix.rstrip(".") or None,
                source_prefix.rstrip(".") or None,
                f"expected an object, got {_kind(record)} {_show(record)}",
            )
            return out
        for rule in self.rules:
            if isinstance(rule, _FieldRule):
                _careful_field(rule, record, out, run, prefix, source_prefix)
            else:
                _careful_list(rule, record, out, run, prefix, source_prefix)
        return out


# --------------------------------------------------------------------------------------------
# The careful path
# --------------------------------------------------------------------------------------------


class _Run:
    """Errors (and the trace, when asked for) of one careful mapping."""

    __slots__ = ("errors", "trace")

    def __init__(self, traced: bool) -> None:
        self.errors: list[dict[str, Any]] = []
        self.trace: list[dict[str, Any]] | None = [] if traced else None

    def error(self, rule: str | None, source: str | None, message: str) -> None:
        self.errors.append({"rule": rule, "source": source, "message": message})


def _careful_field(
    rule: _FieldRule, record: dict, out: dict, run: _Run, prefix: str, source_prefix: str
) -> None:
    label = prefix + rule.label
    source = source_prefix + rule.source_label if rule.source_label is not None else None
    entry: dict[str, Any] | None = None
    if run.trace is not None:
        entry = {"rule": label, "source": source}
        run.trace.append(entry)

    def fail(message: str) -> None:
        run.error(label, source, message)
        if entry is not None:
            entry.update(status="error", error=message)

    if rule.when is not None:
        try:
            holds = rule.when(record)
        except PathError as err:
            fail(f"when: {err}")
            return
        if not holds:
            if entry is not None:
                entry["status"] = "skipped"
            return
    try:
        value = rule.getter(record)
    except PathError as err:
        fail(str(err))
        return
    if entry is not None:
        entry["value"] = jsonable(value)
        entry["steps"] = []
    for step in rule.steps:
        if value is None:
            break
        try:
            value = step.careful(value)
        except _StepError as err:
            fail(f"{step.name}: {err}")
            return
        if entry is not None:
            entry["steps"].append({"transform": step.name, "value": jsonable(value)})
    if rule.blank and isinstance(value, str) and (not value or value.isspace()):
        value = None
    status = "ok"
    if value is None:
        if rule.default is not None:
            value = rule.default if not isinstance(rule.default, list) else list(rule.default)
            status = "default"
        elif rule.required:
            fail(f"required, but {source or 'the source'} gives no value")
            return
        else:
            status = "missing"
            if not rule.write_missing:
                if entry is not None:
                    entry.update(status=status, result=None)
                return
    elif rule.check is not None and not rule.check(value):
        fail(rule.bad_value(value))
        return
    rule.setter(out, value)
    if entry is not None:
        entry.update(status=status, result=jsonable(value))


def _careful_list(
    rule: _ListRule, record: dict, out: dict, run: _Run, prefix: str, source_prefix: str
) -> None:
    label = prefix + rule.label
    source = source_prefix + rule.source_label if rule.source_label is not None else None
    if rule.when is not None:
        try:
            if not rule.when(record):
                return
        except PathError as err:
            run.error(label, source, f"when: {err}")
            return
    items: list[dict[str, Any]] = []
    if rule.level is not None:
        try:
            found = rule.getter(record)
        except PathError as err:
            run.error(label, source, str(err))
            return
        if found is not None and not isinstance(found, list):
            run.error(label, source, f"expected a list, got {_kind(found)} {_show(found)}")
            return
        for index, item in enumerate(found or ()):
            items.append(
                rule.level.run_careful(item, run, f"{label}[{index}].", f"{source}[{index}].")
            )
    else:
        for when, level in rule.groups:
            try:
                if when is not None and not when(record):
                    continue
            except PathError as err:
                run.error(f"{label}[{len(items)}]", None, f"when: {err}")
                continue
            items.append(level.run_careful(record, run, f"{label}[{len(items)}].", source_prefix))
    if not items:
        if rule.required:
            run.error(label, source, "required, but there is no item")
        return
    rule.setter(out, items)
    if run.trace is not None:
        run.trace.append({"rule": label, "source": source, "status": "ok", "items": len(items)})


# --------------------------------------------------------------------------------------------
# The compiled mapping
# --------------------------------------------------------------------------------------------


class CompiledMapping:
    """A validated spec compiled once; `apply` maps one record."""

    __slots__ = ("_level", "direction", "object", "spec", "version")

    def __init__(self, spec: dict[str, Any], object: str, direction: str, version: int | None):
        self.spec, self.object, self.direction, self.version = spec, object, direction, version
        self._level = _Level(spec["fields"], Scope.top(object, direction))

    def apply(self, record: Mapping[str, Any]) -> MappingOutcome:
        """Map one record. Never raises for bad data: problems are in `errors`, `ok` is False,
        and `values` holds what could be mapped."""
        try:
            return MappingOutcome(self._level.run_fast(record), [])
        except Exception:  # anything at all: the careful path says what and where
            return self._careful(record, traced=False)

    def apply_traced(self, record: Mapping[str, Any]) -> MappingOutcome:
        """Map one record on the careful path, with a trace per field (for a preview)."""
        return self._careful(record, traced=True)

    def _careful(self, record: Any, *, traced: bool) -> MappingOutcome:
        run = _Run(traced)
        if isinstance(record, Mapping) and not isinstance(record, dict):
            record = dict(record)
        values = self._level.run_careful(record, run, "", "")
        return MappingOutcome(values, run.errors, run.trace)

    def __repr__(self) -> str:
        return f"<CompiledMapping {self.object}/{self.direction} version={self.version}>"


def compile_mapping(
    spec: dict[str, Any], *, object: str, direction: str, version: int | None = None
) -> CompiledMapping:
    """Validate `spec` (MappingSpecError if it is not valid) and compile it once."""
    checked = validate_spec(spec, object=object, direction=direction)
    return CompiledMapping(checked, object, direction, version)
