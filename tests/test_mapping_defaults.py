"""The shipped default mappings applied to realistic payloads of each peer system, and the
layering and copied constants of the `mappings` package."""

from __future__ import annotations

import ast
import copy
import datetime as dt
import sys
from importlib import resources
from pathlib import Path

import pytest

from connector import schemas
from connector.compliance import model
from mappings import (
    DEFAULTS,
    TRANSFORMS,
    MappingSpecError,
    compile_mapping,
    compliance_record,
    default_spec,
    jsonable,
)
from mappings import canonical as c


def compiled(name: str):
    object, direction = DEFAULTS[name]
    return compile_mapping(default_spec(name), object=object, direction=direction)


def test_every_default_is_shipped_valid_and_says_what_it_is_for():
    files = {p.name[:-5] for p in resources.files("mappings").joinpath("defaults").iterdir()}
    assert files == set(DEFAULTS)
    for name, (object, direction) in DEFAULTS.items():
        spec = default_spec(name)
        assert (spec["object"], spec["direction"]) == (object, direction)
        assert spec["description"]
        compiled(name)


def test_default_spec_is_a_fresh_copy_and_unknown_names_are_errors():
    spec = default_spec("csv_vendor_in")
    spec["fields"].clear()
    assert default_spec("csv_vendor_in")["fields"]
    with pytest.raises(MappingSpecError) as caught:
        default_spec("sap_vendor_in")
    assert "No default mapping 'sap_vendor_in'" in caught.value.errors["default"][0]


def as_vendor_body(values: dict, system: str) -> dict:
    """The vendor API body a canonical vendor record becomes (as the sync service builds it).
    `phone` is canonical but not (yet) part of the vendor body."""
    body = {k: v for k, v in values.items() if k not in ("external_id", "active", "phone")}
    body["external_refs"] = [{"system": system, "external_id": values["external_id"]}]
    return schemas.vendor_create_schema.load(body)


# --- Salesforce ---------------------------------------------------------------------------------

SF_ACCOUNT = {
    "attributes": {
        "type": "Account",
        "url": "/services/data/v61.0/sobjects/Account/0015g00000XyZ12AAB",
    },
    "Id": "0015g00000XyZ12AAB",
    "Name": "Rivera Electric & Sons, LLC ",
    "Email__c": "Dispatch@RiveraElectric.com",
    "Phone": "(415) 555-0142",
    "Tax_ID__c": "84-1234567",
    "Trades__c": "Electrical;Low Voltage",
    "Service_Regions__c": "CA-North;CA-South",
    "Risk_Tier__c": "High",
    "Active__c": "Yes",
    "BillingCity": "Oakland",
    "SystemModstamp": "2026-01-15T10:22:31.000+0000",
}


def test_salesforce_account_in():
    outcome = compiled("salesforce_account_in").apply(SF_ACCOUNT)
    assert outcome.ok, outcome.errors
    assert outcome.values == {
        "external_id": "0015g00000XyZ12AAB",
        "name": "Rivera Electric & Sons, LLC",
        "email": "dispatch@riveraelectric.com",
        "phone": "(415) 555-0142",
        "tax_id": "84-1234567",
        "work_types": ["electrical", "low voltage"],
        "regions": ["ca-north", "ca-south"],
        "risk_tier": "high",
        "active": True,
    }
    as_vendor_body(outcome.values, "salesforce")


def test_salesforce_account_in_with_nulls_and_bad_values():
    mapping = compiled("salesforce_account_in")
    sparse = dict(
        SF_ACCOUNT, Email__c=None, Phone=None, Trades__c=None, Risk_Tier__c=None, Active__c="No"
    )
    outcome = mapping.apply(sparse)
    assert outcome.ok
    assert outcome.values == {
        "external_id": "0015g00000XyZ12AAB",
        "name": "Rivera Electric & Sons, LLC",
        "tax_id": "84-1234567",
        "regions": ["ca-north", "ca-south"],
        "active": False,
    }
    broken = dict(SF_ACCOUNT, Name=None, Risk_Tier__c="Platinum", Active__c="Maybe")
    outcome = mapping.apply(broken)
    assert [(e["rule"], e["source"]) for e in outcome.errors] == [
        ("name", "Name"),
        ("risk_tier", "Risk_Tier__c"),
        ("active", "Active__c"),
    ]
    assert "'Platinum' is not in the lookup table" in outcome.errors[1]["message"]


