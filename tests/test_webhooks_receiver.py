"""The inbound webhook receiver: signatures (Standard Webhooks and single-header HMAC), the
replay window, body limits, idempotency (also 100 concurrent duplicates against the app served on
a real socket), and the four events, on SQLite and PostgreSQL.

Deliveries are signed with the dispatch stand-in's own signer (`sandbox.dispatch`), written
independently of the receiver, and the published Standard Webhooks test vector."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text, update

from connector.app import runtime
from connector.services.webhook_subscriptions import new_secret
from connector.storage import models as m
from connector.storage.db import CLAIM_APPLICATION_NAME
from sandbox.dispatch import send_webhook, sign_hmac, sign_standard
from tests.conftest import DISPATCH_OBJECTS, WEBHOOK_SECRET_ENV, day, good_certificate
from webhooks.inbound import receiver_config, settings_problems, writeback_fields
from webhooks.signatures import SignatureError, verify_hmac, verify_standard

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIME = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def vector_headers(signature: str = VECTOR_SIGNATURE, stamp: int = VECTOR_TIME) -> dict:
    return {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature,
    }


# --- signatures (pure) -------------------------------------------------------------------------


def test_standard_webhooks_test_vector_verifies():
    delivery = verify_standard([VECTOR_SECRET], vector_headers(), VECTOR_BODY, VECTOR_TIME)

    assert delivery == VECTOR_ID


def test_tampered_body_is_rejected():
    with pytest.raises(SignatureError):
        verify_standard([VECTOR_SECRET], vector_headers(), b'{"test": 2432232315}', VECTOR_TIME)


@pytest.mark.parametrize("offset", [-301, 301, -86_400, 86_400])
def test_timestamps_more_than_five_minutes_away_are_rejected(offset):
    with pytest.raises(SignatureError, match="5 minutes"):
        verify_standard([VECTOR_SECRET], vector_headers(), VECTOR_BODY, VECTOR_TIME + offset)


@pytest.mark.parametrize("offset", [-300, 300])
def test_timestamps_at_the_edge_of_the_window_are_accepted(offset):
    assert verify_standard([VECTOR_SECRET], vector_headers(), VECTOR_BODY, VECTOR_TIME + offset)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TIME)},
        vector_headers(stamp="1614265330.5"),
        vector_headers(signature="v1,not-base64!"),
        vector_headers(signature="g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        vector_headers(signature="v2," + VECTOR_SIGNATURE[3:]),
    ],
)
def test_missing_or_malformed_headers_are_rejected(headers):
    with pytest.raises(SignatureError):
        verify_standard([VECTOR_SECRET], headers, VECTOR_BODY, VECTOR_TIME)


def test_rotation_receiver_holding_old_and_new_secret_accepts_either_sender():
    old, new = new_secret(), new_secret()
    for sender in (old, new):
        signature = sign_standard(sender, VECTOR_ID, VECTOR_TIME, b"{}")

        assert verify_standard([old, new], vector_headers(signature), b"{}", VECTOR_TIME)


def test_rotation_sender_signing_with_both_is_accepted_by_a_receiver_with_the_new_one():
    old, new = new_secret(), new_secret()
    signature = "v1,garbage " + sign_standard([old, new], VECTOR_ID, VECTOR_TIME, b"{}")

    assert verify_standard([new], vector_headers(signature), b"{}", VECTOR_TIME)


def test_a_retired_secret_is_refused():
    old, new = new_secret(), new_secret()
    signature = sign_standard(old, VECTOR_ID, VECTOR_TIME, b"{}")

    with pytest.raises(SignatureError):
        verify_standard([new], vector_headers(signature), b"{}", VECTOR_TIME)


@settings(max_examples=50, deadline=None)
@given(body=st.binary(max_size=200), flip=st.integers(min_value=0), now=st.integers(0, 2**33))
def test_property_any_signed_body_verifies_and_any_changed_byte_does_not(body, flip, now):
    secret = VECTOR_SECRET
    body = json.dumps(body.decode("latin-1")).encode()
    headers = {
        "webhook-id": "msg_x",
        "webhook-timestamp": str(now),
        "webhook-signature": sign_standard(secret, "msg_x", now, body),
    }
    assert verify_standard([secret], headers, body, now) == "msg_x"
    index = flip % len(body)
    changed = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    with pytest.raises(SignatureError):
        verify_standard([secret], headers, changed, now)


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_hmac_header_verifies_in_its_encoding_and_rejects_a_tampered_body(encoding):
    signature = sign_hmac("s3cret", b'{"a":1}', encoding)

    verify_hmac(["old", "s3cret"], signature, b'{"a":1}', encoding)
    with pytest.raises(SignatureError):
        verify_hmac(["s3cret"], signature, b'{"a":2}', encoding)


def test_hmac_missing_or_undecodable_header_is_rejected():
    for given_signature in (None, "", "zz-not-hex"):
        with pytest.raises(SignatureError):
            verify_hmac(["s3cret"], given_signature, b"{}", "hex")


def test_settings_problems_name_each_bad_setting():
    problems = settings_problems(
        {
            "webhook_scheme": "jwt",
            "webhook_encoding": "octal",
            "webhook_header": "X Bad",
            "writeback": "unassign",
            "writeback_on": ["allow"],
            "writeback_fields": {"hold": "COI Hold"},
        }
    )

    assert set(problems) == {
        "webhook_scheme",
        "webhook_encoding",
        "webhook_header",
        "writeback_on",
        "writeback_fields",
    }


def test_writeback_sets_the_connections_own_field_names():
    """A Salesforce-like work order keeps its hold in a custom field; the note field is the
    dispatch adapter's unless renamed."""
    config = receiver_config(
        {"writeback": "flag", "writeback_fields": {"hold": "COI_Hold__c", "message": "COI_Note__c"}}
    )
    decision = {"decision": "block", "reasons": [{"message": "No certificate on file."}]}

    fields = writeback_fields(config, decision)

    assert fields == {
        "COI_Hold__c": True,
        "COI_Note__c": "COI check: block. No certificate on file.",
    }


