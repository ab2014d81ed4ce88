"""Claim files for a SQLite database: one winner per key across processes and threads, stale
claims taken over by one caller, the sweep, the rebuild of a lost folder, where the folder is; and
the webhook receiver on them: a delivery is answered while another process holds the database's
write lock, a lost folder is rebuilt from the receipts, a dead process's claim is taken over, a
folder others can write to is refused."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine

from connector.app import create_app, runtime
from connector.storage import models as m
from connector.storage.claim_files import ClaimFiles
from sandbox.dispatch import send_webhook
from sandbox.server import serve
from tests.test_webhooks_receiver import add_connection, count, hook, work_order
from webhooks import receipts, receiver

KEYS = [f"dispatch\0msg_{n}" for n in range(200)]


def _take_all(folder: str) -> list[bool]:
    files = ClaimFiles(folder)
    return [files.take(key) for key in KEYS]


def _new_folder(path) -> ClaimFiles:
    files = ClaimFiles(str(path))
    files.restore([])
    return files


def test_each_key_is_taken_by_exactly_one_of_several_processes(tmp_path):
    folder = _new_folder(tmp_path / "claims").folder
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_take_all, [folder] * 4))

    winners = [sum(taken) for taken in zip(*results, strict=True)]

    assert winners == [1] * len(KEYS)


def test_a_stale_claim_is_taken_over_by_one_caller_and_a_fresh_one_by_none(tmp_path):
    files = _new_folder(tmp_path / "claims")
    files.take("stale", at=time.time() - 3600)
    files.take("fresh")
    cutoff = time.time() - 60

    with ThreadPoolExecutor(20) as pool:
        stale = list(pool.map(lambda _: files.take_over("stale", cutoff), range(20)))
        fresh = list(pool.map(lambda _: files.take_over("fresh", cutoff), range(20)))

    assert (stale.count(True), fresh.count(True)) == (1, 0)


def test_sweep_removes_the_claims_made_before_the_cutoff_only(tmp_path):
    files = _new_folder(tmp_path / "claims")
    for key, age in (("old", 8 * 86400), ("recent", 6 * 86400)):
        files.take(key, at=time.time() - age)

    removed = files.sweep(time.time() - 7 * 86400)

    assert (removed, files.take("old"), files.take("recent")) == (1, True, False)


def test_a_missing_folder_takes_nothing_until_it_is_restored(tmp_path):
    files = ClaimFiles(str(tmp_path / "claims"))

    assert files.take("any") is None
    assert sorted(os.listdir(tmp_path)) == []


def test_restore_builds_a_missing_folder_and_leaves_an_existing_one(tmp_path):
    files = ClaimFiles(str(tmp_path / "claims"))
    files.restore([("seen", time.time() - 30)])
    files.restore([("other", time.time())])  # the folder exists now: nothing changes

    assert (files.take("seen"), files.take("other")) == (False, True)
    assert sorted(os.listdir(tmp_path)) == ["claims"]  # nothing left aside


def test_each_database_file_has_a_folder_of_its_own_under_the_root(tmp_path):
    root = str(tmp_path / "claims")

    one, other = (ClaimFiles.for_database(f"sqlite:///{tmp_path / n}", root) for n in ("a", "b"))

    assert os.path.dirname(one.folder) == os.path.dirname(other.folder) == root
    assert one.folder != other.folder


def test_no_claim_files_for_postgresql_or_an_in_memory_database():
    assert ClaimFiles.for_database("postgresql+psycopg://127.0.0.1/coi") is None
    assert ClaimFiles.for_database("sqlite://") is None


# --- the receiver on claim files (SQLite file databases only) ------------------------------------


@pytest.fixture
def claim_files(engine):
    files = ClaimFiles.for_database(engine.url)
    if files is None:
        pytest.skip("claim files serve SQLite database files only")
    files.restore([])  # what the app builds before its first claim: the receipts are empty
    return files


@pytest.fixture
def dispatch(api, secret, standard_set):
    add_connection(api)
    return "dispatch"


def deliver(served, secret, msg_id):
    return send_webhook(hook(served), "WorkOrderCreated", work_order(), secret, msg_id=msg_id)


def test_a_delivery_is_answered_while_another_process_holds_the_write_lock(
    app, served, dispatch, secret, sessions, claim_files, engine
):
    # Another process in a long write transaction: the claim and the answer need no write.
    other = create_engine(engine.url).raw_connection()  # the plain driver: no writer lock file
    other.execute("BEGIN IMMEDIATE")
    try:
        delivery = deliver(served, secret, "msg_locked")
    finally:
        other.rollback()
        other.close()
    runtime(app).write_behind.flush()

    assert (delivery.status, delivery.json()["decision"]) == (200, "block")
    assert count(sessions, m.WebhookReceipt) == 1


def test_a_lost_claims_folder_is_rebuilt_from_the_receipts_and_a_repeat_acts_once(
    app, served, dispatch, secret, sessions, claim_files, engine
):
    first = deliver(served, secret, "msg_moved")
    runtime(app).write_behind.flush()
    shutil.rmtree(claim_files.folder)  # the database file was moved without its folder

    restarted = create_app(runtime(app).settings, engine=engine)
    server = serve(restarted)
    try:
        again = deliver(server.url, secret, "msg_moved")
    finally:
        server.stop()
        runtime(restarted).write_behind.close()

    assert (again.status, again.json()) == (first.status, first.json())
    assert count(sessions, m.GateDecision) == 1


def test_a_claims_folder_removed_while_serving_is_rebuilt_before_the_next_claim(
    app, served, dispatch, secret, sessions, claim_files
):
    first = deliver(served, secret, "msg_removed")
    runtime(app).write_behind.flush()
    shutil.rmtree(claim_files.folder)

    again = deliver(served, secret, "msg_removed")

    assert (again.status, again.json()) == (first.status, first.json())
    assert count(sessions, m.GateDecision) == 1


def test_a_claim_left_by_a_dead_process_is_taken_over_and_the_retry_acts(
    app, served, dispatch, secret, sessions, claim_files
):
    died = time.time() - receipts.STALE_AFTER.total_seconds() - 1
    claim_files.take("dispatch\0msg_dead", at=died)

    retry = deliver(served, secret, "msg_dead")
    runtime(app).write_behind.flush()

    assert retry.status == 200
    assert count(sessions, m.GateDecision) == 1


def test_a_claim_being_acted_on_makes_a_repeat_wait_and_answer_409(
    app, served, dispatch, secret, claim_files, monkeypatch
):
    monkeypatch.setattr(receiver, "WAIT_SECONDS", 0.2)
    claim_files.take("dispatch\0msg_busy")  # claimed a moment ago, no answer yet

    repeat = deliver(served, secret, "msg_busy")

    assert (repeat.status, repeat.json()["error"]["code"]) == (409, "delivery_in_progress")


def test_a_claims_folder_someone_else_can_write_to_is_refused_with_503(
    app, served, dispatch, secret, sessions, claim_files
):
    os.chmod(claim_files.folder, 0o777)  # as if made first by another user of /dev/shm

    delivery = deliver(served, secret, "msg_foreign")

    assert (delivery.status, delivery.json()["error"]["code"]) == (503, "not_configured")
    assert count(sessions, m.WorkOrder) == 0


def test_a_claims_folder_that_cannot_be_written_is_503_and_nothing_is_acted_on(
    app, served, dispatch, secret, sessions, claim_files
):
    deliver(served, secret, "msg_first")  # the folder is made
    runtime(app).write_behind.flush()
    decisions = count(sessions, m.GateDecision)
    shutil.rmtree(claim_files.folder)
    with open(claim_files.folder, "w"):  # a file where the folder was: every claim fails
        pass

    delivery = deliver(served, secret, "msg_broken")

    os.unlink(claim_files.folder)
    assert (delivery.status, delivery.json()["error"]["code"]) == (503, "dependency_down")
    runtime(app).write_behind.flush()
    assert count(sessions, m.GateDecision) == decisions
