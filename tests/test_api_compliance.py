"""Certificates, notices, waivers and requirement changes keep stored compliance current."""

from __future__ import annotations

from tests.conftest import STANDARD_SET, certificate, day, good_certificate, policy


def compliance(api, vendor_id: int, **query) -> dict:
    response = api.get(f"/api/v1/vendors/{vendor_id}/compliance", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_vendor_without_certificate_is_non_compliant(api, standard_set, make_vendor):
    vendor_id = make_vendor()

    result = compliance(api, vendor_id)

    assert (result["status"], result["results"][0]["deficiencies"][0]["code"]) == (
        "non_compliant",
        "no_certificate",
    )


def test_certificate_makes_vendor_compliant_in_the_same_request(api, standard_set, make_vendor):
    vendor_id = make_vendor(cert=good_certificate())

    vendor = api.get(f"/api/v1/vendors/{vendor_id}").get_json()

    assert (vendor["status"], vendor["expires_on"]) == ("compliant", day(265))


def test_window_past_expiration_date_is_not_covered(api, standard_set, make_vendor):
    vendor_id = make_vendor(cert=good_certificate(end=10))

    result = compliance(api, vendor_id, as_of=day(0), until=day(10))

    codes = {d["code"] for d in result["results"][0]["deficiencies"]}
    assert (result["status"], codes) == ("non_compliant", {"expired"})


def test_matched_cancellation_notice_blocks_from_its_effective_date(api, standard_set, make_vendor):
    vendor_id = make_vendor(cert=good_certificate())

    notice = api.post(
        "/api/v1/cancellation-notices",
        {
            "policy_number": "gl 1",
            "insurer_name": "KEYSTONE MUTUAL INSURANCE COMPANY",
            "effective_date": day(0),
            "received_via": "mail",
        },
    )

    assert notice.status_code == 201
    assert notice.get_json()["status"] == "matched"
    assert compliance(api, vendor_id)["status"] == "non_compliant"


def test_unmatched_notice_is_kept_and_applied_when_the_policy_arrives(
    api, standard_set, make_vendor
):
    notice = api.post(
        "/api/v1/cancellation-notices",
        {
            "policy_number": "GL-1",
            "insurer_name": "Keystone Mutual Insurance Co.",
            "effective_date": day(-1),
            "received_via": "email",
        },
    )
    assert (notice.get_json()["status"], notice.get_json()["policy_id"]) == ("unmatched", None)

    vendor_id = make_vendor(cert=good_certificate())

    assert compliance(api, vendor_id)["status"] == "non_compliant"


def test_waiver_suppresses_one_deficiency_and_revoking_restores_it(api, standard_set, make_vendor):
    cert = certificate(
        policy("general_liability", "GL-1", -10, 300, additional_insured=False),
        policy("automobile_liability", "AU-1", -10, 300),
    )
    vendor_id = make_vendor(cert=cert)
    assert compliance(api, vendor_id)["status"] == "non_compliant"

    waiver = api.post(
        f"/api/v1/vendors/{vendor_id}/waivers",
        {
            "code": "additional_insured_missing",
            "line": "general_liability",
            "reason": "endorsement in the mail",
            "until": day(30),
        },
    )
    assert waiver.status_code == 201
    assert compliance(api, vendor_id)["status"] == "compliant"

    revoked = api.delete(f"/api/v1/vendors/{vendor_id}/waivers/{waiver.get_json()['id']}")
    assert revoked.status_code == 204
    assert compliance(api, vendor_id)["status"] == "non_compliant"


def test_requirement_change_recomputes_stored_results(api, standard_set, make_vendor):
    vendor_id = make_vendor(cert=good_certificate())
    stricter = {**STANDARD_SET}
    stricter["coverages"] = [
        {"line": "general_liability", "limits": {"each_occurrence": 3_000_000}},
    ]

    response = api.put("/api/v1/requirement-sets/standard", stricter)

    assert response.get_json()["version"] == 2
    assert api.get(f"/api/v1/vendors/{vendor_id}").get_json()["status"] == "non_compliant"


def test_future_dated_version_takes_effect_on_its_date(api, standard_set, make_vendor):
    vendor_id = make_vendor(cert=good_certificate())
    stricter = {
        **STANDARD_SET,
        "effective_from": day(20),
        "coverages": [{"line": "general_liability", "limits": {"each_occurrence": 3_000_000}}],
    }
    api.put("/api/v1/requirement-sets/standard", stricter)

    before = compliance(api, vendor_id, as_of=day(19))
    after = compliance(api, vendor_id, as_of=day(20))

    assert (before["status"], after["status"]) == ("compliant", "non_compliant")


def test_every_write_is_audited(api, standard_set, make_vendor):
    make_vendor(cert=good_certificate())

    actions = {e["action"] for e in api.get("/api/v1/audit").get_json()["items"]}

    assert {"requirement_set.put", "vendor.create", "certificate.create"} <= actions
