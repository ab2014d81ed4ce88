"""The Salesforce adapter against the Salesforce stand-in: real HTTPS, the real simple-salesforce
client, the REST wire format (OAuth token, SOQL paging, composite/sobjects), and the failures the
adapter must survive (expired sessions, 503 bursts, API limits, locked rows)."""

from __future__ import annotations

import inspect
import math
from datetime import date

import certifi
import pytest
import requests
from simple_salesforce.exceptions import SalesforceMalformedRequest

from adapters.base import AdapterError, ConfigurationError, RateLimited, WriteRequest
from adapters.salesforce import SalesforceAdapter
from sandbox.salesforce import SalesforceSandbox, SoqlError, parse_soql, with_checksum

ACCOUNTS = 5000
RESOURCES = 300
TRICKY_NAME = 'O\'Brien \\ Sons "Roofing"'
INJECTION = "x' OR Name != '"
LIMIT_BODY = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]


@pytest.fixture(scope="session")
def sandbox():
    peer = SalesforceSandbox(page_size=2000)
    peer.seed_accounts(ACCOUNTS, seed=7)
    peer.seed_service_resources(RESOURCES, seed=7)
    peer.add("Account", {"Name": TRICKY_NAME, "Type": "Vendor", "Trade__c": "Roofing"})
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture(autouse=True)
def _clean_faults(sandbox):
    sandbox.faults.reset()
    yield
    sandbox.faults.reset()


@pytest.fixture
def settings(sandbox, monkeypatch):
    monkeypatch.setenv("COI_TEST_SF_SECRET", sandbox.client_secret)
    monkeypatch.setenv("COI_TEST_SF_PASSWORD", sandbox.password)
    return {
        "token_url": sandbox.token_url,
        "client_id": sandbox.client_id,
        "client_secret_env": "COI_TEST_SF_SECRET",
        "ca_bundle": sandbox.ca_bundle(),
        "retry_base_seconds": 0.01,
    }


@pytest.fixture
def adapter(settings):
    connection = SalesforceAdapter(settings)
    yield connection
    connection.close()


def calls_since(sandbox, before):
    return {k: v - before.get(k, 0) for k, v in sandbox.calls.items() if v != before.get(k, 0)}


def account_ids(sandbox, n, start=0):
    return sandbox.ids("Account")[start : start + n]


# --- login ---------------------------------------------------------------------------------------


def test_client_credentials_login_reports_instance_and_usage(adapter, sandbox):
    facts = adapter.test()
    assert facts["instance_url"] == sandbox.url
    assert facts["api_version"] == "60.0"
    used, total = facts["api_usage"].split("/")
    assert int(used) >= 1 and int(total) == sandbox.api_limit
    assert adapter.logins == 1


def test_password_login(settings, sandbox):
    settings = {**settings, "auth": "password", "username": sandbox.username}
    settings["password_env"] = "COI_TEST_SF_PASSWORD"
    assert SalesforceAdapter(settings).test()["instance_url"] == sandbox.url


def test_wrong_secret_is_a_configuration_error_without_the_secret(settings, monkeypatch):
    monkeypatch.setenv("COI_TEST_SF_SECRET", "not-the-secret-4711")
    with pytest.raises(ConfigurationError) as caught:
        SalesforceAdapter(settings).test()
    assert caught.value.retryable is False
    assert "invalid_client" in str(caught.value)
    assert "4711" not in str(caught.value)


def test_wrong_password_is_a_configuration_error(settings, sandbox, monkeypatch):
    monkeypatch.setenv("COI_TEST_SF_PASSWORD", "hunter2-wrong")
    settings = {**settings, "auth": "password", "username": sandbox.username}
    settings["password_env"] = "COI_TEST_SF_PASSWORD"
    with pytest.raises(ConfigurationError) as caught:
        SalesforceAdapter(settings).read_one("Account", sandbox.ids("Account")[0])
    assert "invalid_grant" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("name", ["client_secret", "password"])
def test_secrets_in_plain_settings_are_refused(settings, name):
    with pytest.raises(ConfigurationError, match=f"{name}_env"):
        SalesforceAdapter({**settings, name: "plain-text-value"})


def test_settings_are_checked(settings):
    for broken in (
        {"token_url": "http://login.example/services/oauth2/token"},
        {"auth": "jwt"},
        {"client_id": ""},
        {"api_version": "sixty"},
        {"page_size": 50},
        {"fields": {"Account": ["Id", "Name FROM User --"]}},
    ):
        with pytest.raises(ConfigurationError):
            SalesforceAdapter({**settings, **broken})


