"""Gate decisions stored in batches by a worker's write-behind: nothing lost while the database is
away, a record the database refuses does not hold up the others, a full queue refuses (503)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from uuid import uuid4

import pytest
import requests
from sqlalchemy import create_engine, func, select, text

from connector.clock import utcnow
from connector.errors import APIError
from connector.services import gate
from connector.services.write_behind import WriteBehind
from connector.storage import models as m
from connector.storage.db import make_sessionmaker


def decision(vendor_id: int | None, work_order: str) -> gate.Decision:
    request = {
        "work_order": {"system": "dispatch", "external_id": work_order},
        "work_type": "plumbing",
        "region": "us-east",
        "scheduled_start": date(2026, 12, 1),
        "scheduled_end": date(2026, 12, 2),
        "amount": None,
    }
    outcome = {
        "vendor_id": vendor_id,
        "decision": "allow",
        "status": "compliant",
        "score": 90,
        "requirement_set": "standard",
        "reasons": [],
        "alternatives": [],
    }
    return gate.Decision(uuid4().hex, utcnow(), "test", request, outcome)


def stored(sessions) -> list[str]:
    with sessions() as session:
        return session.scalars(
            select(m.WorkOrder.external_id)
            .join(m.GateDecision, m.GateDecision.work_order_id == m.WorkOrder.id)
            .order_by(m.WorkOrder.external_id)
        ).all()


def test_a_record_the_database_refuses_is_logged_and_the_others_are_stored(
    sessions, make_vendor, caplog
):
    kept, gone = make_vendor(), make_vendor()
    writer = WriteBehind(sessions, interval=60)
    writer.add(gate.store, decision(kept, "WO-1"))
    writer.add(gate.store, decision(gone, "WO-2"))
    with sessions() as session, session.begin():
        session.execute(m.Vendor.__table__.delete().where(m.Vendor.id == gone))

    with caplog.at_level(logging.ERROR, logger="connector.services.write_behind"):
        written = writer.flush()

    assert (written, writer.pending, stored(sessions)) == (1, 0, ["WO-1"])
    assert "not written" in caplog.text and "WO-2" in caplog.text


def test_a_record_its_writer_fails_on_does_not_take_the_batch_with_it(sessions, make_vendor):
    vendor = make_vendor()
    broken = decision(vendor, "WO-2")
    del broken.outcome["score"]
    writer = WriteBehind(sessions, interval=60)
    writer.add(gate.store, decision(vendor, "WO-1"))
    writer.add(gate.store, broken)
    writer.add(gate.store, decision(vendor, "WO-3"))

    written = writer.flush()

    assert (written, writer.pending, stored(sessions)) == (2, 0, ["WO-1", "WO-3"])


@pytest.fixture
def impatient_sessions(engine):
    """Sessions on the same database that give up on a lock at once."""
    if engine.dialect.name == "sqlite":
        impatient = create_engine(engine.url, connect_args={"timeout": 0.05})
    else:
        impatient = create_engine(engine.url, connect_args={"options": "-c lock_timeout=50"})
    yield make_sessionmaker(impatient)
    impatient.dispose()


def test_records_wait_while_the_database_is_locked_and_are_stored_after(
    engine, sessions, make_vendor, impatient_sessions
):
    vendor = make_vendor()
    writer = WriteBehind(impatient_sessions, interval=60)
    writer.add(gate.store, decision(vendor, "WO-1"))
    writer.add(gate.store, decision(vendor, "WO-2"))

    with engine.connect() as blocker:
        if engine.dialect.name == "sqlite":
            blocker.exec_driver_sql("BEGIN EXCLUSIVE")
        else:
            blocker.begin()
            blocker.execute(text("LOCK TABLE work_orders IN ACCESS EXCLUSIVE MODE"))
        while_locked = (writer.flush(), writer.pending)
        blocker.rollback()

    assert (while_locked, writer.flush(), stored(sessions)) == ((0, 2), 2, ["WO-1", "WO-2"])


def test_a_full_queue_refuses_instead_of_dropping(sessions, make_vendor):
    vendor = make_vendor()
    writer = WriteBehind(sessions, interval=60, max_pending=2)
    writer.add(gate.store, decision(vendor, "WO-1"))
    writer.add(gate.store, decision(vendor, "WO-2"))

    with pytest.raises(APIError) as refused:
        writer.add(gate.store, decision(vendor, "WO-3"))

    assert (refused.value.status, writer.flush(), stored(sessions)) == (503, 2, ["WO-1", "WO-2"])


def test_closing_stores_what_is_queued(sessions, make_vendor):
    vendor = make_vendor()
    writer = WriteBehind(sessions, interval=60)
    writer.add(gate.store, decision(vendor, "WO-1"))

    writer.close()

    with sessions() as session:
        count = session.scalar(select(func.count()).select_from(m.GateDecision))
    assert count == 1


def test_a_gunicorn_worker_stopped_gracefully_stores_its_queued_decisions(
    database_url, engine, sessions, make_token, make_vendor, tmp_path
):
    """`coi serve` with a write-behind interval far longer than the test: only the stop writes."""
    make_vendor()
    token = make_token("integration")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "COI_DATABASE_URL": database_url,
        "COI_WRITE_BEHIND_MS": "600000",
    }
    server = subprocess.Popen(
        [Path(sys.executable).with_name("coi"), "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        body = {
            "work_order": {"system": "dispatch", "external_id": "WO-1"},
            "vendor": {"system": "dispatch", "external_id": "P-1"},
            "work_type": "plumbing",
            "region": "us-east",
            "scheduled_start": "2026-12-01",
            "scheduled_end": "2026-12-02",
        }
        answer = _post_when_up(port, "/api/v1/gate", body, token)
        queued = stored(sessions)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    with sessions() as session:
        uid = session.scalar(select(m.GateDecision.uid))
    assert (queued, uid) == ([], answer["decision_id"])


def _post_when_up(port: int, path: str, body: dict, token: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        try:
            response = requests.post(
                f"http://127.0.0.1:{port}{path}",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            response.raise_for_status()
            return response.json()
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