RESULT = {
    "requirement_set": "facilities-standard",
    "as_of": "2026-03-01",
    "until": "2026-03-01",
    "status": "non_compliant",
    "score": 12,
    "score_parts": {"margin": 0.1},
    "expires_on": "2026-03-31",
    "deficiencies": [
        {
            "code": "expired",
            "line": "automobile_liability",
            "field": "expiration_date",
            "required": None,
            "actual": "2026-02-28",
            "severity": "block",
            "message": "Automobile liability expired on 2026-02-28.",
        },
        {
            "code": "limit_below_minimum",
            "line": "general_liability",
            "field": "each_occurrence",
            "required": 1000000,
            "actual": 500000,
            "severity": "block",
            "message": "General liability each occurrence is 500,000; 1,000,000 required.",
        },
    ],
    "waived": [],
    "stable_until": None,
}


def test_salesforce_account_out():
    outcome = compiled("salesforce_account_out").apply(compliance_record(RESULT))
    assert outcome.ok, outcome.errors
    assert outcome.values == {
        "COI_Status__c": "Non-compliant",
        "COI_Score__c": 12,
        "COI_Expires__c": "2026-03-31",
        "COI_Deficiencies__c": "Automobile liability expired on 2026-02-28.\n"
        "General liability each occurrence is 500,000; 1,000,000 required.",
        "Is_Insurance_Compliant__c": False,
    }
    clean = dict(RESULT, status="expiring", score=88, deficiencies=[], expires_on=None)
    assert compiled("salesforce_account_out").apply(compliance_record(clean)).values == {
        "COI_Status__c": "Expiring",
        "COI_Score__c": 88,
        "COI_Expires__c": None,
        "COI_Deficiencies__c": None,
        "Is_Insurance_Compliant__c": True,
    }


SERVICE_RESOURCE = {
    "attributes": {"type": "ServiceResource", "url": "/services/data/v61.0/sobjects/..."},
    "Id": "0Hn5g000000XyZaCAK",
    "Name": "Rivera Electric - Crew 2",
    "IsActive": True,
    "Account": {"attributes": {"type": "Account"}, "Tax_ID__c": "84-1234567"},
    "RelatedRecord": {
        "attributes": {"type": "User"},
        "Email": "Crew2@RiveraElectric.com",
        "Phone": None,
    },
    "ServiceResourceSkills": {
        "totalSize": 2,
        "done": True,
        "records": [
            {
                "attributes": {"type": "ServiceResourceSkill"},
                "Skill": {"attributes": {"type": "Skill"}, "MasterLabel": "Electrical"},
            },
            {
                "attributes": {"type": "ServiceResourceSkill"},
                "Skill": {"attributes": {"type": "Skill"}, "MasterLabel": " EV Chargers "},
            },
        ],
    },
    "ServiceTerritories": {
        "totalSize": 1,
        "done": True,
        "records": [
            {
                "attributes": {"type": "ServiceTerritoryMember"},
                "ServiceTerritory": {
                    "attributes": {"type": "ServiceTerritory"},
                    "Name": "Bay Area",
                },
            }
        ],
    },
}


def test_salesforce_service_resource_in():
    mapping = compiled("salesforce_service_resource_in")
    outcome = mapping.apply(SERVICE_RESOURCE)
    assert outcome.ok, outcome.errors
    assert outcome.values == {
        "external_id": "0Hn5g000000XyZaCAK",
        "name": "Rivera Electric - Crew 2",
        "email": "crew2@riveraelectric.com",
        "tax_id": "84-1234567",
        "work_types": ["electrical", "ev chargers"],
        "regions": ["bay area"],
        "active": True,
    }
    as_vendor_body(outcome.values, "salesforce")
    # Child relationships without records are null; a resource without account or user.
    bare = dict(
        SERVICE_RESOURCE,
        IsActive=False,
        Account=None,
        RelatedRecord=None,
        ServiceResourceSkills=None,
        ServiceTerritories={"totalSize": 0, "done": True, "records": []},
    )
    outcome = mapping.apply(bare)
    assert outcome.ok, outcome.errors
    assert outcome.values == {
        "external_id": "0Hn5g000000XyZaCAK",
        "name": "Rivera Electric - Crew 2",
        "regions": [],
        "active": False,
    }