def test_read_fields_may_be_relationship_paths_and_subqueries(settings):
    paths = ["Id", "Account.Tax_ID__c", "(SELECT Skill.MasterLabel FROM ServiceResourceSkills)"]
    connection = SalesforceAdapter({**settings, "fields": {"ServiceResource": paths}})
    assert connection.fields["ServiceResource"][:3] == tuple(paths)
    assert "IsActive" in connection.fields["ServiceResource"]
    for bad in ("(SELECT Id FROM Skill), Name", "Name) FROM User WHERE (Id", "Name;"):
        with pytest.raises(ConfigurationError):
            SalesforceAdapter({**settings, "fields": {"Account": ["Id", bad]}})


def test_configured_ca_bundle_wins_over_requests_ca_bundle(settings, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    assert SalesforceAdapter(settings).test()["api_version"] == "60.0"
    untrusting = {k: v for k, v in settings.items() if k != "ca_bundle"}
    with pytest.raises(ConfigurationError, match="TLS"):
        SalesforceAdapter(untrusting).test()


# --- reading -------------------------------------------------------------------------------------


def test_full_read_pages_through_next_records_url(adapter, sandbox):
    expected = sandbox.ids("Account", include_deleted=True)
    before = sandbox.calls.copy()
    pages = list(adapter.read_changes("Account", None))
    seen = [record.external_id for page in pages for record in page.records]
    assert len(pages) == math.ceil(len(expected) / 2000) == 3
    assert all(len(page.records) <= 2000 for page in pages)
    assert sorted(seen) == sorted(expected) and len(set(seen)) == len(seen)
    watermarks = [record.watermark for page in pages for record in page.records]
    assert watermarks == sorted(watermarks)
    assert all(page.bookmark == page.records[-1].watermark for page in pages)
    first = pages[0].records[0]
    assert "attributes" not in first.data
    assert {"Name", "Tax_ID__c", "COI_Status__c", "SystemModstamp"} <= first.data.keys()
    calls = calls_since(sandbox, before)
    assert calls["query_all"] == 1 and calls["query_more"] == 2


def test_read_changes_is_a_lazy_generator(adapter, sandbox):
    before = sandbox.calls.copy()
    pages = adapter.read_changes("Account", None)
    assert inspect.isgenerator(pages)
    assert calls_since(sandbox, before) == {}
    first = next(pages)
    assert len(first.records) == 2000
    calls = calls_since(sandbox, before)
    assert calls.get("query_all") == 1 and "query_more" not in calls
    next(pages)
    assert calls_since(sandbox, before)["query_more"] == 1
    pages.close()


def test_page_size_hint_is_sent_as_batch_size(settings, sandbox):
    connection = SalesforceAdapter({**settings, "page_size": 500})
    sizes = [len(page.records) for page in connection.read_changes("ServiceResource", None)]
    assert sizes[:-1] == [500] * (len(sizes) - 1)
    assert sum(sizes) == sandbox.count("ServiceResource", include_deleted=True)


def test_incremental_read_returns_only_later_changes(adapter, sandbox):
    mark = sandbox.latest_watermark()
    changed = account_ids(sandbox, 3, start=10)
    for record_id in changed:
        sandbox.update("Account", record_id, {"Phone": "(555) 555-0100"})
    pages = list(adapter.read_changes("Account", mark))
    records = [r for page in pages for r in page.records]
    assert [r.external_id for r in records] == changed
    assert all(r.watermark > mark and r.data["Phone"] == "(555) 555-0100" for r in records)
    assert list(adapter.read_changes("Account", records[-1].watermark)) == []


def test_deletions_and_inactive_resources_are_flagged(adapter, sandbox):
    mark = sandbox.latest_watermark()
    gone = account_ids(sandbox, 1, start=40)[0]
    sandbox.delete("Account", gone)
    resource = sandbox.ids("ServiceResource")[0]
    sandbox.update("ServiceResource", resource, {"IsActive": False})
    [account] = [r for page in adapter.read_changes("Account", mark) for r in page.records]
    assert account.external_id == gone and account.deleted
    [technician] = [r for p in adapter.read_changes("ServiceResource", mark) for r in p.records]
    assert technician.external_id == resource and technician.deleted
    assert technician.data["AccountId"].startswith("001")


def test_malformed_records_come_through_as_they_are(adapter, sandbox):
    mark = sandbox.latest_watermark()
    broken = account_ids(sandbox, 1, start=50)[0]
    sandbox.corrupt("Account", broken, {"COI_Expires__c": "2026-02-30"}, drop=["Name"])
    [record] = [r for page in adapter.read_changes("Account", mark) for r in page.records]
    assert record.data["COI_Expires__c"] == "2026-02-30" and "Name" not in record.data


def test_read_one(adapter, sandbox):
    record_id = account_ids(sandbox, 1, start=60)[0]
    record = adapter.read_one("Account", record_id)
    assert record is not None and record.external_id == record_id
    assert record.data["Name"] == sandbox.get("Account", record_id)["Name"]
    assert adapter.read_one("Account", with_checksum("0015g00000ZZZZZ")) is None


def test_soql_injection_is_escaped(adapter, sandbox):
    before = sandbox.calls.copy()
    assert adapter.read_one("Account", INJECTION) is None
    assert calls_since(sandbox, before) == {}  # not an id: nothing to ask
    assert adapter.find("Account", "Name", INJECTION) == []
    assert "Name = 'x\\' OR Name != \\''" in sandbox.queries[-1]
    [tricky] = adapter.find("Account", "Name", TRICKY_NAME)
    assert tricky.data["Name"] == TRICKY_NAME
    with pytest.raises(AdapterError):
        adapter.find("Account", "Name = 'x' OR Name", "y")


def test_the_stand_in_parses_only_the_soql_subset():
    query = parse_soql(
        "SELECT Id, name FROM account WHERE Name = 'O\\'Brien \\\\ Sons' "
        "AND SystemModstamp > 2026-11-28T10:00:00Z ORDER BY SystemModstamp, Id LIMIT 5"
    )
    assert query.object == "Account" and [f.name for f in query.fields] == ["Id", "Name"]
    assert query.conditions[0].value == "o'brien \\ sons" and query.limit == 5
    for bad in (
        "SELECT Id FROM Account WHERE Name = 'x' OR Name != ''",
        "SELECT Id FROM Account WHERE Name = 'x",
        "SELECT Id FROM Account ORDER BY Name",
        "SELECT Nope FROM Account",
        "SELECT Id FROM Contact",
        "SELECT Id FROM Account WHERE Id = 'x\\' OR Name != \\''",
    ):
        with pytest.raises(SoqlError):
            parse_soql(bad)


# --- writing -------------------------------------------------------------------------------------

FLAGS = {
    "COI_Status__c": "Compliant",
    "COI_Score__c": 87,
    "COI_Expires__c": date(2027, 3, 31),
    "COI_Deficiencies__c": "",
    "Is_Insurance_Compliant__c": True,
}


def test_write_450_in_three_composite_calls_with_per_record_results(adapter, sandbox):
    targets = account_ids(sandbox, 449, start=100)
    deleted = account_ids(sandbox, 1, start=700)[0]
    sandbox.delete("Account", deleted)
    unknown = with_checksum("0015g00000ZZZZZ")
    ids = [*targets[:200], unknown, *targets[200:448], deleted]
    assert len(ids) == 450
    before = sandbox.calls.copy()
    results = adapter.write("Account", [WriteRequest(i, FLAGS) for i in ids])
    assert calls_since(sandbox, before) == {"token": 1, "composite": 3}
    assert [r.external_id for r in results] == ids
    assert "INVALID_CROSS_REFERENCE_KEY" in results[200].error
    assert not results[200].ok and not results[200].retryable
    assert "ENTITY_IS_DELETED" in results[449].error and not results[449].retryable
    assert all(r.ok for i, r in enumerate(results) if i not in (200, 449))
    stored = sandbox.get("Account", targets[0])
    assert stored["COI_Expires__c"] == "2027-03-31" and stored["COI_Score__c"] == 87
    assert stored["Is_Insurance_Compliant__c"] is True


def test_locked_rows_are_retryable_and_bad_values_are_not(adapter, sandbox):
    locked, fine, too_big = account_ids(sandbox, 3, start=800)
    sandbox.lock([locked])
    results = adapter.write(
        "Account",
        [
            WriteRequest(locked, {"COI_Score__c": 50}),
            WriteRequest(fine, {"COI_Score__c": 51}),
            WriteRequest(too_big, {"COI_Score__c": 1000}),
            WriteRequest("not-an-id", {"COI_Score__c": 1}),
            WriteRequest(fine, {"Id": "0015g0000000001AAA"}),
        ],
    )
    assert "UNABLE_TO_LOCK_ROW" in results[0].error and results[0].retryable
    assert results[1].ok
    assert "NUMBER_OUTSIDE_VALID_RANGE" in results[2].error and not results[2].retryable
    assert "MALFORMED_ID" in results[3].error and "INVALID_FIELD" in results[4].error
    assert adapter.write("Account", [WriteRequest(locked, {"COI_Score__c": 50})])[0].ok


def test_a_batch_salesforce_rejects_whole_fails_its_records(adapter, sandbox):
    ids = account_ids(sandbox, 2, start=900)
    results = adapter.write("Account", [WriteRequest(i, {"No_Such_Field__c": 1}) for i in ids])
    assert [r.ok for r in results] == [False, False]
    assert all("INVALID_FIELD" in r.error and not r.retryable for r in results)


def test_expired_session_is_renewed_transparently(adapter, sandbox):
    adapter.test()
    record_id = account_ids(sandbox, 1, start=1000)[0]
    sandbox.expire_sessions()
    assert adapter.read_one("Account", record_id).external_id == record_id
    pages = adapter.read_changes("Account", None)
    next(pages)
    sandbox.expire_sessions()  # between two pages of one read
    assert sum(len(p.records) for p in pages) > 0
    sandbox.expire_sessions()
    assert adapter.write("Account", [WriteRequest(record_id, {"COI_Score__c": 12})])[0].ok
    assert adapter.logins == 4


def test_a_503_burst_during_write_is_retried(adapter, sandbox):
    adapter.test()
    ids = account_ids(sandbox, 5, start=1100)
    sandbox.faults.fail(2, status=503)
    before = sandbox.calls.copy()
    results = adapter.write("Account", [WriteRequest(i, FLAGS) for i in ids])
    assert all(r.ok for r in results)
    assert calls_since(sandbox, before) == {"composite": 3}


def test_a_remote_that_stays_down_is_a_retryable_error(settings, sandbox):
    connection = SalesforceAdapter({**settings, "retry_attempts": 3})
    connection.test()
    sandbox.faults.fail(10, status=503)
    before = sandbox.calls.copy()
    with pytest.raises(AdapterError) as caught:
        connection.write("Account", [WriteRequest(account_ids(sandbox, 1)[0], FLAGS)])
    assert caught.value.retryable and not isinstance(caught.value, ConfigurationError)
    assert calls_since(sandbox, before) == {"composite": 3}


def test_request_limit_exceeded_raises_rate_limited_without_hammering(settings, sandbox):
    connection = SalesforceAdapter({**settings, "rate_limit_seconds": 120})
    connection.test()
    ids = account_ids(sandbox, 450, start=1200)
    sandbox.faults.fail(1, status=403, body=LIMIT_BODY)
    before = sandbox.calls.copy()
    with pytest.raises(RateLimited) as caught:
        connection.write("Account", [WriteRequest(i, FLAGS) for i in ids])
    assert caught.value.retry_after == 120
    assert calls_since(sandbox, before) == {"composite": 1}
    # the org's own daily allowance running out answers the same way
    saved, sandbox.api_limit = sandbox.api_limit, sandbox.api_usage
    try:
        with pytest.raises(RateLimited):
            next(connection.read_changes("Account", None))
    finally:
        sandbox.api_limit = saved


def test_faults_can_be_armed_over_http(adapter, sandbox):
    adapter.test()
    control = f"{sandbox.url}/__sandbox/faults"
    verify = sandbox.ca_bundle()
    requests.post(control, json={"fail": 1, "status": 503}, verify=verify, timeout=5)
    assert adapter.read_one("Account", account_ids(sandbox, 1)[0]) is not None
    requests.post(
        control, json={"fail": 1, "status": 403, "body": LIMIT_BODY}, verify=verify, timeout=5
    )
    with pytest.raises(RateLimited):
        adapter.read_one("Account", account_ids(sandbox, 1)[0])
    counts = requests.get(f"{sandbox.url}/__sandbox/calls", verify=verify, timeout=5).json()
    assert counts["calls"]["query_all"] >= 2


def test_the_stand_in_enforces_the_collection_limit_and_bearer_auth(adapter, sandbox):
    adapter.test()
    target = account_ids(sandbox, 1)[0]
    body = {
        "allOrNone": False,
        "records": [{"attributes": {"type": "Account"}, "id": target}] * 201,
    }
    with pytest.raises(SalesforceMalformedRequest) as caught:
        adapter._client().restful("composite/sobjects", method="PATCH", json=body)
    assert caught.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    answer = requests.get(
        f"{sandbox.url}/services/data/v60.0/sobjects/Account/{target}",
        headers={"Authorization": "Bearer forged"},
        verify=sandbox.ca_bundle(),
        timeout=5,
    )
    assert answer.status_code == 401
    assert answer.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    assert answer.headers["Sforce-Limit-Info"].startswith("api-usage=")
