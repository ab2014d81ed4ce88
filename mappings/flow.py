"""What a rule means before any record is seen, shared by validation and compilation: the
catalog a level of rules names (its `Scope`) and the types a rule's value takes on its way
from the source through the transforms (its `Flow`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mappings.canonical import ANY, OBJECTS, CanonicalField, list_of, type_of
from mappings.paths import WILDCARD, parse_path
from mappings.transforms import TRANSFORMS, Transform, TypeMismatch


def remote_type(path: str) -> str:
    """A remote path's static type: unknown, but a list when it takes every element (`[*]`)."""
    return list_of(ANY) if WILDCARD in parse_path(path) else ANY


@dataclass(frozen=True, slots=True)
class Scope:
    """What the rules of one level name: canonical targets (inbound) or canonical sources
    (outbound); None means free remote paths. `depth` counts the lists around the level."""

    object: str
    direction: str
    targets: Mapping[str, CanonicalField] | None
    sources: Mapping[str, CanonicalField] | None
    depth: int = 0

    @classmethod
    def top(cls, object: str, direction: str) -> Scope:
        catalog = OBJECTS[object]
        inbound = direction == "in"
        return cls(object, direction, catalog if inbound else None, None if inbound else catalog)

    @property
    def on_missing(self) -> str:
        """What a rule without a value does unless it says: omit the target (inbound) or
        write null, which clears the remote field (outbound)."""
        return "omit" if self.direction == "in" else "null"

    def target_field(self, target: str) -> CanonicalField | None:
        return self.targets.get(target) if self.targets is not None else None

    def source_field(self, path: str) -> CanonicalField | None:
        return self.sources.get(path) if self.sources is not None else None

    def source_type(self, path: str) -> str:
        if self.sources is None:
            return remote_type(path)
        return self.sources[path].type

    def target_keys(self, target: str) -> tuple[str, ...]:
        if self.targets is not None:
            return tuple(target.split("."))
        return tuple(str(segment) for segment in parse_path(target))

    def inner(self, rule: dict[str, Any]) -> Scope:
        """The scope of a (valid) list rule's own rules: the items of the list it builds
        (inbound) or of the list it reads (outbound `each`)."""
        depth = self.depth + 1
        if self.direction == "in":
            field = self.target_field(rule["target"])
            return Scope(self.object, "in", field.items if field else None, None, depth)
        if "each" in rule:
            field = self.source_field(rule["source"])
            return Scope(self.object, "out", None, field.items if field else None, depth)
        return Scope(self.object, "out", None, self.sources, depth)


@dataclass(frozen=True, slots=True)
class Step:
    """One transform of a rule with its loaded parameters and the type it is given; `lifted`
    when it maps the elements of a list, `possible` the values it is given when known."""

    transform: Transform
    params: dict[str, Any]
    takes: str
    lifted: bool
    possible: tuple[Any, ...] | None


@dataclass(frozen=True, slots=True)
class Flow:
    """A rule's value from origin to target: the transforms, the type the last one gives,
    the values it can give when that is a closed set, and what gives it (for messages)."""

    steps: tuple[Step, ...]
    gives: str
    possible: tuple[Any, ...] | None
    origin: str


class FlowError(ValueError):
    """Transform number `index` cannot take what it is given."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


def rule_flow(rule: dict[str, Any], scope: Scope) -> Flow:
    """Follow a field rule's value type through its transforms (its sources must be known to
    the scope); FlowError if a transform cannot take what the previous step gives."""
    possible: tuple[Any, ...] | None = None
    if "constant" in rule:
        kind, possible, origin = type_of(rule["constant"]), (rule["constant"],), "the constant"
    elif "sources" in rule:
        kinds = {scope.source_type(path) for path in rule["sources"]}
        kind, origin = list_of(kinds.pop() if len(kinds) == 1 else ANY), "the sources"
    else:
        kind, origin = scope.source_type(rule["source"]), rule["source"]
        field = scope.source_field(rule["source"])
        possible = field.choices if field is not None else None
    steps = []
    for index, spec in enumerate(rule.get("transforms", ())):
        transform = TRANSFORMS[spec["name"]]
        params = transform.load_params({k: v for k, v in spec.items() if k != "name"})
        try:
            gives = transform.output_type(kind, params)
        except TypeMismatch as err:
            raise FlowError(index, f"{err} (given by {origin})") from None
        lifted = transform.lifts(kind)
        steps.append(Step(transform, params, kind, lifted, possible))
        outputs = transform.outputs(params) if transform.outputs and not lifted else None
        kind, possible, origin = gives, tuple(outputs) if outputs else None, transform.name
    return Flow(tuple(steps), kind, possible, origin)