def test_salesforce_service_resource_out():
    record = compliance_record(dict(RESULT, status="compliant", score=91, deficiencies=[]))
    outcome = compiled("salesforce_service_resource_out").apply(record)
    assert outcome.values == {
        "Is_Insurance_Compliant__c": True,
        "COI_Score__c": 91,
        "COI_Expires__c": "2026-03-31",
    }


# --- Business Central ---------------------------------------------------------------------------

BC_VENDOR = {
    "Key": "32;GwAAAAJ7/1YAMQAwADAAMgAwAAAAAAA=10;2847361190;",
    "No": "V10020",
    "Name": "Acme Plumbing Inc.",
    "Name_2": None,
    "Address": "1200 Industrial Pkwy",
    "City": "Springfield",
    "County": "IL",
    "Post_Code": "62701",
    "Country_Region_Code": "US",
    "Phone_No": "217-555-0100",
    "E_Mail": "AP@AcmePlumbing.com",
    "VAT_Registration_No": "36-4455667",
    "Blocked": "_blank_",
    "Privacy_Blocked": False,
    "Balance_LCY": 1520.5,
    "Last_Date_Modified": dt.date(2026, 1, 15),
}


def test_business_central_vendor_in():
    mapping = compiled("business_central_vendor_in")
    outcome = mapping.apply(BC_VENDOR)
    assert outcome.ok, outcome.errors
    assert outcome.values == {
        "external_id": "V10020",
        "name": "Acme Plumbing Inc.",
        "email": "ap@acmeplumbing.com",
        "phone": "217-555-0100",
        "tax_id": "36-4455667",
        "regions": ["il"],
        "active": True,
    }
    as_vendor_body(outcome.values, "business_central")
    assert mapping.apply(dict(BC_VENDOR, Blocked="Payment")).values["active"] is True
    assert mapping.apply(dict(BC_VENDOR, Blocked="All")).values["active"] is False
    assert mapping.apply(dict(BC_VENDOR, Blocked="")).values["active"] is True
    assert mapping.apply(dict(BC_VENDOR, Blocked="Frozen")).errors[0]["rule"] == "active"


def test_business_central_vendor_out_sets_blocked_only_when_the_connection_blocks():
    mapping = compiled("business_central_vendor_out")
    compliant = dict(RESULT, status="compliant", deficiencies=[])
    assert mapping.apply(compliance_record(RESULT, block_payments=True)).values == {
        "Blocked": "Payment"
    }
    assert mapping.apply(compliance_record(compliant, block_payments=True)).values == {
        "Blocked": "_blank_"
    }
    assert mapping.apply(compliance_record(RESULT)).values == {}


# --- dispatch webhook ---------------------------------------------------------------------------

WORK_ORDER_EVENT = {
    "EventType": "WorkOrderCreated",
    "Id": 284019342,
    "Number": "WO-284019342",
    "ProviderId": 2000091234,
    "ProviderName": "Acme Plumbing Inc.",
    "LocationId": 2006012,
    "Trade": "PLUMBING",
    "Category": "MAINTENANCE",
    "Priority": "P2 - 48 Hours",
    "Status": {"Primary": "OPEN", "Extended": "DISPATCH CONFIRMED"},
    "Nte": 750.0,
    "ScheduledDate": "2026-03-15T09:00:00-05:00",
}


def test_dispatch_work_order_in():
    mapping = compiled("dispatch_work_order_in")
    outcome = mapping.apply(WORK_ORDER_EVENT)
    assert outcome.ok, outcome.errors
    assert outcome.values == {
        "external_id": "284019342",
        "vendor_external_id": "2000091234",
        "work_type": "plumbing",
        "region": "2006012",
        "scheduled_start": dt.date(2026, 3, 15),
        "scheduled_end": dt.date(2026, 3, 15),
        "amount": 75_000,
        "status": "open",
        "event_type": "WorkOrderCreated",
    }
    values = outcome.values
    gate = schemas.gate_request_schema.load(
        jsonable(
            {
                "work_order": {"system": "dispatch", "external_id": values["external_id"]},
                "vendor": {"system": "dispatch", "external_id": values["vendor_external_id"]},
                **{
                    k: values[k]
                    for k in ("work_type", "region", "scheduled_start", "scheduled_end", "amount")
                },
            }
        )
    )
    assert gate["amount"] == 75_000


