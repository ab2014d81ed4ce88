"""Outbound webhook events end to end: the real services emit them, the delivery run signs and
POSTs them to a real HTTP receiver on a socket, which verifies the Standard Webhooks signature.
Time is moved through the delivery run's `now`, never slept."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import select, text
from standardwebhooks import Webhook

from connector.app import create_app, runtime
from connector.cli import main
from connector.clock import today, utcnow
from connector.config import Settings
from connector.services.compliance import recompute
from connector.services.events import EVENT_TYPES, announce_expiring, expiring_unrenewed
from connector.storage import models as m
from tests.conftest import (
    REDIS_URL,
    STANDARD_SET,
    TEST_SECRET_KEY,
    JSONClient,
    certificate,
    drop_queue,
    good_certificate,
    policy,
)
from webhooks import delivery

SUBS = "/api/v1/webhook-subscriptions"
GATE_UNKNOWN = {
    "work_order": {"system": "dispatch", "external_id": "WO-9"},
    "vendor": {"system": "dispatch", "external_id": "NOBODY"},
    "work_type": "plumbing",
    "region": "us-east",
    "scheduled_start": today().isoformat(),
    "scheduled_end": today().isoformat(),
}


class Receiver:
    """A subscriber on a real socket: answers `status`, keeps every request it got."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.status
                receiver.requests.append(
                    {
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                        "answered": status,
                    }
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/coi"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def verified(self, secret: str) -> list[dict]:
        """Every request's payload, each checked against the secret (raises if one fails)."""
        return [Webhook(secret).verify(r["body"], r["headers"]) for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def subscribe(api, receiver: Receiver, events=EVENT_TYPES, **extra) -> tuple[int, str]:
    response = api.post(SUBS, {"name": "ops", "url": receiver.url, "events": list(events), **extra})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return body["id"], body["secret"]


def gate(api, body: dict) -> dict:
    """A gate decision, stored (the web app stores decisions behind the answer)."""
    decision = api.post("/api/v1/gate", body).get_json()
    write_behind = runtime(api.client.application).write_behind
    if write_behind is not None:
        write_behind.flush()
    return decision


def block(api, work_order: str = "WO-9") -> dict:
    """A stored gate decision that blocks (an unknown vendor) for this work order."""
    body = {**GATE_UNKNOWN, "work_order": {"system": "dispatch", "external_id": work_order}}
    decision = gate(api, body)
    assert decision["decision"] == "block"
    return decision


def deliver(app, now=None) -> dict:
    return delivery.deliver(runtime(app).sessions, TEST_SECRET_KEY, now=now)


def deliveries(sessions) -> list[m.WebhookDelivery]:
    with sessions() as session:
        return session.scalars(select(m.WebhookDelivery).order_by(m.WebhookDelivery.id)).all()


# --------------------------------------------------------------------------------------------
# The four events, produced by the real services
# --------------------------------------------------------------------------------------------


def test_certificate_posted_sends_a_signed_compliance_changed(app, api, receiver, standard_set):
    _, secret = subscribe(api, receiver, ["vendor.compliance_changed"])
    vendor_id = api.post(
        "/api/v1/vendors",
        {"name": "Signed Plumbing", "external_refs": [{"system": "erp", "external_id": "V-7"}]},
    ).get_json()["id"]
    api.post(f"/api/v1/vendors/{vendor_id}/certificates", good_certificate())

    counts = deliver(app)

    events = receiver.verified(secret)
    assert counts["delivered"] == 2
    assert [e["type"] for e in events] == ["vendor.compliance_changed"] * 2
    data = events[-1]["data"]
    assert data["vendor"]["id"] == vendor_id
    assert data["vendor"]["external_refs"][0]["external_id"] == "V-7"
    assert (data["previous"]["status"], data["current"]["status"]) == ("non_compliant", "compliant")
    assert data["requirement_set"] == "standard"
    assert receiver.requests[-1]["headers"]["webhook-id"].startswith("msg_")


def test_a_recompute_that_changes_nothing_emits_nothing(app, api, sessions, receiver):
    api.put("/api/v1/requirement-sets/standard", STANDARD_SET)
    subscribe(api, receiver, ["vendor.compliance_changed"])
    vendor_id = api.post("/api/v1/vendors", {"name": "Steady"}).get_json()["id"]
    before = len(deliveries(sessions))

    with sessions() as session, session.begin():
        recompute(session, [vendor_id], today())

    assert (before, len(deliveries(sessions))) == (1, 1)


def test_blocked_gate_decision_sends_gate_blocked(app, api, receiver, make_vendor, standard_set):
    _, secret = subscribe(api, receiver, ["gate.blocked"])
    make_vendor(cert=good_certificate())  # an allowed alternative
    allowed = {**GATE_UNKNOWN, "vendor": {"system": "dispatch", "external_id": "P-1"}}
    assert gate(api, allowed)["decision"] == "allow"

    decision = block(api)
    deliver(app)

    [event] = receiver.verified(secret)
    assert event["type"] == "gate.blocked"
    assert event["data"]["decision_id"] == decision["decision_id"]
    assert event["data"]["work_order"]["external_id"] == "WO-9"
    assert [r["code"] for r in event["data"]["reasons"]] == ["unknown_vendor"]
    assert event["data"]["alternatives"][0]["name"] == "Vendor 1"


def test_matched_cancellation_notice_sends_policy_cancelled(
    app, api, receiver, make_vendor, standard_set
):
    _, secret = subscribe(api, receiver, ["policy.cancelled"])
    vendor_id = make_vendor(cert=good_certificate())
    notice = {
        "policy_number": "gl 1",
        "insurer_name": "KEYSTONE MUTUAL INSURANCE CO",
        "effective_date": (today() + timedelta(days=20)).isoformat(),
        "received_via": "mail",
    }
    api.post("/api/v1/cancellation-notices", {**notice, "policy_number": "XX-404"})  # no match

    api.post("/api/v1/cancellation-notices", notice)
    deliver(app)

    [event] = receiver.verified(secret)
    assert event["type"] == "policy.cancelled"
    assert event["data"]["vendor"]["id"] == vendor_id
    assert event["data"]["policy"]["policy_number"] == "GL-1"
    assert event["data"]["cancelled_on"] == notice["effective_date"]


def test_notice_matched_by_a_later_certificate_sends_policy_cancelled(
    app, api, receiver, make_vendor, standard_set
):
    _, secret = subscribe(api, receiver, ["policy.cancelled"])
    api.post(
        "/api/v1/cancellation-notices",
        {
            "policy_number": "AU-1",
            "insurer_name": "Keystone Mutual Insurance Co.",
            "effective_date": (today() + timedelta(days=5)).isoformat(),
            "received_via": "agent",
        },
    )

    vendor_id = make_vendor(cert=good_certificate())
    deliver(app)

    [event] = receiver.verified(secret)
    assert (event["data"]["vendor"]["id"], event["data"]["policy"]["line"]) == (
        vendor_id,
        "automobile_liability",
    )


def test_expiring_policies_are_announced_once_per_expiration_date(
    app, api, sessions, receiver, make_vendor, standard_set
):
    _, secret = subscribe(api, receiver, ["policy.expiring"])
    renewed = certificate(
        policy("general_liability", "GL-1", -355, 10),
        policy("general_liability", "GL-2", 10, 375),  # renewal on file: not expiring
        policy("automobile_liability", "AU-1", -355, 10),
    )
    vendor_id = make_vendor(cert=renewed)
    make_vendor(cert=good_certificate())  # a year left: not expiring

    announced = []
    for day in (today(), today(), today() + timedelta(days=1)):
        with sessions() as session, session.begin():
            announced.append(announce_expiring(session, day))
    deliver(app)

    events = receiver.verified(secret)
    assert announced == [1, 0, 0]
    assert [e["data"]["policy"]["policy_number"] for e in events] == ["AU-1"]
    assert events[0]["data"]["vendor"]["id"] == vendor_id
    assert events[0]["data"]["days_left"] == 10


# --------------------------------------------------------------------------------------------
# Retries, leases, pausing
# --------------------------------------------------------------------------------------------


def test_receiver_down_is_retried_with_growing_delays_and_gets_the_event_once(
    app, api, sessions, receiver
):
    sub_id, secret = subscribe(api, receiver, ["gate.blocked"])
    block(api)
    receiver.status = 500
    now = utcnow()
    waits = []
    for _ in range(3):
        deliver(app, now)
        due = _aware(deliveries(sessions)[0].next_attempt_at)
        waits.append(due - now)
        assert deliver(app, due - timedelta(seconds=1))["delivered"] == 0  # not due yet
        now = due

    receiver.status = 200
    deliver(app, now)
    deliver(app, now + timedelta(days=2))

    assert waits == [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30)]
    assert [r["answered"] for r in receiver.requests] == [500, 500, 500, 200]
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1
    assert len(receiver.verified(secret)) == 4
    log = api.get(f"{SUBS}/{sub_id}/deliveries").get_json()["items"]
    assert (log[0]["status"], [a["status_code"] for a in log[0]["attempt_log"]]) == (
        "delivered",
        [500, 500, 500, 200],
    )


def test_a_failing_subscriber_is_asked_once_per_retry_not_once_per_event(
    app, api, sessions, receiver
):
    subscribe(api, receiver, ["gate.blocked"])
    receiver.status = 503
    for n in range(3):
        block(api, f"WO-{n}")

    counts = deliver(app)
    receiver.status = 200
    later = deliver(app, utcnow() + timedelta(seconds=6))

    assert (counts["retry"], later["delivered"]) == (1, 3)
    assert [r["answered"] for r in receiver.requests] == [503, 200, 200, 200]


def test_a_claimed_delivery_waits_for_its_lease_to_expire(app, api, sessions, receiver):
    subscribe(api, receiver, ["gate.blocked"])
    block(api)
    now = utcnow()
    # A worker that claims and dies before sending:
    assert len(delivery._claim(sessions, "dead-worker", now)) == 1

    during = deliver(app, now + delivery.LEASE - timedelta(seconds=1))
    after = deliver(app, now + delivery.LEASE)

    assert (during["delivered"], after["delivered"], len(receiver.requests)) == (0, 1, 1)


def test_a_subscription_that_keeps_failing_is_paused_reported_and_resumes(
    app, api, sessions, receiver
):
    sub_id, secret = subscribe(api, receiver, ["gate.blocked"])
    block(api)
    receiver.status = 500
    now = utcnow()
    while len(receiver.requests) < delivery.MAX_ATTEMPTS:
        deliver(app, now)
        now = _aware(deliveries(sessions)[0].next_attempt_at)
    paused = api.get(f"{SUBS}/{sub_id}").get_json()
    audit = api.get("/api/v1/audit?action=webhook.subscription_paused").get_json()["items"]
    block(api, "WO-2")
    while_paused = len(deliveries(sessions))

    receiver.status = 204
    resumed = api.call("PATCH", f"{SUBS}/{sub_id}", {"active": True}).get_json()
    counts = deliver(app)

    assert (paused["paused"], paused["consecutive_failures"]) == (True, 8)
    assert "HTTP 500" in paused["paused_reason"]
    assert paused["deliveries"] == {"pending": 0, "delivered": 0, "failed": 1}
    assert [a["entity_id"] for a in audit] == [str(sub_id)]
    assert while_paused == 1  # a paused subscription gets no new events
    assert (resumed["paused"], resumed["consecutive_failures"]) == (False, 0)
    assert counts["delivered"] == 1
    assert len(receiver.verified(secret)) == delivery.MAX_ATTEMPTS + 1


def test_retry_delays_grow_from_seconds_to_hours():
    delays = [delivery.retry_delay(n) for n in range(1, delivery.MAX_ATTEMPTS + 1)]

    assert delays[0] == timedelta(seconds=5)
    assert delays[-2] >= timedelta(hours=5)
    assert delays[-1] is None  # the last attempt is final
    assert all(a <= b for a, b in pairwise(delays[:-1]))


# --------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------


def test_the_secret_is_shown_once_and_stored_only_encrypted(api, engine, receiver):
    secret = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LWZvci10ZXN0cw=="  # 29-byte key
    sub_id, shown = subscribe(api, receiver, ["gate.blocked"], secret=secret)

    answers = [
        api.get(SUBS).get_data(as_text=True),
        api.get(f"{SUBS}/{sub_id}").get_data(as_text=True),
        api.call("PATCH", f"{SUBS}/{sub_id}", {"name": "ops 2"}).get_data(as_text=True),
        api.get("/api/v1/audit").get_data(as_text=True),
    ]
    with engine.connect() as conn:
        rows = [
            repr(tuple(row))
            for table in m.Base.metadata.sorted_tables
            for row in conn.execute(table.select())
        ]

    assert shown == secret
    key = secret.removeprefix("whsec_")
    assert [a for a in answers if key in a] == []
    assert [r for r in rows if key in r] == []


def test_rotated_secret_signs_what_is_sent_next(app, api, receiver):
    sub_id, old = subscribe(api, receiver, ["gate.blocked"])
    rotated = api.post(f"{SUBS}/{sub_id}/rotate-secret")
    block(api)

    deliver(app)

    new = rotated.get_json()["secret"]
    assert (rotated.status_code, new != old) == (200, True)
    assert len(receiver.verified(new)) == 1
    with pytest.raises(Exception, match="signature"):
        receiver.verified(old)


def test_without_a_secret_key_subscriptions_cannot_be_created(engine, database_url, make_token):
    app = create_app(Settings(database_url=database_url, secret_key=None), engine=engine)
    api = JSONClient(app.test_client(), make_token("admin"))

    response = api.post(
        SUBS, {"name": "x", "url": "https://example.test/h", "events": ["gate.blocked"]}
    )

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "secret_key_missing"
    assert "COI_SECRET_KEY" in response.get_json()["error"]["message"]
    assert api.get(SUBS).get_json()["items"] == []


# --------------------------------------------------------------------------------------------
# The API: bad input, the log, the CLI
# --------------------------------------------------------------------------------------------

GOOD = {"name": "ops", "url": "https://hooks.example.test/coi", "events": ["gate.blocked"]}
BAD_BODIES = {
    "ftp_url": ({**GOOD, "url": "ftp://hooks.example.test/"}, "url"),
    "no_host": ({**GOOD, "url": "https://"}, "url"),
    "unknown_event": ({**GOOD, "events": ["vendor.deleted"]}, "events"),
    "no_events": ({**GOOD, "events": []}, "events"),
    "events_not_a_list": ({**GOOD, "events": "gate.blocked"}, "events"),
    "blank_name": ({**GOOD, "name": "  "}, "name"),
    "secret_without_prefix": ({**GOOD, "secret": "c2VjcmV0"}, "secret"),
    "secret_not_base64": ({**GOOD, "secret": "whsec_not base64!!"}, "secret"),
    "secret_too_short": ({**GOOD, "secret": "whsec_c2hvcnQ="}, "secret"),
    "unknown_field": ({**GOOD, "retries": 3}, "retries"),
    "missing_url": ({"name": "ops", "events": ["gate.blocked"]}, "url"),
}


@pytest.mark.parametrize(("body", "field"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_subscription_is_a_422_naming_the_field(api, body, field):
    response = api.post(SUBS, body)

    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]
    assert api.get(SUBS).get_json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "_schema"), ({"active": "yes please"}, "active"), ({"url": "mailto:x@y.z"}, "url")],
)
def test_bad_patch_is_a_422_and_changes_nothing(api, receiver, body, field):
    sub_id, _ = subscribe(api, receiver)

    response = api.call("PATCH", f"{SUBS}/{sub_id}", body)

    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    assert api.get(f"{SUBS}/{sub_id}").get_json()["url"] == receiver.url


