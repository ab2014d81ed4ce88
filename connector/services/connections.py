"""Connections: configured remote systems, their adapters and mappings.

Settings hold no secrets, only where to find them (`<name>_env` / `<name>_file`); anything that
looks like a secret given in plain text is refused before it is stored.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters import REGISTRY
from adapters.base import Adapter, AdapterError
from connector.errors import APIError, NotFound
from connector.services import audit
from connector.services.context import Context
from connector.storage import models as m
from mappings import CompiledMapping, compile_mapping, default_spec
from webhooks.inbound import settings_problems as webhook_settings_problems

_SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey", "private_key", "credential")


def plain_secrets(settings: dict[str, Any]) -> list[str]:
    """Setting names that look like secrets given in plain text (not `_env` / `_file`)."""
    return [
        key
        for key in settings
        if any(word in key.lower() for word in _SECRET_WORDS)
        and not key.endswith(("_env", "_file", "_url"))
    ]


def adapter_for(connection: m.Connection) -> Adapter:
    module_name, _, class_name = REGISTRY[connection.kind].partition(":")
    adapter_class = getattr(importlib.import_module(module_name), class_name)
    return adapter_class(connection.settings)


def get(session: Session, name: str) -> m.Connection:
    connection = session.scalar(select(m.Connection).where(m.Connection.name == name))
    if connection is None:
        raise NotFound("connection", name)
    return connection


def add(ctx: Context, data: dict[str, Any]) -> m.Connection:
    leaked = plain_secrets(data.get("settings") or {})
    if leaked:
        raise APIError(
            422,
            "validation_failed",
            "secrets may not be stored in settings",
            {"settings": {key: [f"use {key}_env or {key}_file"] for key in leaked}},
        )
    problems = webhook_settings_problems(data.get("settings") or {})
    if problems:
        raise APIError(
            422, "validation_failed", "webhook settings are not valid", {"settings": problems}
        )
    session = ctx.session
    with session.begin():
        if session.scalar(select(m.Connection.id).where(m.Connection.name == data["name"])):
            raise APIError(409, "conflict", f"connection {data['name']!r} exists")
        connection = m.Connection(
            name=data["name"],
            kind=data["kind"],
            settings=data.get("settings") or {},
            objects=data.get("objects") or [],
            schedule_minutes=data.get("schedule_minutes"),
            fail_open=data.get("fail_open", False),
        )
        session.add(connection)
        session.flush()
        audit.record(
            session, ctx.actor, "connection.add", "connection", connection.name, render(connection)
        )
    return connection


def remove(ctx: Context, name: str) -> None:
    session = ctx.session
    with session.begin():
        connection = get(session, name)
        session.delete(connection)
        audit.record(session, ctx.actor, "connection.remove", "connection", name, {})


def test(connection: m.Connection) -> dict[str, Any]:
    adapter = adapter_for(connection)
    try:
        return {"ok": True, **adapter.test()}
    except AdapterError as err:
        return {"ok": False, "error": str(err), "retryable": err.retryable}
    finally:
        adapter.close()


def object_for(connection: m.Connection, canonical: str) -> dict[str, Any]:
    """The connection's object mapped to a canonical record (a webhook names the record, not the
    remote object)."""
    for cfg in connection.objects:
        if cfg["canonical"] == canonical:
            return cfg
    raise APIError(
        422,
        "mapping_missing",
        f"connection {connection.name!r} has no object mapped to {canonical}",
    )


def object_config(connection: m.Connection, remote: str) -> dict[str, Any]:
    for cfg in connection.objects:
        if cfg["remote"] == remote:
            return cfg
    raise APIError(
        422,
        "validation_failed",
        f"connection {connection.name!r} has no object {remote!r}",
        {"object": [f"one of: {', '.join(c['remote'] for c in connection.objects)}"]},
    )


def mapping_for(
    session: Session, connection: m.Connection, cfg: dict[str, Any], direction: str
) -> CompiledMapping:
    """The mapping in use: the latest saved version, else the shipped default the object names."""
    from connector.services import mappings as mapping_versions

    canonical = cfg["canonical"] if direction == "in" else "compliance"
    try:
        row = mapping_versions.current(session, connection.name, canonical, direction)
    except NotFound:
        default = cfg.get(f"mapping_{direction}")
        if not default:
            raise APIError(
                422,
                "mapping_missing",
                f"no {direction} mapping for {connection.name}/{canonical} and no default named",
            ) from None
        return _default_mapping(default, canonical, direction)
    return mapping_versions.compiled(row)


@cache
def _default_mapping(name: str, canonical: str, direction: str) -> CompiledMapping:
    """Shipped defaults never change while the process runs: compile each once."""
    return compile_mapping(default_spec(name), object=canonical, direction=direction)


def render(connection: m.Connection) -> dict[str, Any]:
    return {
        "name": connection.name,
        "kind": connection.kind,
        "settings": connection.settings,
        "objects": connection.objects,
        "schedule_minutes": connection.schedule_minutes,
        "fail_open": connection.fail_open,
        "active": connection.active,
    }


def list_all(session: Session) -> list[dict[str, Any]]:
    return [render(c) for c in session.scalars(select(m.Connection).order_by(m.Connection.name))]
