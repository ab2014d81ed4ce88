"""With Redis configured, recomputes run as rq jobs after the write commits (real Redis, a real
rq worker in burst mode)."""

from __future__ import annotations

import uuid

import pytest
from redis import Redis
from rq import Queue, SimpleWorker

from connector.api.auth import create_token
from connector.app import create_app, runtime
from connector.config import Settings
from connector.jobs import recompute_all_job
from connector.storage import models as m
from tests.conftest import (
    REDIS_URL,
    STANDARD_SET,
    JSONClient,
    drop_queue,
    empty_tables,
    good_certificate,
)


@pytest.fixture
def queued(engine, database_url, monkeypatch):
    """An app whose jobs go to a queue of this test's own, and that queue."""
    name = f"coi-test-{uuid.uuid4().hex[:8]}"
    settings = Settings(database_url=database_url, redis_url=REDIS_URL, queue_name=name)
    app = create_app(settings, engine=engine)
    session = runtime(app).sessions()
    with session, session.begin():
        token = create_token(session, "jobs-test", "admin")
    monkeypatch.setenv("COI_DATABASE_URL", database_url)
    queue = Queue(name, connection=Redis.from_url(REDIS_URL))
    yield JSONClient(app.test_client(), token), queue
    drop_queue(queue)
    empty_tables(engine)


def work(queue: Queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_certificate_is_evaluated_by_the_worker_after_commit(queued):
    api, queue = queued
    api.put("/api/v1/requirement-sets/standard", STANDARD_SET)
    vendor = api.post("/api/v1/vendors", {"name": "Queued Plumbing"}).get_json()
    api.post(f"/api/v1/vendors/{vendor['id']}/certificates", good_certificate())
    pending = api.get(f"/api/v1/vendors/{vendor['id']}").get_json()["status"]

    work(queue)

    done = api.get(f"/api/v1/vendors/{vendor['id']}").get_json()["status"]
    assert (pending, done) == (None, "compliant")


def test_a_rejected_write_enqueues_nothing(queued):
    api, queue = queued

    response = api.post("/api/v1/vendors/424242/certificates", good_certificate())

    assert (response.status_code, queue.count) == (404, 0)


def test_each_commit_of_one_session_queues_its_own_recomputes(queued):
    # A sync commits page after page on one session: every page's vendors must be queued.
    api, queue = queued
    jobs = runtime(api.client.application).jobs
    session = jobs.sessions()
    with session:
        for vendor_ids in ([1, 2], [3], [4]):
            with session.begin():
                jobs.recompute(session, vendor_ids)
        with session.begin():
            jobs.recompute(session, [5])
            session.rollback()

    assert [job.args for job in queue.get_jobs()] == [([1, 2],), ([3],), ([4],)]


def test_each_commit_that_emits_events_queues_their_delivery(queued):
    api, queue = queued
    jobs = runtime(api.client.application).jobs
    session = jobs.sessions()
    queued_after = []
    with session:
        for _ in range(2):
            with session.begin():
                jobs.deliver_webhooks_after_commit(session)
            queued_after.append([job.func_name for job in queue.get_jobs()])
            queue.empty()

    assert queued_after == [["connector.jobs.deliver_webhooks_job"]] * 2


def test_nightly_job_re_evaluates_every_vendor_as_of_today(queued, sessions):
    api, _queue = queued
    api.put("/api/v1/requirement-sets/standard", STANDARD_SET)
    vendor = api.post("/api/v1/vendors", {"name": "Stale Plumbing"}).get_json()
    with sessions() as session, session.begin():
        session.get(m.Vendor, vendor["id"]).status = "compliant"

    evaluated = recompute_all_job()

    assert evaluated == 1
    assert api.get(f"/api/v1/vendors/{vendor['id']}").get_json()["status"] == "non_compliant"
