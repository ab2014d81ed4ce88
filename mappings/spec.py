"""Reading and validating mapping specs.

`load_spec_text` reads YAML or JSON text; `validate_spec` checks a spec for one canonical object
and direction and returns it normalised (transforms written `{name: ..., <params>}`, `when` a list
of conditions), ready to store as JSON. Problems raise `MappingSpecError`, whose `errors` are
marshmallow-style messages keyed by rule path:
`{"fields": {2: {"transforms": {0: {"name": ["unknown transform 'foo'"]}}}}}`.

The shape of a spec is checked with marshmallow schemas, one rule at a time so that every rule's
problems are reported; what a rule means (its canonical field exists, its transforms can feed one
another and the target, its constants fit) is checked after, against the catalog of the object.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from mappings.canonical import (
    DIRECTIONS,
    OBJECTS,
    CanonicalField,
    can_reach,
    coerce_constant,
    describe,
)
from mappings.flow import FlowError, Scope, rule_flow
from mappings.paths import parse_path
from mappings.transforms import TRANSFORMS, Scalar, check_regex

MAX_RULES = 500
MAX_DEPTH = 3
MAX_SPEC_NESTING = 30
OPERATORS = ("equals", "not_equals", "in", "not_in", "present", "matches")
ON_MISSING = ("omit", "null")


class MappingSpecError(Exception):
    """A spec that cannot be used; `errors` says where and why (marshmallow-style)."""

    def __init__(self, errors: dict[Any, Any]) -> None:
        super().__init__(_first_message(errors))
        self.errors = errors


def _first_message(errors: Any, path: str = "") -> str:
    if isinstance(errors, dict):
        for key, value in errors.items():
            return _first_message(value, f"{path}.{key}" if path else str(key))
    if isinstance(errors, list) and errors:
        return f"{path}: {errors[0]}" if path else str(errors[0])
    return path or "invalid mapping spec"


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------

_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _SpecLoader(yaml.SafeLoader):
    """YAML as a spec author means it: only true/false are booleans (`yes`, `no`, `on`, `Y`
    and Norway's `NO` stay text), dates stay text (specs are stored as JSON), `0123` stays text,
    keys are text, a key given twice is an error, and aliases are refused."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a mapping spec", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[str, Any]:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key is True or key is False:
                key = "true" if key else "false"
            elif isinstance(key, int | float):
                key = str(key)
            elif not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None, None, "keys must be text", key_node.start_mark
                )
            if key in out:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            out[key] = self.construct_object(value_node, deep=deep)
        return out


_SpecLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regex)
        for tag, regex in resolvers
        if tag not in (_BOOL_TAG, _INT_TAG, _FLOAT_TAG, _TIMESTAMP_TAG)
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_SpecLoader.add_implicit_resolver(
    _INT_TAG, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
_SpecLoader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def load_spec_text(text: str) -> dict[str, Any]:
    """A spec from YAML or JSON text (JSON when it starts with `{`);
    MappingSpecError({"_schema": [...]}) when the text cannot be read."""
    if not isinstance(text, str):
        raise MappingSpecError({"_schema": ["The spec text must be text."]})
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as err:
            message = f"Not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})."
            raise MappingSpecError({"_schema": [message]}) from None
        except ValueError as err:
            raise MappingSpecError({"_schema": [f"Not valid JSON: {err}."]}) from None
    else:
        try:
            data = yaml.load(text, Loader=_SpecLoader)
        except yaml.YAMLError as err:
            raise MappingSpecError({"_schema": [_yaml_message(err)]}) from None
    if not isinstance(data, dict):
        raise MappingSpecError({"_schema": ["The spec must be a mapping (an object) of keys."]})
    return data


def _yaml_message(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None) or str(err)
    mark = getattr(err, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"Not valid YAML: {problem}{where}."


# --------------------------------------------------------------------------------------------
# Shape (marshmallow)
# --------------------------------------------------------------------------------------------


def _check_path(text: str) -> None:
    try:
        parse_path(text)
    except ValueError as err:
        raise ValidationError(str(err)) from None


def _path_field(**kwargs: Any) -> fields.Str:
    return fields.Str(validate=_check_path, **kwargs)


class Constant(fields.Field):
    """A constant or default: a scalar, or a list of scalars."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        scalar = Scalar()
        if isinstance(value, list):
            if len(value) > 1000:
                raise ValidationError("At most 1000 values.")
            return [scalar.deserialize(v) for v in value]
        return scalar.deserialize(value)


class ConditionSchema(Schema):
    """One condition of `when`: a source path and one operator."""

    source = _path_field(required=True)
    equals = Scalar()
    not_equals = Scalar()
    in_ = fields.List(
        Scalar(), data_key="in", attribute="in", validate=validate.Length(min=1, max=1000)
    )
    not_in = fields.List(Scalar(), validate=validate.Length(min=1, max=1000))
    present = fields.Bool()
    matches = fields.Str(validate=[validate.Length(min=1, max=500), check_regex])

    @validates_schema
    def _one_operator(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = [op for op in OPERATORS if op in data]
        if len(given) != 1:
            raise ValidationError(f"Give exactly one of {', '.join(OPERATORS)}.", "_schema")


_condition_schema = ConditionSchema()


class When(fields.Field):
    """`when`: one condition or a list of conditions (all must hold); loads as a list."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, dict):
            return [_condition_schema.load(value)]
        if isinstance(value, list) and 1 <= len(value) <= 20:
            conditions, errors = [], {}
            for index, item in enumerate(value):
                if not isinstance(item, dict):
                    errors[index] = {"_schema": ["Must be a condition (an object)."]}
                    continue
                try:
                    conditions.append(_condition_schema.load(item))
                except ValidationError as err:
                    errors[index] = err.messages
            if errors:
                raise ValidationError(errors)
            return conditions
        raise ValidationError("Must be a condition or a list of 1 to 20 conditions.")


def _did_you_mean(word: str, known: Any) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class TransformSpec(fields.Field):
    """A transform: its name, or an object with `name` and the transform's parameters."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            raise ValidationError({"name": ["Must be a transform name or an object with name."]})
        name = value.get("name")
        if not isinstance(name, str):
            raise ValidationError({"name": ["Missing transform name."]})
        transform = TRANSFORMS.get(name)
        if transform is None:
            raise ValidationError(
                {"name": [f"unknown transform {name!r}{_did_you_mean(name, TRANSFORMS)}"]}
            )
        params = {k: v for k, v in value.items() if k != "name"}
        transform.load_params(params)  # ValidationError keyed by parameter
        return {"name": name, **params}


class RuleSchema(Schema):
    """One rule: where a value comes from, how it is transformed, where it goes."""

    target = fields.Str(required=True, validate=validate.Length(min=1, max=500))
    source = _path_field()
    sources = fields.List(_path_field(), validate=validate.Length(min=1, max=20))
    constant = Constant()
    transforms = fields.List(TransformSpec(), validate=validate.Length(max=20))
    default = Constant(allow_none=True)
    required = fields.Bool()
    when = When()
    on_missing = fields.Str(validate=validate.OneOf(ON_MISSING))
    each = fields.List(fields.Raw(), validate=validate.Length(min=1, max=MAX_RULES))
    items = fields.List(fields.Raw(), validate=validate.Length(min=1, max=50))
    note = fields.Str(validate=validate.Length(max=1000))

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _one_origin(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        data = original if isinstance(original, dict) else data  # count what was written
        origins = [k for k in ("source", "sources", "constant") if k in data]
        if "items" in data:
            if origins:
                raise ValidationError("`items` takes no source or constant.", "items")
        elif len(origins) != 1:
            raise ValidationError("Give exactly one of source, sources or constant.", "source")
        if "each" in data and "source" not in data:
            raise ValidationError("`each` needs the `source` list it walks.", "each")
        if "each" in data and "items" in data:
            raise ValidationError("Give `each` or `items`, not both.", "items")
        if "each" in data or "items" in data:
            extra = [k for k in ("transforms", "default", "on_missing") if k in data]
            if extra:
                raise ValidationError(f"A list rule takes no {extra[0]}.", extra[0])


class GroupSchema(Schema):
    """One item of an `items` rule: its fields, and when it exists."""

    fields_ = fields.List(
        fields.Raw(),
        data_key="fields",
        attribute="fields",
        required=True,
        validate=validate.Length(min=1, max=MAX_RULES),
    )
    when = When()
    note = fields.Str(validate=validate.Length(max=1000))


class SpecSchema(Schema):
    """The top of a spec."""

    object = fields.Str(validate=validate.OneOf(tuple(OBJECTS)))
    direction = fields.Str(validate=validate.OneOf(DIRECTIONS))
    description = fields.Str(validate=validate.Length(max=4000))
    fields_ = fields.List(
        fields.Raw(),
        data_key="fields",
        attribute="fields",
        required=True,
        validate=validate.Length(min=1, max=MAX_RULES),
    )


_rule_schema = RuleSchema()
_group_schema = GroupSchema()
_spec_schema = SpecSchema()


# --------------------------------------------------------------------------------------------
# Meaning (against the catalog)
# --------------------------------------------------------------------------------------------


def _add(errors: dict[Any, Any], path: tuple[Any, ...], message: str) -> None:
    node = errors
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node.setdefault(path[-1], []).append(message)


def _unknown(scope: Scope, name: str, catalog: Mapping[str, Any]) -> str:
    return f"unknown {scope.object} field {name!r}{_did_you_mean(name, catalog)}"


def _known_source(scope: Scope, path: str, errors: dict, where: tuple[Any, ...]) -> bool:
    """Whether the scope knows the source (any remote path; a canonical field outbound)."""
    if scope.sources is None or path in scope.sources:
        return True
    _add(errors, where, _unknown(scope, path, scope.sources))
    return False


def _check_conditions(
    conditions: list[dict[str, Any]], scope: Scope, errors: dict, where: tuple[Any, ...]
) -> None:
    for index, condition in enumerate(conditions):
        at = (*where, index)
        if not _known_source(scope, condition["source"], errors, (*at, "source")):
            continue
        field = scope.source_field(condition["source"])
        if field is None or field.choices is None:
            continue
        for op in ("equals", "not_equals", "in", "not_in"):
            if op not in condition:
                continue
            values = condition[op] if op in ("in", "not_in") else [condition[op]]
            wrong = [v for v in values if v not in field.choices]
            if wrong:
                _add(
                    errors,
                    (*at, op),
                    f"{wrong[0]!r} is never a value of {condition['source']} "
                    f"({', '.join(field.choices)})",
                )


def _check_target(
    rule: dict[str, Any], scope: Scope, errors: dict
) -> tuple[CanonicalField | None, bool]:
    """The canonical target field (inbound) and whether the target is usable at all."""
    target = rule["target"]
    if scope.targets is not None:
        field = scope.targets.get(target)
        if field is None:
            _add(errors, ("target",), _unknown(scope, target, scope.targets))
            return None, False
        return field, True
    try:
        segments = parse_path(target)
    except ValueError as err:
        _add(errors, ("target",), str(err))
        return None, False
    if any(not isinstance(s, str) for s in segments):
        _add(errors, ("target",), "A target names keys only (no [index] or [*]).")
        return None, False
    return None, True


def _check_lookup_keys(
    transform: dict[str, Any], possible: tuple[Any, ...], source: str, errors: dict, index: int
) -> None:
    """A lookup of values from a closed set (a canonical field's choices) must translate each
    of them, and only those."""
    at = ("transforms", index)
    fold = not transform.get("case_sensitive", False)

    def norm(v: Any) -> Any:
        return v.strip().lower() if fold and isinstance(v, str) else v

    keys = {norm(k) for k in transform["table"]}
    wanted = {norm(v) for v in possible}
    stray = sorted(k for k in transform["table"] if norm(k) not in wanted)
    if stray:
        _add(errors, (*at, "table"), f"{stray[0]!r} is never a value of {source}")
    if "default" not in transform and not transform.get("keep_unknown"):
        missing = [v for v in possible if norm(v) not in keys]
        if missing:
            _add(
                errors,
                (*at, "table"),
                f"no entry for {missing[0]!r} (a value of {source}); add it or a default",
            )


def _check_flow(
    rule: dict[str, Any], scope: Scope, field: CanonicalField | None, errors: dict
) -> None:
    """Follow the value's type from the source through the transforms to the target."""
    paths = rule.get("sources") or ([rule["source"]] if "source" in rule else [])
    where = ("sources",) if "sources" in rule else ("source",)
    known = [
        _known_source(scope, path, errors, (*where, index) if "sources" in rule else where)
        for index, path in enumerate(paths)
    ]
    if not all(known):
        return
    try:
        flow = rule_flow(rule, scope)
    except FlowError as err:
        _add(errors, ("transforms", err.index, "name"), str(err))
        return
    for index, step in enumerate(flow.steps):
        if step.transform.name == "lookup" and step.possible and "constant" not in rule:
            given_by = flow.steps[index - 1].transform.name if index else rule["source"]
            _check_lookup_keys(rule["transforms"][index], step.possible, given_by, errors, index)
    if field is None:
        return
    if "constant" in rule and not flow.steps:
        try:
            coerce_constant(rule["constant"], field.type)
        except ValueError as err:
            _add(errors, ("constant",), f"{err}; {rule['target']} takes {describe(field.type)}")
            return
    elif not can_reach(flow.gives, field.type):
        _add(
            errors,
            ("target",),
            f"gets {describe(flow.gives)} from {flow.origin}, but {scope.object} field "
            f"{rule['target']!r} takes {describe(field.type)}",
        )
        return
    if field.choices is not None and flow.possible is not None:
        wrong = [v for v in flow.possible if v is not None and v not in field.choices]
        if wrong:
            choices = ", ".join(field.choices)
            if flow.steps:
                where = ("transforms", len(flow.steps) - 1, "name")
                message = f"{flow.origin} can give {wrong[0]!r}, which is not a {rule['target']}"
            else:
                where, message = ("constant",), f"{wrong[0]!r} is not a {rule['target']}"
            _add(errors, where, f"{message} ({choices})")


def _check_default(rule: dict[str, Any], field: CanonicalField | None, errors: dict) -> None:
    if rule.get("default") is None or field is None:
        return
    try:
        value = coerce_constant(rule["default"], field.type)
    except ValueError as err:
        _add(errors, ("default",), f"{err}; {rule['target']} takes {describe(field.type)}")
        return
    if field.choices is not None and value not in field.choices:
        _add(errors, ("default",), f"Must be one of {', '.join(field.choices)}.")


def _check_rules(raw_rules: list[Any], scope: Scope) -> tuple[list[dict], dict[int, Any]]:
    """Each rule's shape, then its meaning; (normalised rules, errors keyed by index)."""
    rules: list[dict[str, Any]] = []
    errors: dict[int, Any] = {}
    written: dict[tuple[str, ...], int] = {}
    for index, raw in enumerate(raw_rules):
        if not isinstance(raw, dict):
            errors[index] = {"_schema": ["A rule must be an object."]}
            continue
        try:
            rule = _rule_schema.load(raw)
        except ValidationError as err:
            errors[index] = err.messages
            continue
        rule_errors: dict[Any, Any] = {}
        _check_rule(rule, scope, rule_errors)
        if scope.targets is None and "target" not in rule_errors:
            _check_overlap(rule["target"], index, written, rule_errors)
        if rule_errors:
            errors[index] = rule_errors
        rules.append(rule)
    return rules, errors


def _check_overlap(
    target: str, index: int, written: dict[tuple[str, ...], int], errors: dict
) -> None:
    """Remote targets must not nest in one another (`Status` and `Status.Primary`)."""
    keys = tuple(parse_path(target))
    for other, at in written.items():
        short, long = sorted((keys, other), key=len)
        if short != long and long[: len(short)] == short:
            _add(errors, ("target",), f"overlaps the target of rule {at}")
            return
    written.setdefault(keys, index)


def _check_rule(rule: dict[str, Any], scope: Scope, errors: dict) -> None:
    if "when" in rule:
        _check_conditions(rule["when"], scope, errors, ("when",))
    field, usable = _check_target(rule, scope, errors)
    if not usable:
        return
    is_list_rule = "each" in rule or "items" in rule
    if field is not None:
        if is_list_rule and field.items is None:
            _add(errors, ("target",), f"{rule['target']} is not a list of records")
            return
        if not is_list_rule and field.items is not None:
            _add(
                errors,
                ("target",),
                f"{rule['target']} is a list of records: give its `each` or `items` rules",
            )
            return
    if not is_list_rule:
        _check_flow(rule, scope, field, errors)
        _check_default(rule, field, errors)
        return
    if scope.depth + 1 >= MAX_DEPTH:
        _add(errors, ("target",), f"Lists nest at most {MAX_DEPTH - 1} deep.")
        return
    if "each" in rule:
        if _each_source_ok(rule, scope, errors):
            rule["each"], sub_errors = _check_rules(rule["each"], scope.inner(rule))
            if sub_errors:
                errors["each"] = sub_errors
        return
    _check_groups(rule, scope, errors)


def _each_source_ok(rule: dict[str, Any], scope: Scope, errors: dict) -> bool:
    """Outbound, `each` walks a canonical list of records."""
    if not _known_source(scope, rule["source"], errors, ("source",)):
        return False
    field = scope.source_field(rule["source"])
    if field is not None and field.items is None:
        _add(errors, ("source",), f"{rule['source']} is not a list of records")
        return False
    return True


def _check_groups(rule: dict[str, Any], scope: Scope, errors: dict) -> None:
    inner = scope.inner(rule)
    groups, group_errors = [], {}
    for index, raw in enumerate(rule["items"]):
        if not isinstance(raw, dict):
            group_errors[index] = {"_schema": ["An item must be an object with `fields`."]}
            continue
        try:
            group = _group_schema.load(raw)
        except ValidationError as err:
            group_errors[index] = err.messages
            continue
        one: dict[Any, Any] = {}
        if "when" in group:
            _check_conditions(group["when"], scope, one, ("when",))
        group["fields"], sub_errors = _check_rules(group["fields"], inner)
        if sub_errors:
            one["fields"] = sub_errors
        if one:
            group_errors[index] = one
        groups.append(group)
    rule["items"] = groups
    if group_errors:
        errors["items"] = group_errors


def _json_problem(value: Any, depth: int = 0) -> str | None:
    """Why `value` cannot be stored as JSON (None when it can)."""
    if depth > MAX_SPEC_NESTING:
        return "The spec nests too deep."
    if isinstance(value, dict):
        for key, inner in value.items():
            if not isinstance(key, str):
                return f"Keys must be text, not {key!r}."
            problem = _json_problem(inner, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, list):
        for inner in value:
            problem = _json_problem(inner, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a number JSON can store."
    if value is None or isinstance(value, str | int | float):
        return None
    return f"{value!r} ({type(value).__name__}) cannot be stored; write dates as text."


def validate_spec(spec: dict[str, Any], *, object: str, direction: str) -> dict[str, Any]:
    """The spec, checked and normalised for `object` (a key of OBJECTS) and `direction`
    (`in`: remote record -> canonical record; `out`: canonical record -> remote fields)."""
    if object not in OBJECTS:
        raise MappingSpecError({"object": [f"Must be one of {', '.join(OBJECTS)}."]})
    if direction not in DIRECTIONS:
        raise MappingSpecError({"direction": [f"Must be one of {', '.join(DIRECTIONS)}."]})
    if not isinstance(spec, dict):
        raise MappingSpecError({"_schema": ["The spec must be an object."]})
    problem = _json_problem(spec)
    if problem:
        raise MappingSpecError({"_schema": [problem]})
    try:
        top = _spec_schema.load(spec)
    except ValidationError as err:
        raise MappingSpecError(err.messages) from None
    errors: dict[str, Any] = {}
    for key, wanted in (("object", object), ("direction", direction)):
        if key in top and top[key] != wanted:
            errors[key] = [f"The spec is for {top[key]!r}, not {wanted!r}."]
    top["fields"], rule_errors = _check_rules(top["fields"], Scope.top(object, direction))
    if rule_errors:
        errors["fields"] = rule_errors
    if errors:
        raise MappingSpecError(errors)
    return top
