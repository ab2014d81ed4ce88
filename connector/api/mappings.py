"""`/api/v1/connections/<name>/mappings/<object>/<direction>`: the admin API of field mappings
(versions, rollback, preview). Nested in the v1 blueprint, so its authentication applies."""

from __future__ import annotations

from flask import Blueprint

from connector import schemas as s
from connector.api.auth import requires
from connector.api.common import context, db, documented, load_body
from connector.services import mappings

bp = Blueprint("mappings", __name__, url_prefix="/connections/<connection>/mappings")

PATH = "/<object>/<direction>"


def _path(connection: str, object: str, direction: str) -> tuple[str, str, str]:
    checked = s.mapping_path_schema.load(
        {"connection": connection, "object": object, "direction": direction}
    )
    return checked["connection"], checked["object"], checked["direction"]


@bp.get(PATH)
@requires("mappings:write")
@documented("The mapping in use (its highest version)")
def get_mapping(connection: str, object: str, direction: str):
    return mappings.render(mappings.current(db(), *_path(connection, object, direction)))


@bp.put(PATH)
@requires("mappings:write")
@documented("Save a new version of a mapping", body=s.mapping_put_schema)
def put_mapping(connection: str, object: str, direction: str):
    key = _path(connection, object, direction)
    data = load_body(s.mapping_put_schema)
    spec = mappings.checked_spec(data, key[1], key[2])
    row = mappings.save(context(), *key, spec, data.get("note"))
    return mappings.render(row), 201 if row.version == 1 else 200


@bp.get(PATH + "/versions")
@requires("mappings:write")
@documented("Every version of a mapping, oldest first")
def list_versions(connection: str, object: str, direction: str):
    return {"items": mappings.versions(db(), *_path(connection, object, direction))}


@bp.post(PATH + "/rollback")
@requires("mappings:write")
@documented(
    "Make an older version current again (saved as a new version)", body=s.mapping_rollback_schema
)
def rollback(connection: str, object: str, direction: str):
    key = _path(connection, object, direction)
    data = load_body(s.mapping_rollback_schema)
    return mappings.render(mappings.rollback(context(), *key, data["version"], data.get("note")))


@bp.post(PATH + "/preview")
@requires("mappings:preview")
@documented("Apply a mapping to a sample record; writes nothing", body=s.mapping_preview_schema)
def preview(connection: str, object: str, direction: str):
    key = _path(connection, object, direction)
    return mappings.preview(db(), *key, load_body(s.mapping_preview_schema))