# --- the receiver over HTTP ----------------------------------------------------------------------


def add_connection(api, name: str = "dispatch", **settings_given) -> None:
    body = {
        "name": name,
        "kind": "dispatch",
        "settings": {
            "base_url": "http://127.0.0.1:9",
            "client_id": "coi",
            "client_secret_env": "COI_TEST_UNUSED",
            "webhook_secret_env": WEBHOOK_SECRET_ENV,
            **settings_given,
        },
        "objects": DISPATCH_OBJECTS,
    }
    response = api.post("/api/v1/connections", body)
    assert response.status_code == 201, response.get_json()


@pytest.fixture
def dispatch(api, secret, standard_set):
    add_connection(api)
    return "dispatch"


def work_order(provider: str = "P-1", number: int = 284019001) -> dict:
    return {
        "Id": number,
        "ProviderId": provider,
        "LocationId": 2006001,
        "Trade": "PLUMBING",
        "Status": {"Primary": "OPEN"},
        "Nte": 500.0,
        "ScheduledDate": day(3) + "T09:00:00+00:00",
    }


def hook(served: str, event: str = "work-order", connection: str = "dispatch") -> str:
    return f"{served}/webhooks/{connection}/{event}"


def post_signed(url: str, body: dict, secret: str, **options):
    """A Standard Webhooks delivery of an arbitrary JSON body (not a work-order event)."""
    raw = json.dumps(body).encode()
    msg_id = options.get("msg_id", "msg_" + os.urandom(6).hex())
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_standard(secret, msg_id, stamp, raw),
    }
    return requests.post(url, data=raw, headers=headers, timeout=10)


