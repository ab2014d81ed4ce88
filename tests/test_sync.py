"""Sync in and out end to end: a connection to the Business Central stand-in (real SOAP over
HTTP with zeep), vendors upserted through bindings, compliance pushed back through the outbox."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from connector.app import runtime
from connector.services.outbox import deliver
from connector.services.sync import run_sync
from connector.storage import models as m
from sandbox.business_central import BusinessCentralSandbox
from tests.conftest import STANDARD_SET, good_certificate

PASSWORD_ENV = "COI_TEST_BC_PASSWORD"


@pytest.fixture(scope="module")
def running_bc():
    with BusinessCentralSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def bc(running_bc, monkeypatch):
    running_bc.reset()
    monkeypatch.setenv(PASSWORD_ENV, running_bc.password)
    yield running_bc
    running_bc.reset()


@pytest.fixture
def erp(api, bc):
    """Connection `erp` to the stand-in: Vendor -> vendor in, compliance -> Blocked out."""
    body = {
        "name": "erp",
        "kind": "business_central",
        "settings": {
            "base_url": bc.base_url,
            "company": bc.company,
            "username": bc.username,
            "password_env": PASSWORD_ENV,
            "block_payment": True,
            "retry_base_seconds": 0.01,
            "max_attempts": 2,
            "timeout": 5,
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
    response = api.post("/api/v1/connections", body)
    assert response.status_code == 201, response.get_json()
    api.put("/api/v1/requirement-sets/standard", STANDARD_SET)
    return "erp"


def pull(app, full: bool = False) -> dict:
    rt = runtime(app)
    run_id = run_sync(rt.sessions, rt.jobs, "erp", "Vendor", full=full)
    with rt.sessions() as session:
        run = session.get(m.SyncRun, run_id)
        return {"status": run.status, "counts": run.counts, "errors": run.errors}


def count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_full_sync_creates_one_vendor_per_record_with_its_binding(app, erp, bc, sessions):
    bc.seed_vendors(30)

    run = pull(app, full=True)

    assert (run["status"], run["counts"]["created"]) == ("succeeded", 30)
    assert (count(sessions, m.Vendor), count(sessions, m.Binding)) == (30, 30)


def test_rerun_creates_no_duplicates(app, erp, bc, sessions):
    bc.seed_vendors(12)
    pull(app, full=True)

    again = pull(app)

    assert again["counts"]["created"] == 0
    assert count(sessions, m.Vendor) == 12


def test_bad_record_is_rejected_with_its_reason_and_the_run_goes_on(app, erp, bc, sessions):
    numbers = bc.seed_vendors(10)
    bc.set_fields(numbers[3], Name="")

    run = pull(app, full=True)

    assert run["status"] == "partial"
    assert run["counts"]["rejected"] == 1 and run["errors"][0]["message"]
    assert count(sessions, m.Vendor) == 9


def test_remote_deactivation_deactivates_the_vendor(app, erp, bc, api):
    numbers = bc.seed_vendors(3)
    pull(app, full=True)
    bc.set_fields(numbers[0], Blocked="All")

    pull(app)

    listing = api.get("/api/v1/vendors").get_json()["items"]
    assert sorted(v["active"] for v in listing) == [False, True, True]


def test_non_compliant_vendors_are_payment_blocked_in_the_erp(app, erp, bc, sessions):
    numbers = bc.seed_vendors(5)
    pull(app, full=True)

    sent = deliver(runtime(app).sessions, "erp")

    assert sent["sent"] == 5
    assert {bc.vendor(n)["Blocked"] for n in numbers} == {"Payment"}
    assert count(sessions, m.OutboxEntry) == 0


def test_second_push_with_nothing_changed_makes_no_call(app, erp, bc):
    bc.seed_vendors(4)
    pull(app, full=True)
    deliver(runtime(app).sessions, "erp")
    calls_before = sum(bc.calls.values())

    again = deliver(runtime(app).sessions, "erp")
    pull(app)
    after_pull = deliver(runtime(app).sessions, "erp")

    assert (again["calls"], after_pull["sent"]) == (0, 0)
    assert sum(bc.calls.values()) - calls_before > 0  # the pull itself talked to the ERP


def test_push_during_a_503_burst_keeps_the_work_and_delivers_it_later(app, erp, bc, sessions):
    numbers = bc.seed_vendors(6)
    pull(app, full=True)
    bc.faults.fail(50, status=503)

    first = deliver(runtime(app).sessions, "erp")
    waiting = count(sessions, m.OutboxEntry)
    bc.faults.reset()
    time.sleep(0.1)
    second = deliver(runtime(app).sessions, "erp")

    assert (first["sent"], waiting) == (0, 6)
    assert second["sent"] == 6
    assert {bc.vendor(n)["Blocked"] for n in numbers} == {"Payment"}
    assert count(sessions, m.OutboxEntry) == 0


def test_values_staged_again_while_being_sent_are_sent_after_them(app, erp, bc, api, sessions):
    # The vendor turns compliant while its block is on the wire: the block is acknowledged, and
    # the lifting of it stays in the outbox and goes next instead of being lost.
    (number,) = bc.seed_vendors(1)
    pull(app, full=True)
    with sessions() as session:
        vendor_id = session.scalar(select(m.Vendor.id))
    bc.faults.slow(0.5)
    sent: dict = {}
    sending = threading.Thread(target=lambda: sent.update(deliver(runtime(app).sessions, "erp")))
    sending.start()
    time.sleep(0.2)
    api.post(f"/api/v1/vendors/{vendor_id}/certificates", good_certificate())
    sending.join()

    assert (sent["sent"], bc.vendor(number)["Blocked"]) == (2, "_blank_")
    assert count(sessions, m.OutboxEntry) == 0
