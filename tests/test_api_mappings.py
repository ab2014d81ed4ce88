"""The admin API of field mappings: versions, rollback, validation, preview."""

from __future__ import annotations

from sqlalchemy import func, select

from connector.storage import models as m

BASE = "/api/v1/connections/acme-sf/mappings/vendor/in"

ACCOUNT = {
    "Id": "001000000000001AAA",
    "Name": "  Ridgeline Roofing LLC ",
    "Email__c": "Office@Ridgeline.example",
    "Tax_ID__c": "12-3456789",
    "Trades__c": "Roofing;HVAC",
    "Service_Regions__c": "US-East",
    "Risk_Tier__c": "High",
    "Active__c": "Yes",
}

CUSTOM_YAML = """
object: vendor
direction: in
fields:
  - target: external_id
    source: Id
    required: true
  - target: name
    source: Vendor_Name__c
    transforms: [strip]
    required: true
"""


def test_save_versions_and_rollback(api):
    first = api.put(BASE, {"default": "salesforce_account_in"})
    second = api.put(BASE, {"spec_text": CUSTOM_YAML, "note": "our own field names"})

    rolled = api.post(BASE + "/rollback", {"version": 1})

    assert (first.status_code, second.status_code, rolled.status_code) == (201, 200, 200)
    assert [v["version"] for v in api.get(BASE + "/versions").get_json()["items"]] == [1, 2, 3]
    assert api.get(BASE).get_json()["spec"] == first.get_json()["spec"]


def test_every_save_is_audited_with_its_version(api):
    api.put(BASE, {"default": "salesforce_account_in"})
    api.post(BASE + "/rollback", {"version": 1})

    events = api.get("/api/v1/audit", query_string={"action": "mapping.save"}).get_json()

    assert [e["detail"]["version"] for e in events["items"]] == [2, 1]


def test_unknown_canonical_field_is_a_422_naming_the_rule(api):
    spec = {
        "object": "vendor",
        "direction": "in",
        "fields": [{"target": "nickname", "source": "Name"}],
    }

    response = api.put(BASE, {"spec": spec})

    error = response.get_json()["error"]
    assert (response.status_code, error["code"]) == (422, "invalid_mapping")
    assert "nickname" in str(error["fields"])


def test_unknown_transform_is_a_422(api):
    spec = {
        "object": "vendor",
        "direction": "in",
        "fields": [{"target": "name", "source": "Name", "transforms": ["shout"]}],
    }

    response = api.put(BASE, {"spec": spec})

    assert response.status_code == 422
    assert "shout" in str(response.get_json()["error"]["fields"])


def test_yaml_syntax_error_is_a_422(api):
    response = api.put(BASE, {"spec_text": "fields: [unclosed"})

    assert (response.status_code, response.get_json()["error"]["code"]) == (
        422,
        "invalid_mapping",
    )


def test_preview_maps_a_sample_record_and_writes_nothing(api, sessions):
    api.put(BASE, {"default": "salesforce_account_in"})
    with sessions() as session:
        before = session.scalar(select(func.count()).select_from(m.AuditEvent))

    preview = api.post(BASE + "/preview", {"record": ACCOUNT}).get_json()

    with sessions() as session:
        after = session.scalar(select(func.count()).select_from(m.AuditEvent))
    assert preview["ok"] and preview["version"] == 1
    assert preview["record"]["name"] == "Ridgeline Roofing LLC"
    assert preview["record"]["work_types"] == ["roofing", "hvac"]
    assert preview["trace"]
    assert before == after


def test_preview_of_an_unsaved_spec_reports_errors_per_rule(api):
    spec = {
        "object": "vendor",
        "direction": "in",
        "fields": [{"target": "name", "source": "Missing__c", "required": True}],
    }

    preview = api.post(BASE + "/preview", {"record": ACCOUNT, "spec": spec}).get_json()

    assert preview["ok"] is False
    assert preview["version"] is None
    assert preview["errors"][0]["rule"] in ("name", 0)


def test_integration_may_preview_but_not_save(api, client_as):
    api.put(BASE, {"default": "salesforce_account_in"})
    integration = client_as("integration")

    previewed = integration.post(BASE + "/preview", {"record": ACCOUNT})
    saved = integration.put(BASE, {"default": "salesforce_account_in"})

    assert (previewed.status_code, saved.status_code) == (200, 403)


def test_unknown_object_in_the_path_is_a_422(api):
    response = api.get("/api/v1/connections/acme-sf/mappings/planet/in")

    assert (response.status_code, list(response.get_json()["error"]["fields"])) == (
        422,
        ["object"],
    )


def test_mapping_that_was_never_saved_is_a_404(api):
    assert api.get(BASE).status_code == 404
