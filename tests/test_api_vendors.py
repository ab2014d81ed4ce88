"""Vendors: create, upsert through external references, list with filters."""

from __future__ import annotations

from tests.conftest import good_certificate


def vendor_body(name: str, *refs: str, **extra) -> dict:
    return {
        "name": name,
        "email": "office@vendor.example",
        "tax_id": "12-3456789",
        "work_types": ["Plumbing", "hvac"],
        "regions": ["us-east"],
        "risk_tier": "medium",
        "external_refs": [{"system": "salesforce", "external_id": r} for r in refs],
        **extra,
    }


def test_create_returns_201_and_the_stored_vendor(api):
    response = api.post("/api/v1/vendors", vendor_body("Ridgeline Roofing LLC", "001A"))

    created = response.get_json()
    assert response.status_code == 201
    assert api.get(f"/api/v1/vendors/{created['id']}").get_json() == created
    assert created["work_types"] == ["hvac", "plumbing"]


def test_posting_a_bound_reference_again_updates_the_same_vendor(api):
    first = api.post("/api/v1/vendors", vendor_body("Old Name", "001A")).get_json()

    again = api.post("/api/v1/vendors", vendor_body("New Name", "001A", regions=["us-west"]))

    assert again.status_code == 200
    assert (again.get_json()["id"], again.get_json()["name"], again.get_json()["regions"]) == (
        first["id"],
        "New Name",
        ["us-west"],
    )


def test_references_of_two_vendors_conflict(api):
    api.post("/api/v1/vendors", vendor_body("A", "001A"))
    api.post("/api/v1/vendors", vendor_body("B", "001B"))

    response = api.post("/api/v1/vendors", vendor_body("C", "001A", "001B"))

    assert (response.status_code, response.get_json()["error"]["code"]) == (409, "conflict")


def test_list_filters_by_status_work_type_region_and_text(api, standard_set, make_vendor):
    good = make_vendor("Good Plumbing", cert=good_certificate())
    make_vendor("Bad Plumbing")
    make_vendor("Good Roofing", work_types=["roofing"], cert=good_certificate())
    make_vendor("West Plumbing", regions=["us-west"], cert=good_certificate())

    listing = api.get(
        "/api/v1/vendors",
        query_string={"status": "compliant", "work_type": "plumbing", "region": "us-east"},
    ).get_json()
    by_text = api.get("/api/v1/vendors", query_string={"q": "roof"}).get_json()

    assert [v["id"] for v in listing["items"]] == [good]
    assert [v["name"] for v in by_text["items"]] == ["Good Roofing"]


def test_list_is_paginated(api, make_vendor):
    for n in range(5):
        make_vendor(f"Vendor {n}")

    page = api.get("/api/v1/vendors", query_string={"page": 2, "per_page": 2}).get_json()

    assert ([v["name"] for v in page["items"]], page["total"]) == (["Vendor 2", "Vendor 3"], 5)


def test_like_wildcards_in_the_search_text_are_literal(api, make_vendor):
    make_vendor("100% Clean Co")
    make_vendor("Other Co")

    found = api.get("/api/v1/vendors", query_string={"q": "%"}).get_json()

    assert [v["name"] for v in found["items"]] == ["100% Clean Co"]


def test_unknown_vendor_is_404(api):
    response = api.get("/api/v1/vendors/999999")

    assert (response.status_code, response.get_json()["error"]["code"]) == (404, "not_found")
