"""Sync in, page by page, against the Salesforce stand-in serving small pages (4 records): the
merge rules applied across the records of one page, pages read ahead of the one being applied
with a remote failure surfacing in order, and `coi sync` showing its progress."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from adapters.base import AdapterError
from connector.app import runtime
from connector.cli import main, sync_progress_line
from connector.services.sync import run_sync
from connector.storage import models as m
from sandbox.salesforce import SalesforceSandbox
from tests.conftest import STANDARD_SET, salesforce_connection

SECRET_ENV = "COI_TEST_SF_PAGES_SECRET"
PAGE = 4


@pytest.fixture(scope="module")
def running_sf():
    peer = SalesforceSandbox(page_size=PAGE)
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture
def crm(api, running_sf, monkeypatch):
    running_sf.faults.reset()
    for record_id in list(running_sf.ids("Account")):
        running_sf.delete("Account", record_id)
    monkeypatch.setenv(SECRET_ENV, running_sf.client_secret)
    body = salesforce_connection(running_sf, SECRET_ENV, retry_attempts=2)
    assert api.post("/api/v1/connections", body).status_code == 201
    api.put("/api/v1/requirement-sets/standard", STANDARD_SET)
    yield running_sf
    running_sf.faults.reset()


def account(peer: SalesforceSandbox, name: str, **fields) -> str:
    return peer.add("Account", {"Name": name, "Type": "Vendor", **fields})


def pull(app, full: bool = True, **kw) -> dict:
    rt = runtime(app)
    run_id = run_sync(rt.sessions, rt.jobs, "crm", "Account", full=full, **kw)
    with rt.sessions() as session:
        run = session.get(m.SyncRun, run_id)
        return {"status": run.status, "counts": run.counts, "errors": run.errors}


def vendors(sessions) -> list[dict]:
    """Every vendor with its sorted external ids, in id order."""
    with sessions() as session:
        rows = session.scalars(select(m.Vendor).order_by(m.Vendor.id)).all()
        return [
            {
                "name": v.name,
                "email": v.email,
                "active": v.active,
                "status": v.status,
                "work_types": [w.work_type for w in v.work_types],
                "refs": sorted(b.external_id for b in v.bindings),
            }
            for v in rows
        ]


def test_two_records_of_one_page_with_one_tax_id_become_one_vendor(app, crm, sessions):
    first = account(crm, "Northwind Plumbing", Tax_ID__c="12-3456789", Email__c="a@nw.example")
    second = account(crm, "NW Plumbing Services", Tax_ID__c="12-3456789", Email__c="b@nw.example")

    run = pull(app)

    assert (run["counts"]["created"], run["counts"]["merged"]) == (1, 1)
    assert [v["refs"] for v in vendors(sessions)] == [sorted([first, second])]


def test_a_record_merges_with_the_vendor_an_earlier_record_of_its_page_created(app, crm, sessions):
    first = account(crm, "Acme Electric, Inc.", Email__c="Office@Acme.example")
    same = account(crm, "ACME ELECTRIC INC", Email__c="office@acme.example")
    other_name = account(crm, "Acme Roofing", Email__c="office@acme.example")

    run = pull(app)

    listed = vendors(sessions)
    assert (run["counts"]["created"], run["counts"]["merged"]) == (2, 1)
    assert [v["refs"] for v in listed] == [sorted([first, same]), [other_name]]
    # The later record of the same vendor sets its fields, as an update would.
    assert listed[0]["name"] == "ACME ELECTRIC INC"


def test_a_record_merges_with_a_vendor_of_an_earlier_page_and_one_from_the_api(
    app, api, crm, sessions
):
    made = api.post(
        "/api/v1/vendors",
        {"name": "Globex Services", "tax_id": "98-7654321", "work_types": ["hvac"]},
    ).get_json()
    fillers = [account(crm, f"Filler {i}", Email__c=f"f{i}@filler.example") for i in range(5)]
    by_email = account(crm, "FILLER 0", Email__c="F0@filler.example")
    by_tax = account(crm, "Globex", Tax_ID__c="98-7654321", Trades__c="Electrical")

    run = pull(app)

    listed = vendors(sessions)
    assert run["counts"]["merged"] == 2 and len(listed) == 6
    assert listed[0]["refs"] == [by_tax] and listed[0]["work_types"] == ["electrical"]
    assert listed[0]["name"] == "Globex" and made["id"] > 0
    assert listed[1]["refs"] == sorted([fillers[0], by_email])


def test_a_remote_change_updates_the_vendor_and_an_inactive_record_deactivates_it(
    app, crm, sessions
):
    kept = account(crm, "Initech Painting", Email__c="x@initech.example", Trades__c="Painting")
    gone = account(crm, "Hooli Cleaning", Email__c="y@hooli.example")
    pull(app)
    crm.update("Account", kept, {"Trades__c": "Painting;Drywall", "Email__c": "new@initech.ex"})
    crm.update("Account", gone, {"Active__c": "No"})

    run = pull(app, full=False)

    listed = vendors(sessions)
    assert (run["counts"]["updated"], run["counts"]["deactivated"]) == (1, 1)
    assert listed[0]["work_types"] == ["drywall", "painting"]
    assert listed[0]["email"] == "new@initech.ex"
    assert [v["active"] for v in listed] == [True, False]
    assert {v["status"] for v in listed} == {"non_compliant"}


def test_a_remote_failure_mid_run_fails_it_after_the_pages_read_before(app, crm, sessions):
    for i in range(5 * PAGE):
        account(crm, f"Vendor {i:02d}", Email__c=f"v{i}@vendors.example")
    rt = runtime(app)
    armed = []

    def progress(counts: dict) -> None:
        if not armed:  # after the first page commits, every later request fails
            crm.faults.fail(1000, status=503)
            armed.append(counts["seen"])

    with pytest.raises(AdapterError):
        run_sync(rt.sessions, rt.jobs, "crm", "Account", full=True, progress=progress)

    with rt.sessions() as session:
        run = session.scalars(select(m.SyncRun).order_by(m.SyncRun.id.desc())).first()
        state = session.get(m.SyncState, ("crm", "Account"))
        synced = session.scalar(select(func.count()).select_from(m.Binding))
    # Pages already read when the remote failed were applied (at most the one waiting and the
    # one in hand), and the watermark is that of the last applied record.
    assert run.status == "failed" and "503" in run.errors[-1]["message"]
    assert synced % PAGE == 0 and PAGE <= synced <= 3 * PAGE
    assert state.watermark == crm.get("Account", crm.ids("Account")[synced - 1])["SystemModstamp"]

    crm.faults.reset()
    pull(app, full=False)
    assert [len(v["refs"]) for v in vendors(sessions)] == [1] * (5 * PAGE)


def test_coi_sync_shows_a_progress_bar_against_the_remote_total(
    app, crm, database_url, monkeypatch
):
    for i in range(3 * PAGE - 1):
        account(crm, f"Vendor {i:02d}", Email__c=f"v{i}@vendors.example")
    monkeypatch.setenv("COI_DATABASE_URL", database_url)
    monkeypatch.delenv("COI_REDIS_URL", raising=False)

    result = CliRunner().invoke(main, ["sync", "crm", "--object", "Account", "--full"])

    assert result.exit_code == 0, result.output
    frames = result.output.split("\r")
    assert "[" + "#" * 30 + "] 100% 11/11  created 11" in frames[-1]
    assert "4/11" in frames[1] and "8/11" in frames[2]
    assert "sync run" in frames[-1]


def test_coi_sync_counts_records_when_the_remote_gives_no_total():
    line = sync_progress_line({"seen": 4200, "created": 4000, "merged": 0, "rejected": 2})

    assert line == "4,200 records  created 4,000  rejected 2"


def test_coi_push_sends_what_waits_in_the_outbox(app, crm, database_url, monkeypatch):
    record = account(crm, "Northwind Plumbing", Email__c="a@nw.example")
    pull(app)  # stages the vendor's compliance fields; the sync alone sends nothing
    waiting = crm.get("Account", record).get("COI_Status__c")
    monkeypatch.setenv("COI_DATABASE_URL", database_url)
    monkeypatch.delenv("COI_REDIS_URL", raising=False)

    result = CliRunner().invoke(main, ["push"])

    assert result.exit_code == 0, result.output
    assert "crm: sent 1" in result.output
    assert (waiting, crm.get("Account", record)["COI_Status__c"]) == (None, "Non-compliant")


def test_a_record_active_again_reactivates_the_vendor_it_deactivated(app, crm, sessions):
    record = account(crm, "Vandelay Roofing", Email__c="art@vandelay.example")
    pull(app)
    crm.update("Account", record, {"Active__c": "No"})
    pull(app, full=False)
    crm.update("Account", record, {"Active__c": "Yes"})

    run = pull(app, full=False)

    assert (run["counts"]["updated"], run["counts"]["reactivated"]) == (1, 1)
    assert [v["active"] for v in vendors(sessions)] == [True]


def test_a_vendor_another_system_deactivated_stays_inactive(app, crm, sessions):
    record = account(crm, "Kramerica Plumbing", Tax_ID__c="55-5555555")
    pull(app)
    rt = runtime(app)
    with rt.sessions() as session, session.begin():
        vendor = session.scalars(select(m.Vendor)).one()
        vendor.active, vendor.deactivated_by = False, "erp"
    crm.update("Account", record, {"Phone": "555-0100"})

    run = pull(app, full=False)

    assert (run["counts"]["updated"], run["counts"]["reactivated"]) == (1, 0)
    assert [v["active"] for v in vendors(sessions)] == [False]
