"""Syncs and pushes as rq jobs with real Redis and real workers, against the Business Central
stand-in: the API answers 202 with a job id, a burst worker runs the sync and the push that
follows, the schedule enqueues due syncs, and a worker killed with SIGKILL mid-sync leaves
nothing that a rerun does not complete without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import func, select

from connector.api.auth import create_token
from connector.app import create_app, runtime
from connector.config import Settings
from connector.jobs import scheduled_syncs_job
from connector.storage import models as m
from sandbox.business_central import BusinessCentralSandbox
from tests.conftest import REDIS_URL, STANDARD_SET, JSONClient, drop_queue, empty_tables

PASSWORD_ENV = "COI_TEST_BC_PASSWORD"


@pytest.fixture(scope="module")
def running_bc():
    with BusinessCentralSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def queued_app(engine, database_url, running_bc, monkeypatch):
    running_bc.reset()
    name = f"coi-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("COI_DATABASE_URL", database_url)
    monkeypatch.setenv("COI_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("COI_QUEUE", name)
    monkeypatch.setenv(PASSWORD_ENV, running_bc.password)
    app = create_app(Settings.from_env(), engine=engine)
    session = runtime(app).sessions()
    with session, session.begin():
        token = create_token(session, "jobs", "admin")
    api = JSONClient(app.test_client(), token)
    api.put("/api/v1/requirement-sets/standard", STANDARD_SET)
    body = {
        "name": "erp",
        "kind": "business_central",
        "schedule_minutes": 15,
        "settings": {
            "base_url": running_bc.base_url,
            "company": running_bc.company,
            "username": running_bc.username,
            "password_env": PASSWORD_ENV,
            "block_payment": True,
            "retry_base_seconds": 0.01,
            "timeout": 5,
            "page_size": 50,
        },
        "objects": [
            {
                "remote": "Vendor",
                "canonical": "vendor",
                "push": True,
                "mapping_in": "business_central_vendor_in",
                "mapping_out": "business_central_vendor_out",
            }
        ],
    }
    assert api.post("/api/v1/connections", body).status_code == 201
    queue = Queue(name, connection=Redis.from_url(REDIS_URL))
    yield app, api, queue
    drop_queue(queue)
    empty_tables(engine)


def work(queue: Queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def vendor_count(app) -> int:
    with runtime(app).sessions() as session:
        return session.scalar(select(func.count()).select_from(m.Vendor))


def test_sync_requested_over_the_api_runs_on_a_worker_and_pushes(queued_app, running_bc):
    app, api, queue = queued_app
    numbers = running_bc.seed_vendors(8)

    started = api.post("/api/v1/connections/erp/sync", {"object": "Vendor", "full": True})
    work(queue)
    job = api.get(f"/api/v1/jobs/{started.get_json()['job_id']}").get_json()

    assert started.status_code == 202
    assert job["status"] == "finished" and job["result"]["sync_run"] > 0
    assert vendor_count(app) == 8
    assert {running_bc.vendor(n)["Blocked"] for n in numbers} == {"Payment"}


def test_every_page_of_a_queued_sync_is_evaluated_and_pushed(queued_app, running_bc):
    # Each page commits on its own; each commit must queue the recompute of its vendors.
    app, api, queue = queued_app
    numbers = running_bc.seed_vendors(120)  # three pages of 50

    api.post("/api/v1/connections/erp/sync", {"object": "Vendor", "full": True})
    work(queue)

    with runtime(app).sessions() as session:
        statuses = session.scalars(select(m.Vendor.status)).all()
    assert statuses == ["non_compliant"] * 120
    assert {running_bc.vendor(n)["Blocked"] for n in numbers} == {"Payment"}


def test_schedule_enqueues_due_syncs_once(queued_app, running_bc):
    app, _api, queue = queued_app
    running_bc.seed_vendors(3)

    first = scheduled_syncs_job()
    again = scheduled_syncs_job()
    work(queue)
    after_run = scheduled_syncs_job()

    assert first == ["sync-erp-Vendor"] and again == []
    assert vendor_count(app) == 3
    assert after_run == []  # the sync just ran and its push delivered everything


def test_worker_killed_mid_sync_then_rerun_completes_without_duplicates(
    queued_app, running_bc, database_url
):
    app, api, queue = queued_app
    running_bc.seed_vendors(400)
    running_bc.faults.slow(0.15)
    api.post("/api/v1/connections/erp/sync", {"object": "Vendor", "full": True})
    worker = subprocess.Popen(
        [sys.executable, "-m", "rq.cli", "worker", "--burst", "-u", REDIS_URL, queue.name],
        env={**os.environ},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while vendor_count(app) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        partial = vendor_count(app)
        # rq runs each job in a forked work horse: kill it and the worker alike.
        subprocess.run(["pkill", "-KILL", "-P", str(worker.pid)], check=False)
        os.killpg(worker.pid, signal.SIGKILL)
    finally:
        worker.wait(timeout=10)
    running_bc.faults.reset()

    api.post("/api/v1/connections/erp/sync", {"object": "Vendor", "full": True})
    work(queue)

    with runtime(app).sessions() as session:
        bindings = session.scalar(select(func.count(func.distinct(m.Binding.external_id))))
    assert 0 < partial < 400
    assert (vendor_count(app), bindings) == (400, 400)
