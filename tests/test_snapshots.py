"""A web worker's snapshots follow the database: its own writes at once, another process's
writes within the check interval (`COI_SNAPSHOT_SECONDS`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from connector.app import create_app, runtime
from connector.config import Settings
from connector.storage import models as m
from connector.storage.snapshots import Snapshots
from tests.conftest import JSONClient, good_certificate
from tests.test_api_gate import gate

CHECK_SECONDS = 0.2


@pytest.fixture
def worker_app(engine, database_url):
    """An app whose worker checks for other processes' changes every CHECK_SECONDS."""
    settings = Settings(database_url=database_url, snapshot_seconds=CHECK_SECONDS)
    app = create_app(settings, engine=engine)
    yield app
    runtime(app).write_behind.close()


def test_a_certificate_posted_by_another_process_reaches_the_gate_within_the_interval(
    worker_app, database_url, make_token, standard_set
):
    worker = JSONClient(worker_app.test_client(), make_token("admin"))
    vendor = worker.post(
        "/api/v1/vendors",
        {
            "name": "Ridgeline Plumbing LLC",
            "work_types": ["plumbing"],
            "regions": ["us-east"],
            "external_refs": [{"system": "dispatch", "external_id": "P-7"}],
        },
    ).get_json()["id"]
    before = gate(worker, "P-7")["decision"]

    other_process = f"""
import json, sys
from connector.app import create_app
from connector.config import Settings
client = create_app(Settings(database_url={database_url!r})).test_client()
answer = client.post(
    "/api/v1/vendors/{vendor}/certificates",
    json=json.loads(sys.stdin.read()),
    headers={{"Authorization": "Bearer {make_token("admin", "other")}"}},
)
assert answer.status_code == 201, answer.get_json()
"""
    subprocess.run(
        [sys.executable, "-c", other_process],
        input=json.dumps(good_certificate()),
        text=True,
        check=True,
    )
    time.sleep(CHECK_SECONDS * 2)

    assert (before, gate(worker, "P-7")["decision"]) == ("block", "allow")


def test_commits_raise_the_counters_of_the_watched_tables_only(api, sessions, make_vendor):
    make_vendor()
    with sessions() as session:
        before = dict(session.execute(select(m.ChangeVersion.name, m.ChangeVersion.version)).all())

    make_vendor()

    with sessions() as session:
        after = dict(session.execute(select(m.ChangeVersion.name, m.ChangeVersion.version)).all())
    raised = {name for name in after if after[name] != before.get(name)}
    assert {"vendors", "bindings"} <= raised and "audit_events" not in after


def test_a_kept_snapshot_is_rebuilt_after_a_write_to_its_own_tables_only(
    sessions, engine, make_vendor, make_token
):
    snapshots = Snapshots(60, engine)
    builds = []

    def vendor_count():
        builds.append(len(builds) + 1)
        with sessions() as session:
            return len(session.scalars(select(m.Vendor.id)).all())

    def read():
        return snapshots.get("vendor_count", ("vendors",), vendor_count)

    seen = [read()]
    with sessions() as session, session.begin():  # a table no snapshot is built from
        session.add(m.AuditEvent(actor="test", action="test", entity_type="test"))
    seen.append(read())
    make_token("admin", "another")  # a table other snapshots are built from
    seen.append(read())
    make_vendor()
    seen.append(read())
    seen.append(read())

    assert (seen, builds) == ([0, 0, 0, 1, 1], [1, 2])