def count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_signed_work_order_event_answers_the_gate_decision(
    app, served, dispatch, secret, make_vendor, sessions
):
    make_vendor(regions=("2006001",), cert=good_certificate())

    delivery = send_webhook(hook(served), "WorkOrderCreated", work_order(), secret)

    assert (delivery.status, delivery.json()["decision"]) == (200, "allow")
    runtime(app).write_behind.flush()  # the decision is stored behind the answer
    with sessions() as session:
        stored = session.scalar(select(m.WorkOrder))
        assert (stored.system, stored.external_id) == ("dispatch", "284019001")


def test_unknown_vendor_is_blocked_when_the_connection_fails_closed(served, dispatch, secret):
    delivery = send_webhook(hook(served), "WorkOrderCreated", work_order("P-404"), secret)

    assert delivery.json()["decision"] == "block"
    assert delivery.json()["reasons"][0]["code"] == "unknown_vendor"


def test_unknown_vendor_warns_when_the_connection_fails_open(served, dispatch, secret, sessions):
    with sessions() as session, session.begin():
        session.execute(update(m.Connection).values(fail_open=True))

    delivery = send_webhook(hook(served), "WorkOrderCreated", work_order("P-404"), secret)

    assert delivery.json()["decision"] == "warn"


def test_tampered_delivery_is_401_and_changes_nothing(app, served, dispatch, secret, sessions):
    raw = json.dumps(work_order()).encode()
    stamp = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_standard(secret, "msg_1", stamp, raw),
    }

    response = requests.post(hook(served), data=raw + b" ", headers=headers, timeout=10)

    assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthorized")
    runtime(app).write_behind.flush()
    assert count(sessions, m.WebhookReceipt) == count(sessions, m.WorkOrder) == 0


@pytest.mark.parametrize("offset", [-400, 400])
def test_stale_or_future_delivery_is_401(served, dispatch, secret, offset):
    delivery = send_webhook(
        hook(served), "WorkOrderCreated", work_order(), secret, timestamp=int(time.time()) + offset
    )

    assert delivery.status == 401


def test_delivery_signed_with_a_rotated_out_secret_is_401_and_both_work_during_rotation(
    served, dispatch, secret, monkeypatch, make_vendor
):
    make_vendor(regions=("2006001",), cert=good_certificate())
    new = new_secret()
    monkeypatch.setenv(WEBHOOK_SECRET_ENV, f"{secret} {new}")
    during = [
        send_webhook(hook(served), "WorkOrderCreated", work_order(), key).status
        for key in (secret, new)
    ]
    monkeypatch.setenv(WEBHOOK_SECRET_ENV, new)

    after = send_webhook(hook(served), "WorkOrderCreated", work_order(), secret).status

    assert (during, after) == ([200, 200], 401)


def test_body_over_the_limit_is_413(served, dispatch, secret):
    payload = work_order() | {"Padding": "x" * (1024 * 1024)}

    delivery = send_webhook(hook(served), "WorkOrderCreated", payload, secret)

    assert (delivery.status, delivery.json()["error"]["code"]) == (413, "body_too_large")