def test_unknown_subscription_is_a_404_everywhere(api):
    for method, suffix in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/deliveries")]:
        body = {"active": True} if method == "PATCH" else None
        response = api.call(method, f"{SUBS}/424242{suffix}", body)
        assert response.status_code == 404, (method, suffix)
    assert api.post(f"{SUBS}/424242/rotate-secret").status_code == 404


def test_delivery_log_pages_and_filters(app, api, receiver):
    sub_id, _ = subscribe(api, receiver, ["gate.blocked"])
    for n in range(3):
        block(api, f"WO-{n}")
    deliver(app)

    page = api.get(f"{SUBS}/{sub_id}/deliveries?per_page=2").get_json()
    delivered = api.get(f"{SUBS}/{sub_id}/deliveries?status=delivered").get_json()
    bad = api.get(f"{SUBS}/{sub_id}/deliveries?status=lost")

    assert (page["total"], len(page["items"])) == (3, 2)
    assert page["items"][0]["attempt_log"][0]["status_code"] == 200
    assert page["items"][0]["payload"]["type"] == "gate.blocked"
    assert delivered["total"] == 3
    assert bad.status_code == 422


def test_deleting_a_subscription_removes_its_deliveries(app, api, engine, receiver):
    sub_id, _ = subscribe(api, receiver, ["gate.blocked"])
    block(api)

    assert api.delete(f"{SUBS}/{sub_id}").status_code == 204

    with engine.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM webhook_deliveries")).scalar_one()
    assert (left, deliver(app)["delivered"]) == (0, 0)


