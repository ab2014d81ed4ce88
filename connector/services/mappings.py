"""Field mappings per (connection, object, direction): versions, rollback, preview, and the
compiled mapping that syncs and webhooks apply (compiled once per stored version)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector.errors import APIError, NotFound
from connector.services import audit
from connector.services.context import Context
from connector.storage.models import MappingVersion
from mappings import (
    CompiledMapping,
    MappingSpecError,
    compile_mapping,
    default_spec,
    load_spec_text,
    validate_spec,
)


def _rows(session: Session, connection: str, object: str, direction: str):
    return select(MappingVersion).where(*_key(connection, object, direction))


def _key(connection: str, object: str, direction: str) -> tuple:
    return (
        MappingVersion.connection == connection,
        MappingVersion.object == object,
        MappingVersion.direction == direction,
    )


def current(session: Session, connection: str, object: str, direction: str) -> MappingVersion:
    row = session.scalar(
        _rows(session, connection, object, direction).order_by(MappingVersion.version.desc())
    )
    if row is None:
        raise NotFound("mapping", f"{connection}/{object}/{direction}")
    return row


def version(
    session: Session, connection: str, object: str, direction: str, number: int
) -> MappingVersion:
    row = session.scalar(
        _rows(session, connection, object, direction).where(MappingVersion.version == number)
    )
    if row is None:
        raise NotFound("mapping version", f"{connection}/{object}/{direction}@{number}")
    return row


def versions(session: Session, connection: str, object: str, direction: str) -> list[dict]:
    rows = session.scalars(
        _rows(session, connection, object, direction).order_by(MappingVersion.version)
    )
    return [render(row, with_spec=False) for row in rows]


def checked_spec(data: dict[str, Any], object: str, direction: str) -> dict[str, Any]:
    """The spec a PUT body names (JSON, text, or shipped default), validated; 422 otherwise."""
    try:
        if data.get("default") is not None:
            spec = default_spec(data["default"])
        elif data.get("spec_text") is not None:
            spec = load_spec_text(data["spec_text"])
        else:
            spec = data["spec"]
        return validate_spec(spec, object=object, direction=direction)
    except MappingSpecError as err:
        raise APIError(422, "invalid_mapping", "the mapping is not valid", err.errors) from None


def save(
    ctx: Context, connection: str, object: str, direction: str, spec: dict, note: str | None
) -> MappingVersion:
    with ctx.session.begin():
        return _save(ctx, connection, object, direction, spec, note)


def rollback(
    ctx: Context, connection: str, object: str, direction: str, number: int, note: str | None
) -> MappingVersion:
    """Make version `number` current again, as a new version (history stays intact)."""
    with ctx.session.begin():
        old = version(ctx.session, connection, object, direction, number)
        note = note or f"rollback to version {number}"
        return _save(ctx, connection, object, direction, old.spec, note)


def _save(
    ctx: Context, connection: str, object: str, direction: str, spec: dict, note: str | None
) -> MappingVersion:
    session = ctx.session
    latest = session.scalar(
        select(func.max(MappingVersion.version)).where(*_key(connection, object, direction))
    )
    row = MappingVersion(
        connection=connection,
        object=object,
        direction=direction,
        version=(latest or 0) + 1,
        spec=spec,
        created_by=ctx.actor,
        note=note,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        ctx.actor,
        "mapping.save",
        "mapping",
        f"{connection}/{object}/{direction}",
        {"version": row.version, "note": note},
    )
    return row


def compiled(row: MappingVersion) -> CompiledMapping:
    return _compiled(row.id, row.object, row.direction, row.version, _frozen(row.spec))


@lru_cache(maxsize=256)
def _compiled(_id: int, object: str, direction: str, number: int, spec: str) -> CompiledMapping:
    # Keyed by the spec text as well as the row, so a reused row id never finds a stale entry.
    return compile_mapping(json.loads(spec), object=object, direction=direction, version=number)


def _frozen(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def preview(
    session: Session, connection: str, object: str, direction: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Apply a stored version (the current one by default) or an unsaved spec to a sample
    record; writes nothing."""
    if data.get("spec") is not None:
        spec = checked_spec({"spec": data["spec"]}, object, direction)
        mapping, used = compile_mapping(spec, object=object, direction=direction), None
    else:
        row = (
            version(session, connection, object, direction, data["version"])
            if data.get("version") is not None
            else current(session, connection, object, direction)
        )
        mapping, used = compiled(row), row.version
    return {"version": used, **mapping.apply_traced(data["record"]).as_json()}


def render(row: MappingVersion, *, with_spec: bool = True) -> dict[str, Any]:
    body = {
        "connection": row.connection,
        "object": row.object,
        "direction": row.direction,
        "version": row.version,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "note": row.note,
    }
    if with_spec:
        body["spec"] = row.spec
    return body
