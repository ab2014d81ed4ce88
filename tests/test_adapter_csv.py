"""The CSV adapter: streaming import (BOM, quoting, delimiters, rows without an id) and the
compliance export (merged, atomic)."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from adapters.base import AdapterError, ConfigurationError, WriteRequest
from adapters.csv_files import CsvAdapter


def records(adapter, object="Vendor"):
    return [r for page in adapter.read_changes(object, None) for r in page.records]


def write_bytes(path, text: str, encoding: str = "utf-8-sig"):
    path.write_bytes(text.encode(encoding))
    return path


def test_import_with_bom_quotes_and_semicolons(tmp_path):
    file = write_bytes(
        tmp_path / "vendors.csv",
        "external_id;name;notes\r\n"
        'V-1;"Smith; Sons & Co.";"said ""hello""\r\non two lines"\r\n'
        "V-2;Électricité Dupont;\r\n",
    )
    assert file.read_bytes().startswith(b"\xef\xbb\xbf")
    adapter = CsvAdapter({"path": str(file), "delimiter": ";", "id_column": "external_id"})
    got = records(adapter)
    assert [r.external_id for r in got] == ["V-1", "V-2"]
    assert got[0].data == {
        "external_id": "V-1",
        "name": "Smith; Sons & Co.",
        "notes": 'said "hello"\r\non two lines',
    }
    assert got[1].data["name"] == "Électricité Dupont"
    assert all(r.watermark is None and not r.deleted for r in got)


def test_other_encodings_and_undecodable_bytes(tmp_path):
    file = write_bytes(tmp_path / "v.csv", "id,name\n1,Café\n", "cp1252")
    assert records(CsvAdapter({"path": str(file), "encoding": "cp1252"}))[0].data["name"] == "Café"
    with pytest.raises(AdapterError, match="not utf-8") as caught:
        records(CsvAdapter({"path": str(file)}))
    assert not caught.value.retryable


def test_row_without_id_is_yielded_with_an_empty_external_id(tmp_path):
    file = write_bytes(
        tmp_path / "vendors.csv",
        "id,name\n 7 ,Seven\n,No id here\n8\n9,Nine,surplus,cells\n,,\n\n",
    )
    got = records(CsvAdapter({"path": str(file)}))
    assert [r.external_id for r in got] == ["7", "", "8", "9"]  # trimmed; blank rows skipped
    assert got[1].data == {"id": "", "name": "No id here"}
    assert got[2].data == {"id": "8", "name": None}
    assert got[3].data["_extra"] == ["surplus", "cells"]


def test_pages_stream_page_size_rows(tmp_path):
    lines = "".join(f"{n},Vendor {n}\n" for n in range(1, 12))
    file = write_bytes(tmp_path / "vendors.csv", "id,name\n" + lines)
    pages = list(CsvAdapter({"path": str(file), "page_size": 5}).read_changes("Vendor", "ignored"))
    assert [len(p.records) for p in pages] == [5, 5, 1]
    assert [p.bookmark for p in pages] == ["vendors.csv:6", "vendors.csv:11", "vendors.csv:12"]


def test_directory_reads_each_objects_files(tmp_path):
    write_bytes(tmp_path / "vendors-b.csv", "id,name\n2,B\n")
    write_bytes(tmp_path / "Vendors-a.csv", "id,name\n1,A\n")
    write_bytes(tmp_path / "certificates.csv", "vendor_external_id,insured_name\n1,A\n")
    write_bytes(tmp_path / "notes.txt", "id\nx\n")
    adapter = CsvAdapter(
        {"path": str(tmp_path), "id_columns": {"Certificate": "vendor_external_id"}}
    )
    assert [r.external_id for r in records(adapter)] == ["1", "2"]
    assert [r.data["insured_name"] for r in records(adapter, "Certificate")] == ["A"]
    assert adapter.read_one("Vendor", "2").data["name"] == "B"
    assert adapter.read_one("Vendor", "3") is None
    assert set(adapter.test()["files"]) == {"vendors-b.csv", "Vendors-a.csv", "certificates.csv"}


def test_bad_headers_and_settings_are_refused(tmp_path):
    file = write_bytes(tmp_path / "v.csv", "vendor,name\n1,A\n")
    with pytest.raises(ConfigurationError, match="no 'id' column"):
        records(CsvAdapter({"path": str(file)}))
    write_bytes(file, "id,name,name\n1,A,B\n")
    with pytest.raises(AdapterError, match="appear twice"):
        records(CsvAdapter({"path": str(file)}))
    with pytest.raises(ConfigurationError):
        CsvAdapter({"path": str(file), "delimiter": ";;"})
    with pytest.raises(ConfigurationError):
        CsvAdapter({"path": str(file), "encoding": "klingon"})
    with pytest.raises(ConfigurationError):
        records(CsvAdapter({"path": str(tmp_path / "missing.csv")}))
    with pytest.raises(ConfigurationError):
        CsvAdapter({"path": str(file)}).write("Vendor", [WriteRequest("1", {"name": "x"})])
    with pytest.raises(ConfigurationError, match="export_path"):
        CsvAdapter({"path": str(file)}).write("Compliance", [WriteRequest("1", {"a": 1})])


# --- export ---------------------------------------------------------------------------------


def export_rows(adapter):
    return [r.data for r in records(adapter, "Compliance")]


def test_export_creates_then_merges(tmp_path):
    target = tmp_path / "out" / "compliance.csv"
    target.parent.mkdir()
    adapter = CsvAdapter({"export_path": str(target.parent), "delimiter": ";"})
    results = adapter.write(
        "Compliance",
        [
            WriteRequest("V-1", {"status": "compliant", "score": 91}),
            WriteRequest("V-2", {"status": "non_compliant", "score": 12}),
            WriteRequest("", {"status": "compliant"}),
        ],
    )
    assert [(r.external_id, r.ok) for r in results] == [("V-1", True), ("V-2", True), ("", False)]
    assert target.read_bytes().startswith(b"\xef\xbb\xbfexternal_id;status;score\r\n")

    adapter.write(
        "Compliance",
        [
            WriteRequest("V-2", {"status": "compliant", "expires_on": "2027-01-31"}),
            WriteRequest("V-3", {"status": "expiring", "score": 60}),
        ],
    )
    assert export_rows(adapter) == [
        {"external_id": "V-1", "status": "compliant", "score": "91", "expires_on": ""},
        {"external_id": "V-2", "status": "compliant", "score": "12", "expires_on": "2027-01-31"},
        {"external_id": "V-3", "status": "expiring", "score": "60", "expires_on": ""},
    ]
    assert adapter.read_one("Compliance", "V-2").data["status"] == "compliant"


def test_export_cells(tmp_path):
    adapter = CsvAdapter({"export_path": str(tmp_path / "c.csv")})
    adapter.write(
        "Compliance",
        [
            WriteRequest(
                "V-1",
                {
                    "blocked": True,
                    "note": None,
                    "deficiencies": ["expired", "missing_coverage"],
                    "name": '=HYPERLINK("http://x")',
                    "delta": -5,
                },
            )
        ],
    )
    [row] = export_rows(adapter)
    assert row == {
        "external_id": "V-1",
        "blocked": "true",
        "note": "",
        "deficiencies": '["expired", "missing_coverage"]',
        "name": '\'=HYPERLINK("http://x")',
        "delta": "-5",
    }


def test_export_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "compliance.csv"
    adapter = CsvAdapter({"export_path": str(target)})
    adapter.write("Compliance", [WriteRequest("V-1", {"status": "compliant"})])
    target.chmod(0o640)
    before = target.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(AdapterError, match="No space left") as caught:
        adapter.write("Compliance", [WriteRequest("V-2", {"status": "expiring"})])
    assert caught.value.retryable
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".compliance.csv.lock", "compliance.csv"]

    monkeypatch.undo()
    adapter.write("Compliance", [WriteRequest("V-2", {"status": "expiring"})])
    assert [r["external_id"] for r in export_rows(adapter)] == ["V-1", "V-2"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # permissions kept


def test_concurrent_exports_lose_nothing(tmp_path):
    target = tmp_path / "compliance.csv"

    def writer(prefix):
        adapter = CsvAdapter({"export_path": str(target)})
        for n in range(15):
            adapter.write("Compliance", [WriteRequest(f"{prefix}-{n}", {"score": n})])

    threads = [threading.Thread(target=writer, args=(p,)) for p in "ABC"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = export_rows(CsvAdapter({"export_path": str(target)}))
    assert len(rows) == 45 and len({r["external_id"] for r in rows}) == 45
