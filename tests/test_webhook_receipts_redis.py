"""Webhook delivery claims kept in Redis (`COI_REDIS_URL` set), against the app served on a real
socket with real Redis: one effect for concurrent duplicates, a first arrival that needs nothing
but its claim, repeats answered after Redis forgot, a dead process's claim taken over, and Redis
down answering 503 without acting."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import select, text

from connector.app import create_app, runtime
from connector.config import Settings
from connector.storage import models as m
from sandbox.dispatch import send_webhook
from sandbox.server import serve
from tests.conftest import REDIS_URL, TEST_SECRET_KEY, drop_queue, empty_tables, good_certificate
from tests.test_webhooks_receiver import add_connection, count, hook, work_order
from webhooks import receipts


def _clear_claims() -> None:
    redis = Redis.from_url(REDIS_URL)
    for key in redis.scan_iter("coi:webhook-claim:*"):
        redis.delete(key)


def _app(engine, database_url, redis_url):
    # A queue of the test's own: the jobs the app queues (recomputes) are dropped afterwards.
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        queue_name=f"coi-test-{uuid.uuid4().hex[:8]}",
        secret_key=TEST_SECRET_KEY,
    )
    app = create_app(settings, engine=engine)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def app(engine, database_url):
    _clear_claims()
    app = _app(engine, database_url, REDIS_URL)
    app_settings = runtime(app).settings
    yield app
    runtime(app).write_behind.close()
    empty_tables(engine)
    _clear_claims()
    drop_queue(Queue(app_settings.queue_name, connection=Redis.from_url(REDIS_URL)))


@pytest.fixture
def dispatch(api, secret, standard_set, make_vendor):
    add_connection(api)
    make_vendor(regions=("2006001",), cert=good_certificate())
    return "dispatch"


def deliver(served, secret, msg_id: str, stamp: int):
    return send_webhook(
        hook(served), "WorkOrderCreated", work_order(), secret, msg_id=msg_id, timestamp=stamp
    )


def test_hundred_concurrent_duplicates_act_once_and_get_one_answer(
    app, served, dispatch, secret, sessions
):
    stamp = int(time.time())

    with ThreadPoolExecutor(max_workers=100) as pool:
        answers = list(pool.map(lambda _: deliver(served, secret, "msg_rc", stamp), range(100)))
    runtime(app).write_behind.flush()

    assert {(a.status, a.body) for a in answers} == {(200, answers[0].body)}
    assert (count(sessions, m.WorkOrder), count(sessions, m.GateDecision)) == (1, 1)
    with sessions() as session:
        receipt = session.scalars(select(m.WebhookReceipt)).one()
    assert (receipt.status, receipt.response_body) == ("done", answers[0].json())


def test_a_first_arrival_needs_nothing_but_its_claim(
    app, served, dispatch, secret, engine, database_url
):
    if not database_url.startswith("postgresql"):
        pytest.skip("a lock that keeps readers out of a table needs PostgreSQL")
    deliver(served, secret, "msg_before", int(time.time()))  # the claims are complete
    with engine.connect() as other:
        other.execute(text("LOCK TABLE webhook_receipts IN ACCESS EXCLUSIVE MODE"))
        delivery = deliver(served, secret, "msg_first", int(time.time()))
        other.rollback()

    assert (delivery.status, delivery.json()["decision"]) == (200, "allow")


def test_a_repeat_after_redis_forgot_is_answered_from_the_stored_receipt(
    app, served, dispatch, secret, sessions
):
    stamp = int(time.time())
    first = deliver(served, secret, "msg_rf", stamp)
    runtime(app).write_behind.flush()
    _clear_claims()

    again = deliver(served, secret, "msg_rf", stamp)
    runtime(app).write_behind.flush()

    assert (again.status, again.json()) == (first.status, first.json())
    assert count(sessions, m.GateDecision) == 1


def test_a_claim_left_by_a_dead_process_is_taken_over_and_the_retry_acts(
    app, served, dispatch, secret, sessions, monkeypatch
):
    # A process died holding the claim: it is taken over after STALE_AFTER (shortened here).
    monkeypatch.setattr(receipts, "STALE_AFTER", timedelta(milliseconds=300))
    claims = receipts.RedisClaims.from_url(REDIS_URL, runtime(app).settings.database_url)
    store = receipts.ClaimReceipts(sessions, claims)
    assert store.claim("dispatch", "work-order", "msg_dead") == (True, None)

    retry = deliver(served, secret, "msg_dead", int(time.time()))
    runtime(app).write_behind.flush()

    assert (retry.status, retry.json()["decision"]) == (200, "allow")
    assert count(sessions, m.GateDecision) == 1


def test_redis_down_is_503_and_nothing_is_acted_on(
    engine, database_url, dispatch, secret, sessions
):
    down = _app(engine, database_url, "redis://127.0.0.1:9/0")  # nothing listens on port 9
    server = serve(down)
    try:
        delivery = send_webhook(hook(server.url), "WorkOrderCreated", work_order(), secret)
    finally:
        server.stop()
        runtime(down).write_behind.close()

    assert (delivery.status, delivery.json()["error"]["code"]) == (503, "dependency_down")
    assert (count(sessions, m.WebhookReceipt), count(sessions, m.WorkOrder)) == (0, 0)
