"""The dispatch stand-in sends real signed webhooks to our app served on a real socket: a work
order assigned to a non-compliant provider is answered `block` and flagged back in the dispatch
system through the outbox, also when the dispatch system is down at first; a provider change pulls
that one provider; a failed first arrival lets the sender's retry act."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import func, select

from connector.app import create_app, runtime
from connector.config import Settings
from connector.services.outbox import deliver
from connector.services.sync import run_sync
from connector.storage import models as m
from sandbox.dispatch import DispatchSandbox, send_webhook
from sandbox.server import serve
from tests.conftest import (
    DISPATCH_OBJECTS,
    REDIS_URL,
    WEBHOOK_SECRET_ENV,
    drop_queue,
    good_certificate,
)

CLIENT_SECRET_ENV = "COI_TEST_DISPATCH_SECRET"


@pytest.fixture(scope="module")
def running_dispatch():
    with DispatchSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def peer(running_dispatch, monkeypatch):
    running_dispatch.reset()
    monkeypatch.setenv(CLIENT_SECRET_ENV, running_dispatch.client_secret)
    yield running_dispatch
    running_dispatch.reset()


@pytest.fixture
def network(app, api, peer, secret, standard_set):
    """Connection `dispatch` (writeback: flag on block), two providers synced in: the first
    with a good certificate, the second with none."""
    body = {
        "name": "dispatch",
        "kind": "dispatch",
        "settings": {
            "base_url": peer.url,
            "client_id": peer.client_id,
            "client_secret_env": CLIENT_SECRET_ENV,
            "max_retries": 0,
            "retry_base_seconds": 0.01,
            "timeout": 5,
            "webhook_secret_env": WEBHOOK_SECRET_ENV,
            "writeback": "flag",
        },
        "objects": DISPATCH_OBJECTS,
    }
    assert api.post("/api/v1/connections", body).status_code == 201
    providers = peer.seed_providers(2, seed=7)
    for provider in providers:
        peer.touch_provider(provider["Id"], Status="Active")
    rt = runtime(app)
    run_sync(rt.sessions, rt.jobs, "dispatch", "Provider", full=True)
    good = vendor_of(app, providers[0]["Id"])
    assert api.post(f"/api/v1/vendors/{good}/certificates", good_certificate()).status_code == 201
    return [p["Id"] for p in providers]


def vendor_of(app, provider_id: str) -> int:
    with runtime(app).sessions() as session:
        return session.scalar(
            select(m.Binding.vendor_id).where(
                m.Binding.system == "dispatch", m.Binding.external_id == provider_id
            )
        )


def outbox_state(app) -> tuple[int, int]:
    """(entries waiting, attempts made on them)."""
    with runtime(app).sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(m.OutboxEntry)),
            session.scalar(select(func.coalesce(func.sum(m.OutboxEntry.attempts), 0))),
        )


def eventually(check, seconds: float = 10.0):
    """Poll until `check()` is truthy (the writeback is sent after the answer); its value."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.02)


def test_subscribed_dispatch_system_gets_allow_for_a_compliant_provider(served, network, peer):
    good, _ = network
    order = peer.create_work_order(ProviderId=good, LocationId=peer.provider(good)["Locations"][0])
    peer.subscribe(f"{served}/webhooks/dispatch/work-order", os.environ[WEBHOOK_SECRET_ENV])

    [delivery] = peer.emit("WorkOrderCreated", order["Id"])

    assert (delivery.status, delivery.json()["decision"]) == (200, "allow")
    assert peer.work_order(order["Id"])["ComplianceHold"] is False


def test_blocked_work_order_is_answered_and_flagged_in_the_dispatch_system(
    app, served, network, peer
):
    _, bad = network
    order = peer.create_work_order(ProviderId=bad, LocationId=peer.provider(bad)["Locations"][0])
    peer.subscribe(f"{served}/webhooks/dispatch/work-order", os.environ[WEBHOOK_SECRET_ENV])

    [delivery] = peer.emit("WorkOrderTechnicianAssigned", order["Id"])

    assert (delivery.status, delivery.json()["decision"]) == (200, "block")
    flagged = eventually(lambda: peer.work_order(order["Id"])["ComplianceHold"])
    assert flagged is True
    assert peer.work_order(order["Id"])["ComplianceNote"].startswith("COI check: block.")
    assert eventually(lambda: outbox_state(app)[0] == 0)


