"""Field paths: `Name`, `Status.Primary`, `Policies__r.records[0].Name`,
`ServiceResourceSkills.records[*].Skill.MasterLabel`, `["GL Policy No."]`.

A path is keys separated by dots; `[n]` indexes a list, `[*]` takes every element (the value is
then a list, missing elements left out), and `["any text"]` is a key that contains dots,
brackets or spaces (`\\"` and `\\\\` escape inside it). Reading a path never raises for a missing
key, a null or an index past the end (the value is missing, None); it raises `PathError` when
the record's shape differs from the path (a key looked up in text, an index in an object).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any


class PathError(ValueError):
    """The record's shape does not fit the path."""


class _Wildcard:
    __slots__ = ()

    def __repr__(self) -> str:
        return "[*]"


WILDCARD = _Wildcard()
Segment = str | int | _Wildcard

_TOKEN = re.compile(
    r'\["(?P<quoted>(?:[^"\\]|\\.)*)"\]'  # ["a.b"]
    r"|\[(?P<index>[0-9]+|\*)\]"  # [3] or [*]
    r"|(?P<dot>\.)"
    r"|(?P<key>[^.\[\]\"]+)"
)
_UNESCAPE = re.compile(r"\\(.)")
MAX_PATH_LENGTH = 500


def parse_path(text: str) -> tuple[Segment, ...]:
    """The segments of a path; ValueError saying what is wrong otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("Must be a non-empty path.")
    if len(text) > MAX_PATH_LENGTH:
        raise ValueError(f"Longer than {MAX_PATH_LENGTH} characters.")
    segments: list[Segment] = []
    pos, expect_key = 0, True
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"Cannot read the path at position {pos + 1}: {text[pos:]!r}.")
        kind = match.lastgroup
        if kind == "dot":
            if expect_key:
                raise ValueError(f"Empty key at position {pos + 1}.")
            expect_key = True
        elif kind == "key":
            if not expect_key:
                raise ValueError(f"Missing '.' before {match.group('key')!r}.")
            segments.append(match.group("key"))
            expect_key = False
        elif kind == "quoted":  # may start a segment or follow one directly, like an index
            segments.append(_UNESCAPE.sub(r"\1", match.group("quoted")))
            expect_key = False
        else:  # index
            if not segments:
                raise ValueError("A path cannot start with an index.")
            if expect_key:
                raise ValueError(f"Expected a key before the index at position {pos + 1}.")
            index = match.group("index")
            segments.append(WILDCARD if index == "*" else int(index))
        pos = match.end()
    if expect_key:
        raise ValueError("The path ends with '.'.")
    return tuple(segments)


def format_path(segments: tuple[Segment, ...]) -> str:
    """The text of a path (the inverse of `parse_path`)."""
    out: list[str] = []
    for segment in segments:
        if segment is WILDCARD:
            out.append("[*]")
        elif isinstance(segment, int):
            out.append(f"[{segment}]")
        elif re.fullmatch(r"[^.\[\]\"\\]+", segment):
            out.append(("." if out else "") + segment)
        else:
            quoted = segment.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'["{quoted}"]')
    return "".join(out)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _walk(value: Any, segments: tuple[Segment, ...], done: tuple[Segment, ...]) -> Any:
    for position, segment in enumerate(segments):
        if value is None:
            return None
        if segment.__class__ is str:
            if not isinstance(value, dict):
                raise PathError(
                    f"{format_path(done + segments[:position]) or 'the record'} is "
                    f"{_kind(value)}, not an object"
                )
            value = value.get(segment)
        elif segment is WILDCARD:
            if not isinstance(value, list):
                raise PathError(
                    f"{format_path(done + segments[:position])} is {_kind(value)}, not a list"
                )
            rest = segments[position + 1 :]
            here = done + segments[: position + 1]
            items = (_walk(item, rest, here) for item in value) if rest else value
            return [item for item in items if item is not None]
        else:
            if not isinstance(value, list):
                raise PathError(
                    f"{format_path(done + segments[:position])} is {_kind(value)}, not a list"
                )
            value = value[segment] if segment < len(value) else None
    return value


def compile_getter(segments: tuple[Segment, ...]) -> Callable[[Any], Any]:
    """A function reading the path from a record (None when missing; PathError on bad shape)."""
    if len(segments) == 1 and isinstance(segments[0], str):
        key = segments[0]

        def get_key(record: Any) -> Any:
            if record.__class__ is not dict and not isinstance(record, dict):
                raise PathError(f"the record is {_kind(record)}, not an object")
            return record.get(key)

        return get_key
    if all(isinstance(s, str) for s in segments):
        keys = segments

        def get_keys(record: Any) -> Any:
            value = record
            for key in keys:
                if value.__class__ is dict:
                    value = value.get(key)
                    if value is None:
                        return None
                else:
                    return _walk(record, keys, ())  # slow path: says what is wrong
            return value

        return get_keys
    return lambda record: _walk(record, segments, ())


def compile_setter(keys: tuple[str, ...]) -> Callable[[dict, Any], None]:
    """A function storing a value at a dotted path, creating the objects on the way."""
    if len(keys) == 1:
        key = keys[0]

        def set_key(out: dict, value: Any) -> None:
            out[key] = value

        return set_key
    parents, last = keys[:-1], keys[-1]

    def set_path(out: dict, value: Any) -> None:
        for key in parents:
            inner = out.get(key)
            if inner is None:
                inner = out[key] = {}
            out = inner
        out[last] = value

    return set_path