def test_dispatch_work_order_in_other_shapes():
    mapping = compiled("dispatch_work_order_in")
    event = dict(
        WORK_ORDER_EVENT,
        EventType="WorkOrderTradeChanged",
        Trade="Signage",
        Nte="1,250.50",
        ScheduledDate="03/16/2026",
        Status={"Primary": "IN PROGRESS"},
    )
    outcome = mapping.apply(event)
    assert outcome.ok, outcome.errors
    assert outcome.values["work_type"] == "general"
    assert outcome.values["amount"] == 125_050
    assert outcome.values["scheduled_start"] == dt.date(2026, 3, 16)
    broken = dict(WORK_ORDER_EVENT, ScheduledDate="02/30/2026", Nte="$1,OOO", Status="OPEN")
    outcome = mapping.apply(broken)
    assert {e["rule"] for e in outcome.errors} == {
        "scheduled_start",
        "scheduled_end",
        "amount",
        "status",
    }
    assert "Status is str, not an object" in [e["message"] for e in outcome.errors]


# --- dispatch providers -------------------------------------------------------------------------

#: A provider as the dispatch system serves it (GET /v3/providers, the sandbox's shape).
PROVIDER = {
    "Id": "P-1042",
    "Name": " Keystone Plumbing Services L.L.C. ",
    "Email": "Dispatch@KeystoneServices1042.example.com",
    "Trades": ["PLUMBING", "GENERAL MAINTENANCE", "Backflow Testing"],
    "Region": "US-East",
    "Locations": [2006012, 2006031],
    "Status": "Active",
    "UpdatedAt": "2026-11-27T16:35:00.000Z",
    "DoNotDispatch": False,
    "ComplianceNote": None,
    "ComplianceScore": None,
}


def test_dispatch_provider_in():
    mapping = compiled("dispatch_provider_in")
    outcome = mapping.apply(PROVIDER)
    assert outcome.ok, outcome.errors
    assert outcome.values == {
        "external_id": "P-1042",
        "name": "Keystone Plumbing Services L.L.C.",
        "email": "dispatch@keystoneservices1042.example.com",
        "work_types": ["plumbing", "general", "backflow_testing"],
        "regions": ["us-east"],
        "active": True,
    }
    as_vendor_body(outcome.values, "dispatch")
    # Inactive deactivates; without a Region the location ids are the regions.
    inactive = dict(PROVIDER, Status="Inactive", Region=None, Trades=["HVAC"])
    outcome = mapping.apply(inactive)
    assert outcome.ok, outcome.errors
    assert outcome.values["active"] is False
    assert outcome.values["regions"] == ["2006012", "2006031"]
    assert outcome.values["work_types"] == ["hvac"]
    bare = {"Id": 1043, "Name": "Bare Provider Inc.", "Trades": [], "Locations": []}
    assert mapping.apply(bare).values == {
        "external_id": "1043",
        "name": "Bare Provider Inc.",
        "work_types": [],
        "regions": [],
        "active": True,
    }


def test_dispatch_provider_in_bad_records():
    mapping = compiled("dispatch_provider_in")
    broken = dict(PROVIDER, Id=None, Name="  ", Status="Suspended", Trades=[{"Code": "HVAC"}])
    outcome = mapping.apply(broken)
    assert {e["rule"] for e in outcome.errors} == {"external_id", "name", "work_types", "active"}
    assert any("'Suspended' is not in the lookup table" in e["message"] for e in outcome.errors)


def test_dispatch_provider_in_maps_every_sandbox_provider():
    from sandbox.dispatch import TRADES, DispatchSandbox

    known = {"general maintenance": "general"}
    for provider in DispatchSandbox().seed_providers(40, seed=7):
        outcome = compiled("dispatch_provider_in").apply(provider)
        assert outcome.ok, (provider, outcome.errors)
        values = outcome.values
        assert values["external_id"] == provider["Id"]
        assert values["regions"] == [provider["Region"]]
        assert values["work_types"] == [
            known.get(t.lower(), t.lower().replace(" ", "_")) for t in provider["Trades"]
        ]
        assert set(provider["Trades"]) <= set(TRADES)
        assert values["active"] is (provider["Status"] == "Active")
        as_vendor_body(values, "dispatch")


