"""The `coi` command line against the test databases."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from connector.cli import main
from connector.storage import models as m
from tests.conftest import good_certificate


@pytest.fixture
def coi(app, database_url):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), env={"COI_DATABASE_URL": database_url})

    return run


def test_db_upgrade_on_a_current_database_is_a_no_op(coi):
    result = coi("db", "upgrade")

    assert (result.exit_code, result.output.strip()) == (0, "database is at the latest revision")


def test_insurers_import_loads_ratings_and_recomputes(
    coi, api, standard_set, make_vendor, tmp_path
):
    vendor_id = make_vendor(cert=good_certificate())
    strict = {**standard_set, "min_am_best": "A"}
    for key in ("key", "version", "effective_from", "created_at"):
        strict.pop(key)
    api.put("/api/v1/requirement-sets/standard", strict)
    csv_file = tmp_path / "insurers.csv"
    csv_file.write_text("naic,name,am_best\n10001,Keystone Mutual Insurance Co.,B+\n")

    result = coi("insurers", "import", str(csv_file))

    assert result.exit_code == 0, result.output
    assert api.get(f"/api/v1/vendors/{vendor_id}").get_json()["status"] == "non_compliant"


def test_insurers_import_with_a_bad_row_loads_nothing(coi, sessions, tmp_path):
    csv_file = tmp_path / "insurers.csv"
    csv_file.write_text("naic,name,am_best\n10001,Good Co,A\n1234,Bad Naic,A\n10003,Bad,Z\n")

    result = coi("insurers", "import", str(csv_file))

    with sessions() as session:
        stored = session.scalar(select(func.count()).select_from(m.Insurer))
    assert (result.exit_code, stored) == (2, 0)
    assert "line 3" in result.output and "line 4" in result.output


def test_evaluate_recomputes_and_prints_the_summary(coi, standard_set, make_vendor):
    make_vendor("Good Plumbing", cert=good_certificate())
    make_vendor("Uninsured Plumbing")

    result = coi("evaluate")

    assert result.exit_code == 0, result.output
    assert "evaluated 2 vendors" in result.output
    assert "Uninsured Plumbing" in result.output.split("Good Plumbing")[0]


def test_demo_runs_end_to_end_on_sqlite_against_the_peers(tmp_path):
    result = CliRunner().invoke(
        main,
        ["demo", "--database-url", f"sqlite:///{tmp_path / 'demo.db'}"],
        env={"COI_CLAIMS_DIR": str(tmp_path)},
    )

    assert result.exit_code == 0, result.output
    output = result.output
    assert "every decision is as expected and the peers hold what was pushed" in output
    # One vendor per contractor, bound in every system that knows it.
    assert "-> 64 vendors with 184 bindings" in output
    assert "Salesforce         56 Account records sent in 1 batch(es)" in output
    assert "Blocked=Payment" in output and "DoNotDispatch=true" in output
    assert "COI_Status__c=Expiring" in output
    # The dispatch system's signed webhooks: allowed, blocked and flagged back, a repeat
    # answered the same with no second decision.
    webhooks = output.split("webhooks from dispatch")[1]
    assert "got back 200 ALLOW" in webhooks and "got back 200 BLOCK" in webhooks
    assert "ComplianceHold=true  ComplianceNote=COI check: block." in webhooks
    assert "the same answer" in webhooks
    assert "decisions stored: 284019001 1, 284019002 1" in webhooks
    # The demo's secrets live in the environment only while it runs.
    assert not [name for name in os.environ if name.startswith("COI_DEMO_")]
