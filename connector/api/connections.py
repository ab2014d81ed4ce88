"""`/api/v1/connections`, `/api/v1/sync-runs`, `/api/v1/jobs`: configure connections, start
syncs (202 with a job id) and follow them. Nested in the v1 blueprint (same authentication)."""

from __future__ import annotations

from flask import Blueprint, current_app

from connector import schemas as s
from connector.api.auth import requires
from connector.api.common import context, db, documented, load_body, load_query
from connector.services import connections, syncs

bp = Blueprint("connections", __name__)


@bp.post("/connections")
@requires("connections:write")
@documented("Add a connection", body=s.connection_schema, status=201)
def add_connection():
    return connections.render(connections.add(context(), load_body(s.connection_schema))), 201


@bp.get("/connections")
@requires("connections:write")
@documented("Every connection (settings never contain secrets)")
def list_connections():
    return {"items": connections.list_all(db())}


@bp.get("/connections/<name>")
@requires("connections:write")
@documented("One connection")
def get_connection(name: str):
    return connections.render(connections.get(db(), name))


@bp.delete("/connections/<name>")
@requires("connections:write")
@documented("Remove a connection", status=204)
def remove_connection(name: str):
    connections.remove(context(), name)
    return "", 204


@bp.post("/connections/<name>/test")
@requires("connections:write")
@documented("Check that the remote answers and the credentials work")
def test_connection(name: str):
    return connections.test(connections.get(db(), name))


@bp.post("/connections/<name>/sync")
@requires("connections:write")
@documented(
    "Start a sync of one object (202 with the job id)", body=s.sync_request_schema, status=202
)
def start_sync(name: str):
    data = load_body(s.sync_request_schema)
    session = db()
    connections.object_config(connections.get(session, name), data["object"])
    session.close()
    jobs = current_app.extensions["coi"].jobs
    return syncs.start(jobs, name, data["object"], full=data["full"]), 202


@bp.get("/jobs/<job_id>")
@requires("connections:write")
@documented("A job's state and result")
def get_job(job_id: str):
    return syncs.job_status(current_app.extensions["coi"].jobs, job_id)


@bp.get("/sync-runs")
@requires("read")
@documented("Sync runs, newest first", query=s.sync_run_query_schema)
def list_sync_runs():
    return syncs.list_runs(db(), load_query(s.sync_run_query_schema))