def test_cli_delivers_what_is_due(app, api, receiver, database_url):
    _, secret = subscribe(api, receiver, ["gate.blocked"])
    block(api)

    result = CliRunner().invoke(
        main,
        ["webhooks", "deliver"],
        env={"COI_DATABASE_URL": database_url, "COI_SECRET_KEY": TEST_SECRET_KEY},
    )

    assert result.exit_code == 0, result.output
    assert "delivered 1" in result.output
    assert [e["type"] for e in receiver.verified(secret)] == ["gate.blocked"]


def _aware(moment):
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_payload_is_the_standard_webhooks_shape(app, api, receiver):
    subscribe(api, receiver, ["gate.blocked"])
    block(api)

    deliver(app)

    body = json.loads(receiver.requests[0]["body"])
    assert set(body) == {"type", "timestamp", "data"}
    assert body["timestamp"].endswith("Z")
    assert receiver.requests[0]["headers"]["content-type"] == "application/json"


# --------------------------------------------------------------------------------------------
# With Redis: the delivery run is queued once the emitting transaction commits
# --------------------------------------------------------------------------------------------


@pytest.fixture
def queued(engine, database_url, make_token, monkeypatch):
    """An app whose jobs go to a queue of this test's own, and that queue."""
    name = f"coi-test-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        queue_name=name,
        secret_key=TEST_SECRET_KEY,
    )
    app = create_app(settings, engine=engine)
    monkeypatch.setenv("COI_DATABASE_URL", database_url)
    monkeypatch.setenv("COI_SECRET_KEY", TEST_SECRET_KEY)
    queue = Queue(name, connection=Redis.from_url(REDIS_URL))
    yield JSONClient(app.test_client(), make_token("admin")), queue
    runtime(app).write_behind.close()  # its decisions, before the tables are emptied
    drop_queue(queue)