def test_dispatch_provider_out():
    mapping = compiled("dispatch_provider_out")
    outcome = mapping.apply(compliance_record(RESULT))
    assert outcome.ok, outcome.errors
    assert outcome.values == {
        "DoNotDispatch": True,
        "ComplianceScore": 12,
        "ComplianceNote": "Automobile liability expired on 2026-02-28.\n"
        "General liability each occurrence is 500,000; 1,000,000 required.",
    }
    for status in ("compliant", "expiring"):
        clean = dict(RESULT, status=status, score=88, deficiencies=[])
        assert mapping.apply(compliance_record(clean)).values == {
            "DoNotDispatch": False,
            "ComplianceScore": 88,
            "ComplianceNote": None,
        }
    wordy = dict(RESULT, deficiencies=[{"code": "expired", "message": "x" * 5000}])
    assert len(mapping.apply(compliance_record(wordy)).values["ComplianceNote"]) == 4000


def test_dispatch_provider_out_is_accepted_by_the_sandbox_patch():
    from sandbox.dispatch import DispatchSandbox

    peer = DispatchSandbox()
    provider_id = peer.seed_providers(1)[0]["Id"]
    client = peer.app.test_client()
    headers = {"Authorization": f"Bearer {peer.issue_token()}"}
    mapping = compiled("dispatch_provider_out")
    wordy = dict(RESULT, deficiencies=[{"code": "expired", "message": "x" * 5000}])
    clean = dict(RESULT, status="compliant", score=91, deficiencies=[])
    for result in (RESULT, wordy, clean):
        fields = jsonable(mapping.apply(compliance_record(result)).values)
        answer = client.patch(f"/v3/providers/{provider_id}", json=fields, headers=headers)
        assert answer.status_code == 200, answer.get_json()
        assert {k: peer.provider(provider_id)[k] for k in fields} == fields
    assert peer.provider(provider_id)["DoNotDispatch"] is False


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_vendor_in():
    mapping = compiled("csv_vendor_in")
    row = {
        "external_id": "V-001",
        "name": " Bolt Roofing ",
        "email": "",
        "phone": "555-0199",
        "tax_id": "",
        "work_types": "Roofing; Gutters",
        "regions": "TX",
        "risk_tier": "Medium",
        "active": "",
    }
    outcome = mapping.apply(row)
    assert outcome.ok, outcome.errors
    assert outcome.values == {
        "external_id": "V-001",
        "name": "Bolt Roofing",
        "phone": "555-0199",
        "work_types": ["roofing", "gutters"],
        "regions": ["tx"],
        "risk_tier": "medium",
        "active": True,
    }
    as_vendor_body(outcome.values, "csv")
    outcome = mapping.apply(dict(row, name="", risk_tier="severe", active="N"))
    assert [e["rule"] for e in outcome.errors] == ["name", "risk_tier"]


CERTIFICATE_ROW = {
    "vendor_external_id": "V-001",
    "insured_name": "Bolt Roofing LLC",
    "holder_name": "Acme Facilities, Inc.",
    "holder_address": "1 Main St, Springfield IL",
    "producer_name": "Midwest Insurance Agency",
    "producer_email": "Certs@MidwestIns.com",
    "producer_phone": "",
    "description": "Roofing repairs at all Acme locations.",
    "gl_policy_number": "CGL-4471-26",
    "gl_insurer": "Northwind Mutual Casualty Company",
    "gl_naic": "31874",
    "gl_effective": "01/01/2026",
    "gl_expiration": "01/01/2027",
    "gl_each_occurrence": "$1,000,000",
    "gl_damage_to_rented_premises": "100,000",
    "gl_medical_expense": "5,000",
    "gl_personal_advertising_injury": "1M",
    "gl_general_aggregate": "$2,000,000",
    "gl_products_aggregate": "2M",
    "gl_additional_insured": "Y",
    "gl_waiver": "X",
    "gl_primary_noncontributory": "N",
    "gl_claims_made": "",
    "auto_policy_number": "",
    "auto_insurer": "",
    "umbrella_policy_number": "UMB-88",
    "umbrella_type": "Excess",
    "umbrella_insurer": "Bellhaven Indemnity Insurance Company",
    "umbrella_naic": "27316",
    "umbrella_effective": "2026-01-01",
    "umbrella_expiration": "2027-01-01",
    "umbrella_each_occurrence": "5M",
    "umbrella_aggregate": "5M",
    "wc_policy_number": "WC-1200",
    "wc_insurer": "Copper Ridge Assurance Company",
    "wc_naic": "40219",
    "wc_effective": "03/01/2026",
    "wc_expiration": "03/01/2027",
    "wc_statutory": "Y",
    "wc_el_each_accident": "500,000",
    "wc_el_disease_each_employee": "500,000",
    "wc_el_disease_policy_limit": "500,000",
    "wc_waiver": "Y",
}


