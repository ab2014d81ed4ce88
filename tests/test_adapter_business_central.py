"""The Business Central adapter against the SOAP page-service stand-in: real HTTP, real zeep."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from datetime import date

import pytest
import requests
import zeep
from zeep.transports import Transport

from adapters.base import AdapterError, ConfigurationError, WriteRequest
from adapters.business_central import BusinessCentralAdapter
from sandbox.business_central import BusinessCentralSandbox

TODAY = date(2026, 11, 20)
PASSWORD_ENV = "COI_TEST_BC_PASSWORD"
WSDL = "{http://schemas.xmlsoap.org/wsdl/}"
XSD = "{http://www.w3.org/2001/XMLSchema}"


@pytest.fixture(scope="module")
def running_bc():
    sandbox = BusinessCentralSandbox(today=TODAY).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def bc(running_bc):
    running_bc.reset()
    yield running_bc
    running_bc.reset()


@pytest.fixture
def make_adapter(bc, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, bc.password)
    made = []

    def make(sandbox: BusinessCentralSandbox | None = None, **overrides):
        sandbox = sandbox or bc
        settings = {
            "base_url": sandbox.base_url,
            "company": sandbox.company,
            "username": sandbox.username,
            "password_env": PASSWORD_ENV,
            "retry_base_seconds": 0.01,
            "timeout": 5,
            **overrides,
        }
        adapter = BusinessCentralAdapter(settings)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


def read_all(adapter, since=None):
    return list(adapter.read_changes("Vendor", since))


# -- the stand-in's wire format -------------------------------------------------------------


def test_wsdl_is_the_published_page_shape(bc):
    assert requests.get(bc.wsdl_url, timeout=5).status_code == 401
    response = requests.get(bc.wsdl_url, auth=(bc.username, bc.password), timeout=5)
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    assert root.get("targetNamespace") == "urn:microsoft-dynamics-schemas/page/vendor"
    schema = root.find(f"{WSDL}types/{XSD}schema")
    types = {t.get("name"): t for t in schema if t.tag in (f"{XSD}complexType", f"{XSD}simpleType")}
    vendor = [e.get("name") for e in types["Vendor"].iter(f"{XSD}element")]
    assert vendor[:2] == ["Key", "No"]
    assert {"Name", "E_Mail", "Phone_No", "Blocked", "Last_Date_Modified"} <= set(vendor)
    blocked = [e.get("value") for e in types["Blocked"].iter(f"{XSD}enumeration")]
    assert blocked == ["_blank_", "Payment", "All"]
    assert [e.get("name") for e in types["Vendor_Filter"].iter(f"{XSD}element")] == [
        "Field",
        "Criteria",
    ]
    assert "Vendor_List" in types
    operations = {op.get("name") for op in root.find(f"{WSDL}binding").findall(f"{WSDL}operation")}
    assert operations == {"Read", "ReadMultiple", "Create", "Update", "Delete"}
    # GET on the address itself serves the same WSDL, as the service tier does
    plain = requests.get(bc.url, auth=(bc.username, bc.password), timeout=5)
    assert plain.content == response.content


def test_sandbox_refuses_doctype(bc):
    body = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>'
    )
    response = requests.post(
        bc.url,
        data=body,
        auth=(bc.username, bc.password),
        timeout=5,
        headers={"Content-Type": "text/xml"},
    )
    assert response.status_code == 500
    assert b"not allowed" in response.content


# -- reads ----------------------------------------------------------------------------------


def test_full_read_pages_with_bookmarks_and_returns_every_vendor_once(bc, make_adapter):
    numbers = bc.seed_vendors(1200, seed=7)
    adapter = make_adapter(page_size=500)
    pages = read_all(adapter)
    # three pages, then the empty answer that ends the read gives the new watermark
    assert [len(page.records) for page in pages] == [500, 500, 200, 0]
    assert bc.calls["ReadMultiple"] == 4
    seen = [record.external_id for page in pages for record in page.records]
    assert seen == sorted(numbers) and len(set(seen)) == 1200
    # records come in No order, so no page before the end may advance the watermark
    assert [page.bookmark for page in pages[:-1]] == ["0001-01-01"] * 3
    marks = [record.watermark for page in pages for record in page.records]
    assert pages[-1].bookmark == max(marks)
    # a full read stopped half way resumes from its bookmark: everything again
    again = [r.external_id for page in read_all(adapter, pages[0].bookmark) for r in page.records]
    assert again == seen
    first = pages[0].records[0]
    assert first.external_id == "V10000"
    assert set(first.data) >= {"Key", "No", "Name", "City", "Phone_No", "E_Mail", "Blocked"}
    assert first.data["Blocked"] == "_blank_" and first.deleted is False
    assert first.watermark == first.data["Last_Date_Modified"]
    assert date.fromisoformat(first.watermark) < TODAY


def test_incremental_read_filters_on_last_date_modified(bc, make_adapter):
    bc.seed_vendors(300, seed=3)
    since = "2026-08-01"
    expected = {
        no
        for no in (f"V{10000 + 10 * i}" for i in range(300))
        if bc.vendor(no)["Last_Date_Modified"] >= since
    }
    assert 0 < len(expected) < 300
    adapter = make_adapter(page_size=40)
    pages = read_all(adapter, since)
    records = [r for page in pages for r in page.records]
    assert {r.external_id for r in records} == expected
    assert all(r.watermark >= since for r in records)
    assert all(page.bookmark == since for page in pages[:-1])
    assert pages[-1].records == [] and pages[-1].bookmark == max(r.watermark for r in records)

    # a vendor changed today after a sync that already advanced to today is not missed
    bc.set_fields("V10000", Phone_No="+44 20 7946 0000")
    changed = [r for page in read_all(adapter, TODAY.isoformat()) for r in page.records]
    assert [r.external_id for r in changed] == ["V10000"]
    assert changed[0].watermark == TODAY.isoformat()
    assert changed[0].data["Phone_No"] == "+44 20 7946 0000"
    # a date-time watermark on a date field compares by its date
    later = [r for page in read_all(adapter, f"{TODAY}T15:30:00Z") for r in page.records]
    assert [r.external_id for r in later] == ["V10000"]
    # a watermark is checked before it goes into a filter expression
    with pytest.raises(ConfigurationError):
        read_all(adapter, "2026-01-01|V1*")


def test_page_without_modified_field_means_full_reads(make_adapter):
    sandbox = BusinessCentralSandbox(expose_modified=False, today=TODAY).start()
    try:
        sandbox.seed_vendors(30)
        adapter = make_adapter(sandbox, page_size=25)
        assert adapter.test()["incremental"] is False
        pages = read_all(adapter, "2026-11-01")
        assert [len(page.records) for page in pages] == [25, 5]
        assert all(page.bookmark is None for page in pages)
        assert all(r.watermark is None for page in pages for r in page.records)
    finally:
        sandbox.stop()


def test_read_one(bc, make_adapter):
    bc.seed_vendors(5)
    adapter = make_adapter()
    assert adapter.read_one("Vendor", "V99999") is None
    record = adapter.read_one("Vendor", "V10020")
    assert record.external_id == "V10020"
    assert record.data["Key"] == bc.vendor("V10020")["Key"]
    assert record.data["Name"] == bc.vendor("V10020")["Name"]


def test_malformed_and_blocked_records(bc, make_adapter):
    bc.seed_vendors(10)
    bc.corrupt("V10010", "date")
    bc.corrupt("V10020", "no")
    bc.corrupt("V10030", "blocked")
    bc.set_fields("V10040", Blocked="All")
    adapter = make_adapter(page_size=4)
    records = {r.external_id: r for page in read_all(adapter) for r in page.records}
    assert "V10020" not in records and len(records) == 9  # a record without No is skipped
    assert records["V10010"].watermark is None
    assert records["V10030"].data["Blocked"] == "Sometimes" and not records["V10030"].deleted
    assert records["V10040"].deleted is True


def test_test_reports_the_service(bc, make_adapter):
    facts = make_adapter().test()
    assert facts["namespace"] == "urn:microsoft-dynamics-schemas/page/vendor"
    assert facts["address"] == bc.url
    assert facts["incremental"] is True
    assert facts["modified_field"] == "Last_Date_Modified"


# -- writes ---------------------------------------------------------------------------------


def test_write_updates_fields_blocks_payment_and_changes_the_key(bc, make_adapter):
    bc.seed_vendors(5)
    before = {no: bc.vendor(no) for no in ("V10010", "V10020")}
    adapter = make_adapter(block_payment=True)
    results = adapter.write(
        "Vendor",
        [
            WriteRequest("V10010", {"Blocked": "Payment"}),
            WriteRequest("V10020", {"E_Mail": "ap@sutton-roofing.example.co.uk", "Blocked": ""}),
        ],
    )
    assert [(r.external_id, r.ok) for r in results] == [("V10010", True), ("V10020", True)]
    after = {no: bc.vendor(no) for no in before}
    assert after["V10010"]["Blocked"] == "Payment"
    assert after["V10020"]["E_Mail"] == "ap@sutton-roofing.example.co.uk"
    assert after["V10020"]["Blocked"] == "_blank_"
    assert after["V10010"]["Name"] == before["V10010"]["Name"]  # untouched fields stay
    for no in before:
        assert after[no]["Key"] != before[no]["Key"]
        assert after[no]["Last_Date_Modified"] == TODAY.isoformat()
    assert bc.calls["Read"] == 2 and bc.calls["Update"] == 2

    # writing what is already there sends no Update and keeps the Key
    key = bc.vendor("V10010")["Key"]
    assert adapter.write("Vendor", [WriteRequest("V10010", {"Blocked": "Payment"})])[0].ok
    assert bc.calls["Update"] == 2 and bc.vendor("V10010")["Key"] == key


def test_stale_key_is_reread_and_retried_once(bc, make_adapter):
    bc.seed_vendors(3)
    adapter = make_adapter()
    real_read = adapter._read
    interference = {"left": 1}

    def read_then_someone_edits(no):
        record = real_read(no)
        if interference["left"]:
            interference["left"] -= 1
            bc.set_fields(no, Name="Edited In BC Ltd")
        return record

    adapter._read = read_then_someone_edits
    [result] = adapter.write("Vendor", [WriteRequest("V10010", {"Phone_No": "+44 117 496 0001"})])
    assert result.ok, result.error
    assert bc.calls["Update"] == 2 and bc.calls["Read"] == 2
    stored = bc.vendor("V10010")
    assert stored["Phone_No"] == "+44 117 496 0001" and stored["Name"] == "Edited In BC Ltd"

    # someone keeps editing: the record fails, retryably, after one retry
    interference["left"] = 10
    [result] = adapter.write("Vendor", [WriteRequest("V10020", {"Phone_No": "+44 117 496 0002"})])
    assert not result.ok and result.retryable
    assert "Other user has modified" in result.error
    assert bc.calls["Update"] == 4


def test_write_gives_one_result_per_record_in_order(bc, make_adapter):
    bc.seed_vendors(3)
    adapter = make_adapter()
    results = adapter.write(
        "Vendor",
        [
            WriteRequest("V10000", {"Name": "Abbott Glazing Ltd"}),
            WriteRequest("V77777", {"Name": "Nobody"}),
            WriteRequest("V10010", {"E_Mail": "not an address"}),
            WriteRequest("V10020", {"Favourite_Colour": "blue"}),
            WriteRequest("V10020", {"Last_Date_Modified": "2020-01-01"}),
        ],
    )
    assert [r.external_id for r in results] == ["V10000", "V77777", "V10010", "V10020", "V10020"]
    assert [r.ok for r in results] == [True, False, False, False, False]
    assert not any(r.retryable for r in results)
    assert "does not exist" in results[1].error
    assert "email address" in results[2].error
    assert "Favourite_Colour" in results[3].error
    assert "maintained by Business Central" in results[4].error
    assert bc.vendor("V10000")["Name"] == "Abbott Glazing Ltd"


def test_blocked_needs_block_payment_and_never_touches_all(bc, make_adapter):
    bc.seed_vendors(3)
    [refused] = make_adapter().write("Vendor", [WriteRequest("V10000", {"Blocked": "Payment"})])
    assert not refused.ok and "block_payment" in refused.error
    assert bc.vendor("V10000")["Blocked"] == "_blank_"

    # the outbox reads the setting as block_payments; both names work, but must agree
    with pytest.raises(ConfigurationError):
        make_adapter(block_payment=True, block_payments=False)
    adapter = make_adapter(block_payments=True)
    [refused] = adapter.write("Vendor", [WriteRequest("V10000", {"Blocked": "All"})])
    assert not refused.ok and not refused.retryable

    bc.set_fields("V10010", Blocked="All")
    [result] = adapter.write(
        "Vendor", [WriteRequest("V10010", {"Blocked": "_blank_", "Phone_No": "+44 29 2018 0000"})]
    )
    assert result.ok
    assert bc.vendor("V10010")["Blocked"] == "All"  # a full block set in the ERP stays
    assert bc.vendor("V10010")["Phone_No"] == "+44 29 2018 0000"


# -- failures -------------------------------------------------------------------------------


def test_wrong_password_is_a_configuration_error(bc, make_adapter, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    adapter = make_adapter()
    monkeypatch.setenv(PASSWORD_ENV, "wrong-Pa55word")
    with pytest.raises(ConfigurationError) as caught:
        adapter.test()
    assert caught.value.retryable is False
    assert "401" in str(caught.value)
    assert bc.faults.requests == 1  # not retried
    assert "wrong-Pa55word" not in str(caught.value) and "wrong-Pa55word" not in caplog.text


def test_unpublished_page_is_a_configuration_error(bc, make_adapter):
    with pytest.raises(ConfigurationError) as caught:
        make_adapter(base_url=bc.base_url.replace("/CRONUS/", "/OTHER/")).test()
    assert "404" in str(caught.value)
    assert bc.faults.requests == 1


def test_password_is_never_in_settings_or_logs(bc, make_adapter, caplog):
    with pytest.raises(ConfigurationError):
        BusinessCentralAdapter({"base_url": bc.base_url, "username": "u", "password": "x"}).test()
    with pytest.raises(ConfigurationError):
        BusinessCentralAdapter(
            {"base_url": "https://u:p@bc.example.com/BC/WS/CRONUS/Page/", "username": "u"}
        )
    caplog.set_level(logging.DEBUG)
    bc.seed_vendors(3)
    adapter = make_adapter(block_payment=True)
    read_all(adapter)
    adapter.write("Vendor", [WriteRequest("V10000", {"Blocked": "Payment"})])
    assert bc.password not in caplog.text


def test_503_burst_is_retried(bc, make_adapter):
    bc.seed_vendors(3)
    adapter = make_adapter()
    adapter.test()
    bc.faults.fail(2, status=503, retry_after=0)
    assert adapter.read_one("Vendor", "V10010").external_id == "V10010"

    bc.faults.fail(10, status=503)
    with pytest.raises(AdapterError) as caught:
        adapter.read_one("Vendor", "V10010")
    assert caught.value.retryable is True and "503" in str(caught.value)
    bc.faults.reset()


def test_503_while_loading_the_wsdl_is_retried(bc, make_adapter):
    requests.post(f"{bc.root_url}/__sandbox/faults", json={"fail": 2, "status": 503}, timeout=5)
    assert make_adapter().test()["page"] == "Vendor"
    assert bc.calls["wsdl"] == 1 and bc.faults.requests == 4


def test_service_down_midway_fails_the_rest_retryably(bc, make_adapter):
    bc.seed_vendors(3)
    adapter = make_adapter(max_attempts=2)
    adapter.test()
    with pytest.raises(AdapterError) as caught:
        bc.faults.fail(10, status=503)
        adapter.write("Vendor", [WriteRequest("V10000", {"Name": "A"})])
    assert caught.value.retryable
    bc.faults.reset()

    real_read = adapter._read

    def read_then_outage(no):
        record = real_read(no)
        if no == "V10010":
            bc.faults.fail(10, status=503)
        return record

    adapter._read = read_then_outage
    results = adapter.write(
        "Vendor",
        [
            WriteRequest("V10000", {"Name": "First Ltd"}),
            WriteRequest("V10010", {"Name": "Second Ltd"}),
            WriteRequest("V10020", {"Name": "Third Ltd"}),
        ],
    )
    assert [r.ok for r in results] == [True, False, False]
    assert results[1].retryable and results[2].retryable
    assert "503" in results[1].error
    assert results[2].error.startswith("not attempted")
    assert bc.vendor("V10000")["Name"] == "First Ltd"
    bc.faults.reset()


def test_soap_fault_and_slow_service(bc, make_adapter):
    bc.seed_vendors(3)
    adapter = make_adapter(timeout=0.3, max_attempts=2)
    adapter.test()
    bc.soap_fault(1, "The service tier is busy.")
    with pytest.raises(AdapterError) as caught:
        adapter.read_one("Vendor", "V10000")
    assert "busy" in str(caught.value) and caught.value.retryable

    bc.faults.slow(0.6)
    with pytest.raises(AdapterError) as caught:
        adapter.read_one("Vendor", "V10000")
    assert caught.value.retryable
    bc.faults.reset()


def test_base_url_forms():
    def address(**settings):
        return BusinessCentralAdapter({"username": "u", **settings}).address

    page = "http://bc:7047/BC/WS/CRONUS%20UK%20Ltd./Page/Vendor"
    assert address(base_url="http://bc:7047/BC/WS/CRONUS%20UK%20Ltd./Page/") == page
    assert address(base_url="http://bc:7047/BC/WS/", company="CRONUS UK Ltd.") == page
    assert address(base_url="http://bc:7047/BC/WS/{company}/Page", company="CRONUS UK Ltd.") == page
    assert address(base_url="http://bc:7047/BC/WS/C/Page", page="VendorCard").endswith(
        "/VendorCard"
    )
    for bad in ("", "ftp://bc/WS/C/Page/", "http://bc:7047/BC/OData/"):
        with pytest.raises(ConfigurationError):
            address(base_url=bad)
    with pytest.raises(ConfigurationError):
        BusinessCentralAdapter({"base_url": page.rsplit("/", 1)[0] + "/"})  # no username


def test_sandbox_operations_and_filters(bc):
    bc.seed_vendors(20, seed=1)
    session = requests.Session()
    session.auth = (bc.username, bc.password)
    client = zeep.Client(bc.url, transport=Transport(session=session))
    service = client.create_service(
        "{urn:microsoft-dynamics-schemas/page/vendor}Vendor_Binding", bc.url
    )

    def numbers(criteria, field="No"):
        found = service.ReadMultiple(filter=[{"Field": field, "Criteria": criteria}], setSize=0)
        return [v.No for v in found or []]

    assert numbers("V10010|V10030") == ["V10010", "V10030"]
    assert numbers("V10020..V10040") == ["V10020", "V10030", "V10040"]
    assert numbers("<>V10000")[:1] == ["V10010"]
    assert numbers("V1019*") == ["V10190"]
    assert len(numbers("@*LTD*", "Name")) == sum(
        "ltd" in bc.vendor(no)["Name"].lower() for no in numbers("")
    )
    last = service.ReadMultiple(filter=zeep.xsd.SkipValue, setSize=-1)
    assert [v.No for v in last] == ["V10190"]

    created = service.Create(Vendor={"Name": "Quinn Glazing Ltd", "E_Mail": "ap@quinn.example"})
    assert created.No == "V10200" and created.Blocked == "_blank_" and created.Key
    with pytest.raises(zeep.exceptions.Fault, match="not a valid value for Blocked"):
        service.Update(Vendor={"Key": created.Key, "Blocked": "Never"})
    updated = service.Update(Vendor={"Key": created.Key, "City": "Leeds"})
    with pytest.raises(zeep.exceptions.Fault, match="Other user has modified"):
        service.Delete(Key=created.Key)
    assert service.Delete(Key=updated.Key) is True
    assert service.Read(No="V10200") is None

    armed = requests.post(
        f"{bc.root_url}/__sandbox/faults", json={"soap_fault": 1, "message": "Locked"}, timeout=5
    )
    assert armed.status_code == 200
    with pytest.raises(zeep.exceptions.Fault, match="Locked"):
        service.Read(No="V10000")
    assert service.Read(No="V10000").No == "V10000"