def test_writeback_waits_while_the_dispatch_system_is_down_and_is_delivered_once_it_recovers(
    app, served, network, peer
):
    _, bad = network
    order = peer.create_work_order(ProviderId=bad, LocationId=peer.provider(bad)["Locations"][0])
    peer.faults.fail(1000, status=503)

    delivery = peer.send_webhook(
        f"{served}/webhooks/dispatch/work-order",
        "WorkOrderCreated",
        order["Id"],
        os.environ[WEBHOOK_SECRET_ENV],
    )
    assert delivery.json()["decision"] == "block"
    assert eventually(lambda: outbox_state(app)[1] >= 1)  # tried once, kept
    peer.faults.reset()
    time.sleep(0.05)  # past the (0.01 s) back-off of the failed attempt

    sent = deliver(runtime(app).sessions, "dispatch")

    assert sent["sent"] == 1
    assert peer.work_order(order["Id"])["ComplianceHold"] is True
    assert outbox_state(app) == (0, 0)


def test_vendor_changed_pulls_that_provider_without_moving_the_watermark(
    app, served, network, peer, api
):
    good, _ = network
    with runtime(app).sessions() as session:
        before = session.get(m.SyncState, ("dispatch", "Provider")).watermark
    peer.touch_provider(good, Name="Renamed Plumbing LLC")

    delivery = peer.send_webhook(
        f"{served}/webhooks/dispatch/vendor-changed",
        "ProviderUpdated",
        {"Id": good},
        os.environ[WEBHOOK_SECRET_ENV],
    )

    assert delivery.status == 200, delivery.body
    vendor = api.get(f"/api/v1/vendors/{vendor_of(app, good)}").get_json()
    assert vendor["name"] == "Renamed Plumbing LLC"
    with runtime(app).sessions() as session:
        assert session.get(m.SyncState, ("dispatch", "Provider")).watermark == before


def test_first_arrival_failing_lets_the_senders_retry_act(app, served, network, peer, api):
    good, _ = network
    peer.touch_provider(good, Name="Retried Plumbing LLC")
    url = f"{served}/webhooks/dispatch/vendor-changed"
    stamp = int(time.time())

    def send():
        return send_webhook(
            url,
            "ProviderUpdated",
            {"Id": good},
            os.environ[WEBHOOK_SECRET_ENV],
            msg_id="msg_retry",
            timestamp=stamp,
        )

    peer.faults.fail(1000, status=503)
    first = send()
    peer.faults.reset()
    retry = send()

    assert (first.status, retry.status) == (503, 200)
    assert api.get(f"/api/v1/vendors/{vendor_of(app, good)}").get_json()["name"] == (
        "Retried Plumbing LLC"
    )


def test_with_redis_vendor_changed_is_a_job_that_pulls_the_provider(
    app, engine, database_url, served, network, peer, monkeypatch
):
    good, _ = network
    name = f"coi-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("COI_DATABASE_URL", database_url)
    monkeypatch.setenv("COI_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("COI_QUEUE", name)
    queued = create_app(Settings.from_env(), engine=engine)
    server = serve(queued)
    queue = Queue(name, connection=Redis.from_url(REDIS_URL))
    peer.touch_provider(good, Name="Queued Plumbing LLC")
    try:
        delivery = peer.send_webhook(
            f"{server.url}/webhooks/dispatch/vendor-changed",
            "ProviderUpdated",
            {"Id": good},
            os.environ[WEBHOOK_SECRET_ENV],
        )
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
    finally:
        server.stop()
        runtime(queued).write_behind.close()  # its receipt, before the tables are emptied
        drop_queue(queue)

    assert delivery.status == 202 and delivery.json()["job_id"]
    with runtime(app).sessions() as session:
        assert session.get(m.Vendor, vendor_of(app, good)).name == "Queued Plumbing LLC"
