"""Sync with the Salesforce stand-in end to end (real HTTPS, simple-salesforce): Accounts in,
compliance custom fields out through composite/sobjects, an expired session renewed mid-run."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from connector.app import runtime
from connector.services.outbox import deliver
from connector.services.sync import run_sync
from connector.storage import models as m
from sandbox.salesforce import SalesforceSandbox
from tests.conftest import STANDARD_SET, salesforce_connection

SECRET_ENV = "COI_TEST_SF_SECRET"


@pytest.fixture(scope="module")
def running_sf():
    peer = SalesforceSandbox(page_size=200)
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture
def crm(api, running_sf, monkeypatch):
    running_sf.faults.reset()
    for record_id in list(running_sf.ids("Account")):
        running_sf.delete("Account", record_id)
    running_sf.seed_accounts(450, seed=11)
    monkeypatch.setenv(SECRET_ENV, running_sf.client_secret)
    body = salesforce_connection(running_sf, SECRET_ENV)
    assert api.post("/api/v1/connections", body).status_code == 201
    api.put("/api/v1/requirement-sets/standard", STANDARD_SET)
    yield running_sf


def test_accounts_in_compliance_fields_out(app, crm, sessions):
    rt = runtime(app)

    run_id = run_sync(rt.sessions, rt.jobs, "crm", "Account", full=True)
    pushed = deliver(rt.sessions, "crm")

    with sessions() as session:
        run = session.get(m.SyncRun, run_id)
        bindings = session.scalar(select(func.count()).select_from(m.Binding))
        some_id = session.scalar(select(m.Binding.external_id).limit(1))
    assert run.status in ("succeeded", "partial")
    assert bindings == run.counts["created"] + run.counts["merged"]
    assert pushed["sent"] == bindings and pushed["calls"] == -(-bindings // 200)
    assert crm.get("Account", some_id)["COI_Status__c"] == "Non-compliant"


def test_expired_session_is_renewed_transparently_during_a_sync(app, crm):
    rt = runtime(app)
    first = run_sync(rt.sessions, rt.jobs, "crm", "Account", full=True)
    crm.expire_sessions()

    again = run_sync(rt.sessions, rt.jobs, "crm", "Account", full=True)

    with rt.sessions() as session:
        assert session.get(m.SyncRun, again).status == session.get(m.SyncRun, first).status