@pytest.mark.parametrize("path", ["/webhooks/nope/work-order", "/webhooks/dispatch/nope"])
def test_unknown_connection_or_event_is_404_json(served, dispatch, secret, path):
    delivery = send_webhook(served + path, "WorkOrderCreated", work_order(), secret)

    assert (delivery.status, delivery.json()["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "answer"),
    [
        ("GET", "/webhooks/dispatch/work-order", (405, "method_not_allowed", "POST")),
        ("POST", "/webhooks/dispatch/work-order/more", (404, "not_found", None)),
        ("POST", "/webhooks/dispatch", (404, "not_found", None)),
    ],
)
def test_other_methods_and_paths_under_webhooks_are_json_errors(served, method, path, answer):
    response = requests.request(method, served + path, timeout=10)

    code = response.json()["error"]["code"]
    assert (response.status_code, code, response.headers.get("Allow")) == answer


def test_inactive_connection_is_404(served, dispatch, secret, sessions):
    with sessions() as session, session.begin():
        session.execute(update(m.Connection).values(active=False))

    delivery = send_webhook(hook(served), "WorkOrderCreated", work_order(), secret)

    assert delivery.status == 404


def test_connection_without_a_webhook_secret_is_503(served, dispatch, secret, monkeypatch):
    monkeypatch.delenv(WEBHOOK_SECRET_ENV)

    delivery = send_webhook(hook(served), "WorkOrderCreated", work_order(), secret)

    assert (delivery.status, delivery.json()["error"]["code"]) == (503, "not_configured")


def test_repeated_delivery_returns_the_first_response_and_acts_once(
    served, dispatch, secret, make_vendor, sessions
):
    make_vendor(regions=("2006001",), cert=good_certificate())
    stamp = int(time.time())

    first, second = (
        send_webhook(
            hook(served), "WorkOrderCreated", work_order(), secret, msg_id="msg_r", timestamp=stamp
        )
        for _ in range(2)
    )

    assert (first.status, first.json()) == (second.status, second.json())
    assert count(sessions, m.GateDecision) == 1


def test_hundred_concurrent_duplicates_make_one_work_order_and_one_decision(
    served, dispatch, secret, make_vendor, sessions
):
    make_vendor(regions=("2006001",), cert=good_certificate())
    stamp = int(time.time())

    def deliver(_):
        return send_webhook(
            hook(served), "WorkOrderCreated", work_order(), secret, msg_id="msg_c", timestamp=stamp
        )

    with ThreadPoolExecutor(max_workers=100) as pool:
        answers = list(pool.map(deliver, range(100)))

    assert {(a.status, a.body) for a in answers} == {(answers[0].status, answers[0].body)}
    assert answers[0].status == 200
    assert (count(sessions, m.WorkOrder), count(sessions, m.GateDecision)) == (1, 1)
    with sessions() as session:
        decisions = session.scalar(
            select(func.count())
            .select_from(m.AuditEvent)
            .where(m.AuditEvent.action == "gate.decision")
        )
    assert decisions == 1


def test_a_claim_connection_the_server_dropped_is_replaced_and_the_delivery_acts(
    app, served, dispatch, secret, make_vendor, sessions, engine, database_url
):
    if not database_url.startswith("postgresql"):
        pytest.skip("claims go through their own connections on PostgreSQL only")
    make_vendor(regions=("2006001",), cert=good_certificate())
    send_webhook(hook(served), "WorkOrderCreated", work_order(), secret)  # a claim connection
    with engine.connect() as conn:
        dropped = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name"
            ),
            {"name": CLAIM_APPLICATION_NAME},
        ).scalar()

    delivery = send_webhook(hook(served), "WorkOrderCreated", work_order(number=284019002), secret)

    assert dropped >= 1
    assert (delivery.status, delivery.json()["decision"]) == (200, "allow")
    runtime(app).write_behind.flush()
    assert count(sessions, m.GateDecision) == 2


def test_rejected_event_is_stored_and_repeats_get_the_same_422(
    app, served, dispatch, secret, sessions
):
    payload = work_order() | {"Trade": "PLUMBING", "ScheduledDate": "not a date"}
    stamp = int(time.time())

    answers = [
        send_webhook(
            hook(served), "WorkOrderCreated", payload, secret, msg_id="msg_bad", timestamp=stamp
        )
        for _ in range(2)
    ]

    assert [a.status for a in answers] == [422, 422]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["error"]["code"] == "validation_failed"
    runtime(app).write_behind.flush()
    assert count(sessions, m.WorkOrder) == 0


def test_work_order_without_a_provider_is_answered_without_a_decision(served, dispatch, secret):
    delivery = send_webhook(hook(served), "WorkOrderCreated", work_order(None), secret)

    assert (delivery.status, delivery.json()["skipped"]) == (200, "no_vendor")