def test_csv_certificate_in_gives_a_certificate_the_api_accepts():
    outcome = compiled("csv_certificate_in").apply(CERTIFICATE_ROW)
    assert outcome.ok, outcome.errors
    values = outcome.values
    assert values["vendor_external_id"] == "V-001"
    assert [p["line"] for p in values["policies"]] == [
        "general_liability",
        "excess_liability",
        "workers_compensation",
    ]
    gl, excess, wc = values["policies"]
    assert gl["effective_date"] == dt.date(2026, 1, 1)
    assert gl["limits"] == {
        "each_occurrence": 1_000_000,
        "damage_to_rented_premises": 100_000,
        "medical_expense": 5_000,
        "personal_advertising_injury": 1_000_000,
        "general_aggregate": 2_000_000,
        "products_completed_operations_aggregate": 2_000_000,
    }
    assert (gl["additional_insured"], gl["waiver_of_subrogation"], gl["claims_made"]) == (
        True,
        True,
        False,
    )
    assert excess["insurer"] == {"name": "Bellhaven Indemnity Insurance Company", "naic": "27316"}
    assert wc["limits"]["statutory"] is True
    body = {k: v for k, v in values.items() if k != "vendor_external_id"}
    loaded = schemas.certificate_schema.load(jsonable(body))
    assert loaded["source"] == "sync"
    assert len(loaded["policies"]) == 3


def test_csv_certificate_in_bad_rows():
    mapping = compiled("csv_certificate_in")
    row = dict(
        CERTIFICATE_ROW,
        gl_expiration="31/02/2026",
        gl_each_occurrence="$1,OOO,OOO",
        wc_insurer=" ",
    )
    outcome = mapping.apply(row)
    assert [(e["rule"], e["source"]) for e in outcome.errors] == [
        ("policies[0].expiration_date", "gl_expiration"),
        ("policies[0].limits.each_occurrence", "gl_each_occurrence"),
        ("policies[2].insurer.name", "wc_insurer"),
    ]
    no_policies = {k: ("" if k.endswith("policy_number") else v) for k, v in row.items()}
    assert mapping.apply(no_policies).errors == [
        {"rule": "policies", "source": None, "message": "required, but there is no item"}
    ]


# --- the package itself -------------------------------------------------------------------------


def test_mappings_imports_nothing_of_ours():
    allowed = set(sys.stdlib_module_names) | {"marshmallow", "yaml", "mappings", "__future__"}
    root = Path(resources.files("mappings"))
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import"
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_docs_describe_every_transform_default_and_canonical_field():
    docs = (Path(__file__).parents[1] / "docs" / "mappings.md").read_text("utf-8")
    for name in [*TRANSFORMS, *DEFAULTS]:
        assert f"`{name}" in docs, name
    for catalog in c.OBJECTS.values():
        for field, spec in catalog.items():
            assert field.split(".")[-1] in docs, field
            for item in spec.items or ():
                assert item.split(".")[-1] in docs, item


def test_copied_constants_match_the_core():
    assert c.LINES == model.LINES
    assert set(c.LIMIT_KEY_NAMES) == {k for keys in model.LIMIT_KEYS.values() for k in keys}
    assert c.STATUSES == model.STATUSES
    assert c.RISK_TIERS == schemas.RISK_TIERS
    assert c.CERTIFICATE_SOURCES == schemas.CERTIFICATE_SOURCES


def test_canonical_catalog_matches_the_api_bodies():
    vendor_body = set(schemas.VendorCreateSchema().fields) - {"external_refs"}
    assert vendor_body <= set(c.VENDOR)
    policy = schemas.PolicySchema().fields
    item_roots = {path.split(".")[0] for path in c.POLICY}
    assert item_roots == set(policy)
    certificate_roots = {p.split(".")[0] for p in c.CERTIFICATE} - {"vendor_external_id"}
    assert certificate_roots == set(schemas.CertificateSchema().fields)


def test_compliance_record():
    record = compliance_record(RESULT, block_payments=True)
    assert record["expires_on"] == dt.date(2026, 3, 31)
    assert record["compliant"] is False
    assert record["payment_block"] is True
    assert record["deficiency_summary"].startswith("Automobile liability expired")
    assert compliance_record(RESULT)["payment_block"] is None
    original = copy.deepcopy(RESULT)
    compliance_record(RESULT)
    assert original == RESULT