def test_with_redis_a_commit_that_emitted_queues_one_delivery_run(queued, receiver):
    api, queue = queued
    _, secret = subscribe(api, receiver, ["gate.blocked"])
    assert queue.count == 0

    block(api, "WO-1")
    block(api, "WO-2")  # the run queued for the first is still waiting: no second one
    waiting = queue.count
    SimpleWorker([queue], connection=queue.connection).work(burst=True)

    assert waiting == 1
    assert [e["type"] for e in receiver.verified(secret)] == ["gate.blocked"] * 2


def test_with_redis_a_write_that_emits_nothing_queues_nothing(queued, receiver):
    api, queue = queued
    subscribe(api, receiver, ["policy.cancelled"])

    block(api, "WO-1")

    assert queue.count == 0


# --------------------------------------------------------------------------------------------
# The expiring rule (pure)
# --------------------------------------------------------------------------------------------

LINES = ("general_liability", "automobile_liability")
DAY0 = date(2025, 6, 1)


@st.composite
def policies(draw) -> list[m.Policy]:
    found = []
    for n in range(draw(st.integers(0, 5))):
        start = DAY0 + timedelta(days=draw(st.integers(-400, 40)))
        end = start + timedelta(days=draw(st.integers(1, 400)))
        cancelled = draw(st.none() | st.integers(0, 400))
        found.append(
            m.Policy(
                id=n + 1,
                line=draw(st.sampled_from(LINES)),
                effective_date=start,
                expiration_date=end,
                cancelled_on=None if cancelled is None else start + timedelta(days=cancelled),
            )
        )
    return found


@given(policies(), st.integers(1, 60))
def test_announced_policies_are_needed_in_force_near_their_end_and_not_renewed(found, window):
    announced = expiring_unrenewed(found, {"general_liability"}, DAY0, window)

    for p in announced:
        assert p.line == "general_liability"
        assert p.effective_date <= DAY0 < p.expiration_date <= DAY0 + timedelta(days=window)
        assert p.cancelled_on is None or p.cancelled_on >= p.expiration_date
        assert not any(
            q is not p
            and q.line == p.line
            and q.effective_date <= p.expiration_date < q.expiration_date
            and (q.cancelled_on is None or q.cancelled_on > p.expiration_date)
            for q in found
        )


@given(st.integers(1, 60), st.integers(0, 90))
def test_a_lone_policy_is_announced_exactly_when_inside_the_window(window, days_left):
    lone = m.Policy(
        id=1,
        line="general_liability",
        effective_date=DAY0 - timedelta(days=300),
        expiration_date=DAY0 + timedelta(days=days_left),
        cancelled_on=None,
    )

    announced = expiring_unrenewed([lone], {"general_liability"}, DAY0, window)

    assert announced == ([lone] if 0 < days_left <= window else [])