def test_hmac_scheme_with_a_configured_header_and_encoding(api, served, secret, make_vendor):
    add_connection(
        api, webhook_scheme="hmac", webhook_header="X-Signature", webhook_encoding="base64"
    )
    make_vendor(regions=("2006001",))
    options = {"hmac_header": "X-Signature", "hmac_encoding": "base64"}

    good = send_webhook(hook(served), "WorkOrderCreated", work_order(), secret, "hmac", **options)
    bad = send_webhook(hook(served), "WorkOrderCreated", work_order(), "wrong", "hmac", **options)

    assert (good.status, bad.status) == (200, 401)


def test_hmac_scheme_treats_the_same_body_as_the_same_delivery_whatever_its_headers(
    app, api, served, secret, make_vendor, sessions
):
    """The HMAC covers only the body: an unsigned id header must not make a replay new."""
    add_connection(api, webhook_scheme="hmac")
    make_vendor(regions=("2006001",))
    body = json.dumps({"EventType": "WorkOrderCreated", **work_order()}).encode()

    for delivery in ("d-1", "d-2"):
        requests.post(
            hook(served),
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Hmac-Hash": sign_hmac(secret, body, "hex"),
                "X-Delivery-Id": delivery,
                "webhook-id": delivery,
            },
            timeout=10,
        ).raise_for_status()
    runtime(app).write_behind.flush()

    assert count(sessions, m.GateDecision) == 1


def test_certificate_submitted_by_vendor_reference_is_recorded(
    served, dispatch, secret, make_vendor, api
):
    vendor_id = make_vendor(regions=("2006001",))
    body = good_certificate() | {"vendor": {"system": "dispatch", "external_id": "P-1"}}

    response = post_signed(hook(served, "certificate-submitted"), body, secret)

    assert response.status_code == 201, response.json()
    assert response.json()["source"] == "agent"
    compliance = api.get(f"/api/v1/vendors/{vendor_id}").get_json()
    assert compliance["status"] == "compliant"


def test_certificate_for_an_unknown_vendor_is_422_like_the_api(served, dispatch, secret):
    body = good_certificate() | {"vendor": {"system": "dispatch", "external_id": "P-404"}}

    response = post_signed(hook(served, "certificate-submitted"), body, secret)

    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"vendor"}


def test_cancellation_notice_is_recorded_and_matched(served, dispatch, secret, make_vendor):
    make_vendor(regions=("2006001",), cert=good_certificate())
    notice = {
        "policy_number": "GL-1",
        "insurer_name": "Keystone Mutual Insurance Co.",
        "effective_date": day(10),
        "received_via": "agent",
    }

    response = post_signed(hook(served, "cancellation-notice"), notice, secret)

    assert (response.status_code, response.json()["status"]) == (201, "matched")


def test_malformed_json_with_a_valid_signature_is_400(served, dispatch, secret):
    raw = b'{"Id": '
    stamp = int(time.time())
    headers = {
        "webhook-id": "msg_m",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_standard(secret, "msg_m", stamp, raw),
    }

    response = requests.post(hook(served), data=raw, headers=headers, timeout=10)

    assert (response.status_code, response.json()["error"]["code"]) == (400, "malformed")


def test_bad_webhook_settings_are_refused_when_the_connection_is_added(api):
    body = {
        "name": "d2",
        "kind": "dispatch",
        "settings": {"webhook_scheme": "hmac", "webhook_encoding": "rot13", "writeback": "x"},
    }

    response = api.post("/api/v1/connections", body)

    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]["settings"]) == {
        "webhook_encoding",
        "writeback",
    }


def test_the_webhook_secret_itself_is_refused_as_a_setting(api):
    body = {"name": "d3", "kind": "dispatch", "settings": {"webhook_secret": "whsec_abc"}}

    assert api.post("/api/v1/connections", body).status_code == 422
