"""The dispatch adapter against the dispatch sandbox, over real HTTP: OAuth client credentials,
cursor and page pagination, 429 / 503 handling, writes, and the sandbox's signed webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

import pytest
import requests
from flask import Flask, request

from adapters.base import AdapterError, ConfigurationError, RateLimited, WriteRequest
from adapters.dispatch import DispatchAdapter
from sandbox.dispatch import DispatchSandbox, send_webhook, sign_hmac, sign_standard
from sandbox.server import serve

SECRET_ENV = "COI_TEST_DISPATCH_CLIENT_SECRET"
CLIENT_SECRET = "dispatch-test-secret-5f1c9a"

PROVIDERS = "GET /v3/providers"
TOKEN = "POST /oauth2/token"


@pytest.fixture(scope="module")
def running_sandbox():
    peer = DispatchSandbox(client_secret=CLIENT_SECRET).start()
    yield peer
    peer.stop()


@pytest.fixture
def sandbox(running_sandbox):
    """The module's sandbox, emptied before and after each test."""
    running_sandbox.reset()
    yield running_sandbox
    running_sandbox.reset()


@pytest.fixture
def settings(sandbox, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    return {
        "base_url": sandbox.url,
        "client_id": sandbox.client_id,
        "client_secret_env": SECRET_ENV,
        "page_size": 10,
        "timeout": 5,
        "retry_base_seconds": 0.01,
        "max_retries": 4,
    }


@pytest.fixture
def make_adapter(settings):
    made = []

    def make(**overrides) -> DispatchAdapter:
        adapter = DispatchAdapter({**settings, **overrides})
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


@pytest.fixture
def adapter(make_adapter):
    return make_adapter()


def records(pages):
    return [record for page in pages for record in page.records]


# --- OAuth 2.0 client credentials ----------------------------------------------------------


def test_token_is_obtained_once_and_reused(sandbox, adapter):
    sandbox.seed_providers(25)
    facts = adapter.test()
    assert facts["token_expires_in"] == 300
    assert len(records(adapter.read_changes("Provider", None))) == 25
    assert sandbox.calls[TOKEN] == 1


def test_token_is_refreshed_before_it_expires(sandbox, adapter):
    sandbox.token_lifetime = 1
    sandbox.seed_providers(3)
    adapter.test()
    time.sleep(1.1)
    assert adapter.read_one("Provider", "P-1001") is not None
    assert sandbox.calls[TOKEN] == 2
    # refreshed ahead of time: the read went through on the first try, no 401 and resend
    assert sandbox.calls["GET /v3/providers/<provider_id>"] == 1


def test_token_is_refreshed_once_on_401(sandbox, adapter):
    sandbox.seed_providers(3)
    adapter.test()
    sandbox.revoke_tokens()
    assert adapter.read_one("Provider", "P-1002").external_id == "P-1002"
    assert sandbox.calls[TOKEN] == 2
    assert sandbox.calls["GET /v3/providers/<provider_id>"] == 2  # 401, then the retry


def test_wrong_client_secret_is_a_configuration_error(sandbox, make_adapter, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "not-the-secret")
    with pytest.raises(ConfigurationError) as caught:
        make_adapter().test()
    assert caught.value.retryable is False
    assert "invalid_client" in str(caught.value)
    assert "not-the-secret" not in str(caught.value)
    assert sandbox.calls[TOKEN] == 1  # not retried


def test_missing_secret_and_plain_secret_are_refused(settings, monkeypatch):
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(ConfigurationError, match=SECRET_ENV):
        DispatchAdapter(settings).test()
    with pytest.raises(ConfigurationError, match="plain text"):
        DispatchAdapter({**settings, "client_secret": "x"}).test()
    with pytest.raises(ConfigurationError, match="base_url"):
        DispatchAdapter({**settings, "base_url": ""})


def test_secrets_and_tokens_are_never_logged(sandbox, adapter, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.seed_providers(12)
    adapter.test()
    token = adapter._token
    sandbox.revoke_tokens()
    records(adapter.read_changes("Provider", None))
    assert caplog.records, "the adapter logs its calls"
    assert CLIENT_SECRET not in caplog.text
    assert token not in caplog.text
    assert adapter._token not in caplog.text


# --- reading ----------------------------------------------------------------------------------


def test_cursor_pagination_returns_every_provider_once(sandbox, adapter):
    seeded = sandbox.seed_providers(95, seed=7)
    pages = list(adapter.read_changes("Provider", None))
    assert [len(page.records) for page in pages] == [10] * 9 + [5]
    assert all(page.bookmark for page in pages[:-1]) and pages[-1].bookmark is None
    got = records(pages)
    assert sorted(r.external_id for r in got) == sorted(p["Id"] for p in seeded)
    keys = [(r.watermark, r.external_id) for r in got]
    assert keys == sorted(keys)  # oldest change first
    inactive = {p["Id"] for p in seeded if p["Status"] == "Inactive"}
    assert inactive and {r.external_id for r in got if r.deleted} == inactive
    assert sandbox.calls[PROVIDERS] == 10


def test_incremental_read_by_updated_since(sandbox, adapter):
    sandbox.seed_providers(40, seed=3)
    everything = records(adapter.read_changes("Provider", None))
    since = everything[20].watermark
    newer = records(adapter.read_changes("Provider", since))
    assert {r.external_id for r in newer} == {
        r.external_id for r in everything if r.watermark >= since
    }
    assert all(r.watermark >= since for r in newer)

    latest = everything[-1].watermark
    sandbox.touch_provider("P-1005", Name="Renamed Plumbing LLC")
    changed = records(adapter.read_changes("Provider", latest))
    assert "P-1005" in {r.external_id for r in changed}
    assert len(changed) < 5  # the change, plus records at the old watermark again


def test_work_orders_page_by_page(sandbox, adapter):
    sandbox.seed_providers(10)
    seeded = sandbox.seed_work_orders(23)
    pages = list(adapter.read_changes("WorkOrder", None))
    assert [len(page.records) for page in pages] == [10, 10, 3]
    assert [r.external_id for r in records(pages)] == [str(w["Id"]) for w in seeded]
    first = pages[0].records[0].data
    assert {"Id", "ProviderId", "LocationId", "Trade", "Status", "Nte", "ScheduledDate"} <= set(
        first
    )


def test_read_one(sandbox, adapter):
    sandbox.seed_providers(2)
    order = sandbox.seed_work_orders(1)[0]
    assert adapter.read_one("Provider", "P-1002").data["Id"] == "P-1002"
    assert adapter.read_one("Provider", "P-4040") is None
    assert adapter.read_one("WorkOrder", str(order["Id"])).data["Trade"] == order["Trade"]
    with pytest.raises(ConfigurationError):
        adapter.read_one("Invoice", "1")


def test_malformed_records_are_yielded_for_the_sync_to_reject(sandbox, adapter):
    sandbox.seed_providers(5)
    sandbox.corrupt_provider("P-1002", "missing_id")
    sandbox.corrupt_provider("P-1003", "not_object")
    sandbox.corrupt_provider("P-1004", "bad_types")
    got = records(adapter.read_changes("Provider", None))
    assert len(got) == 5
    assert sorted(r.external_id for r in got) == ["", "", "P-1001", "P-1004", "P-1005"]
    raw = next(r for r in got if "_raw" in r.data)
    assert raw.data["_raw"].startswith("P-1003|")
    assert isinstance(next(r for r in got if r.external_id == "P-1004").data["Trades"], str)


# --- 429 and 5xx ----------------------------------------------------------------------------


def test_429_retry_after_is_honoured(sandbox, adapter):
    sandbox.seed_providers(5)
    adapter.test()
    before = sandbox.calls[PROVIDERS]
    sandbox.faults.fail(1, status=429, retry_after=1)
    started = time.monotonic()
    got = records(adapter.read_changes("Provider", None))
    assert time.monotonic() - started >= 0.95
    assert len(got) == 5
    assert sandbox.calls[PROVIDERS] - before == 2


def test_429_beyond_max_retry_after_raises_at_once(sandbox, make_adapter):
    adapter = make_adapter(max_retry_after=5)
    adapter.test()
    sandbox.faults.fail(1, status=429, retry_after=120)
    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        adapter.read_one("Provider", "P-1001")
    assert time.monotonic() - started < 1
    assert caught.value.retry_after == 120 and caught.value.retryable


def test_429_gives_up_after_max_retries(sandbox, make_adapter):
    adapter = make_adapter(max_retries=2)
    adapter.test()
    before = sandbox.calls[PROVIDERS]
    sandbox.faults.fail(10, status=429, retry_after=0.01)
    with pytest.raises(RateLimited) as caught:
        list(adapter.read_changes("Provider", None))
    assert caught.value.retryable and caught.value.retry_after == pytest.approx(0.01)
    assert sandbox.calls[PROVIDERS] - before == 3


def test_503_burst_is_retried(sandbox, adapter):
    sandbox.seed_providers(12)
    adapter.test()
    before = sandbox.calls[PROVIDERS]
    # armed over HTTP, as a benchmark or the demo would
    armed = requests.post(sandbox.url + "/__sandbox/faults", json={"fail": 3, "status": 503})
    assert armed.status_code == 200
    assert len(records(adapter.read_changes("Provider", None))) == 12
    assert sandbox.calls[PROVIDERS] - before == 2 + 3


def test_5xx_and_timeouts_end_in_a_retryable_error(sandbox, make_adapter):
    adapter = make_adapter(max_retries=1, timeout=0.2)
    adapter.test()
    sandbox.faults.fail(5, status=503)
    with pytest.raises(AdapterError) as caught:
        adapter.read_one("Provider", "P-1001")
    assert caught.value.retryable
    sandbox.faults.reset()
    sandbox.faults.slow(0.6)
    try:
        with pytest.raises(AdapterError, match="Timeout") as caught:
            adapter.read_one("Provider", "P-1001")
        assert caught.value.retryable
    finally:
        sandbox.faults.slow(0)


# --- writing --------------------------------------------------------------------------------


def test_write_do_not_dispatch(sandbox, adapter):
    sandbox.seed_providers(3)
    before = sandbox.provider("P-1002")["UpdatedAt"]
    results = adapter.write(
        "Provider",
        [
            WriteRequest("P-1002", {"DoNotDispatch": True, "ComplianceNote": "GL expired"}),
            WriteRequest("P-9999", {"DoNotDispatch": True}),
            WriteRequest("P-1003", {"Nonsense": 1}),
            WriteRequest("P-1001", {"DoNotDispatch": False, "ComplianceNote": None}),
        ],
    )
    assert [(r.external_id, r.ok, r.retryable) for r in results] == [
        ("P-1002", True, False),
        ("P-9999", False, False),
        ("P-1003", False, False),
        ("P-1001", True, False),
    ]
    assert "not found" in results[1].error
    provider = sandbox.provider("P-1002")
    assert provider["DoNotDispatch"] is True and provider["ComplianceNote"] == "GL expired"
    assert provider["UpdatedAt"] > before
    # the dispatch system now refuses new work for that provider
    order = sandbox.create_work_order()
    [refused] = adapter.write(
        "WorkOrder", [WriteRequest(str(order["Id"]), {"ProviderId": "P-1002"})]
    )
    assert not refused.ok and not refused.retryable and "do_not_dispatch" in refused.error


def test_work_order_note_flag_and_unassign(sandbox, adapter):
    sandbox.seed_providers(5)
    order = sandbox.seed_work_orders(1)[0]
    assert order["ProviderId"]
    external_id = str(order["Id"])
    results = adapter.write(
        "WorkOrder",
        [
            WriteRequest(
                external_id,
                {
                    "ProviderId": None,
                    "ComplianceHold": True,
                    "Note": "Provider un-assigned: certificate of insurance expired.",
                },
            ),
            WriteRequest("999", {"Note": "nobody"}),
        ],
    )
    assert [(r.ok, r.retryable) for r in results] == [(True, False), (False, False)]
    stored = sandbox.work_order(external_id)
    assert stored["ProviderId"] is None and stored["ProviderName"] is None
    assert stored["ComplianceHold"] is True
    assert [n["Note"] for n in stored["Notes"]] == [
        "Provider un-assigned: certificate of insurance expired."
    ]
    # a note alone is one POST, no PATCH
    assert adapter.write("WorkOrder", [WriteRequest(external_id, {"Note": "second"})])[0].ok
    assert sandbox.calls["PATCH /v3/workorders/<work_order_id>"] == 1
    assert len(sandbox.work_order(external_id)["Notes"]) == 2


def test_a_note_is_not_resent_after_a_timeout_but_a_patch_is(sandbox, make_adapter):
    adapter = make_adapter(max_retries=1, timeout=0.2)
    order = sandbox.create_work_order()
    adapter.test()
    sandbox.faults.slow(0.4)  # the server acts on the request after the client gave up
    try:
        with pytest.raises(AdapterError, match="Timeout"):
            adapter.write("WorkOrder", [WriteRequest(str(order["Id"]), {"Note": "once"})])
        assert sandbox.calls["POST /v3/workorders/<work_order_id>/notes"] == 1
        with pytest.raises(AdapterError, match="Timeout"):
            adapter.write("WorkOrder", [WriteRequest(str(order["Id"]), {"Priority": "P1"})])
        assert sandbox.calls["PATCH /v3/workorders/<work_order_id>"] == 2
    finally:
        sandbox.faults.slow(0)
        time.sleep(0.5)  # let the abandoned requests finish before the sandbox is reset


def test_write_raises_when_nothing_could_be_attempted(sandbox, make_adapter):
    adapter = make_adapter(max_retries=1)
    sandbox.seed_providers(2)
    adapter.test()
    sandbox.faults.fail(10, status=503)
    with pytest.raises(AdapterError) as caught:
        adapter.write("Provider", [WriteRequest("P-1001", {"DoNotDispatch": True})])
    assert caught.value.retryable


def test_write_marks_the_rest_retryable_when_the_remote_stops_answering(sandbox, make_adapter):
    adapter = make_adapter(max_retries=0)
    sandbox.seed_providers(3)
    adapter.test()
    first = adapter.write("Provider", [WriteRequest("P-1001", {"DoNotDispatch": True})])
    assert first[0].ok
    sandbox.faults.fail(1, status=404)  # the first answers, then the remote breaks
    sandbox.faults.fail(10, status=503)
    results = adapter.write(
        "Provider",
        [WriteRequest(pid, {"DoNotDispatch": True}) for pid in ("P-1001", "P-1002", "P-1003")],
    )
    assert [(r.ok, r.retryable) for r in results] == [(False, False), (False, True), (False, True)]


# --- webhooks -------------------------------------------------------------------------------

PEERS_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_standard_webhook_signature_matches_the_peers_test_vector():
    signature = sign_standard(
        PEERS_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    rotated = sign_standard(
        [PEERS_SECRET, "whsec_" + base64.b64encode(b"k2").decode()], "m", 1, b""
    )
    assert len(rotated.split(" ")) == 2


@pytest.fixture(scope="module")
def running_receiver():
    """A webhook receiver that records what arrives and answers 202."""
    received = []
    app = Flask("receiver")

    @app.post("/hook")
    def hook():
        received.append((dict(request.headers), request.get_data()))
        return {"accepted": True}, 202

    running = serve(app)
    yield running.url + "/hook", received
    running.stop()


@pytest.fixture
def receiver(running_receiver):
    running_receiver[1].clear()
    return running_receiver


def test_send_webhook_standard_scheme(sandbox, receiver):
    url, received = receiver
    sandbox.seed_providers(3)
    order = sandbox.seed_work_orders(1)[0]
    delivery = sandbox.send_webhook(url, "WorkOrderCreated", order["Id"], PEERS_SECRET)
    assert (delivery.status, delivery.json()) == (202, {"accepted": True})
    [(headers, body)] = received
    key = base64.b64decode(PEERS_SECRET.removeprefix("whsec_"))
    signed = f"{headers['Webhook-Id']}.{headers['Webhook-Timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["Webhook-Signature"] == expected
    assert abs(int(headers["Webhook-Timestamp"]) - time.time()) < 60
    event = json.loads(body)
    assert event["EventType"] == "WorkOrderCreated"
    assert event["Id"] == order["Id"] and event["ProviderId"] == order["ProviderId"]
    assert event["Status"] == {"Primary": "OPEN", "Extended": "DISPATCHED"}


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_send_webhook_hmac_scheme(receiver, encoding):
    url, received = receiver
    payload = {"Id": 7, "ProviderId": "P-1001", "Trade": "HVAC"}
    delivery = send_webhook(
        url, "WorkOrderTechnicianAssigned", payload, "shh", "hmac", hmac_encoding=encoding
    )
    assert delivery.status == 202
    [(headers, body)] = received
    digest = hmac.new(b"shh", body, hashlib.sha256).digest()
    want = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    assert headers["X-Hmac-Hash"] == want == sign_hmac("shh", body, encoding)
    assert json.loads(body)["EventType"] == "WorkOrderTechnicianAssigned"


def test_subscriptions_receive_the_events_they_asked_for(sandbox, receiver):
    url, received = receiver
    order = sandbox.create_work_order(Trade="HVAC")
    sandbox.subscribe(url, PEERS_SECRET, ["WorkOrderTechnicianAssigned"])
    assert sandbox.emit("WorkOrderCreated", order["Id"]) == []
    [delivery] = sandbox.emit("WorkOrderTechnicianAssigned", order["Id"])
    assert delivery.status == 202 and len(received) == 1


def test_sandbox_refuses_bad_requests(sandbox, adapter):
    adapter.test()
    headers = {"Authorization": f"Bearer {adapter._token}"}
    bad = requests.get(sandbox.url + "/v3/providers?cursor=nope", headers=headers)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_parameter"
    anonymous = requests.get(sandbox.url + "/v3/providers")
    assert anonymous.status_code == 401 and anonymous.json() == {
        "error": "invalid_token",
        "message": "The access token is missing or expired.",
    }
    grant = requests.post(sandbox.token_url, data={"grant_type": "password"})
    assert grant.status_code == 400
