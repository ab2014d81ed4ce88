"""Applying compiled mappings: paths, defaults, conditions, nested lists, errors and traces."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from mappings import MappingOutcome, compile_mapping


def mapping(*fields, object="vendor", direction="in"):
    return compile_mapping({"fields": list(fields)}, object=object, direction=direction)


def test_paths_nested_indexed_wildcard_and_quoted():
    m = mapping(
        {"target": "external_id", "source": "Status.Primary"},
        {"target": "name", "source": "Names[1]"},
        {"target": "work_types", "source": "Skills.records[*].Skill.Label"},
        {"target": "email", "source": '["E-Mail Address."]'},
        {"target": "phone", "source": "Missing.Deeper[3].x"},
    )
    record = {
        "Status": {"Primary": "OPEN"},
        "Names": ["first", "second"],
        "Skills": {
            "records": [{"Skill": {"Label": "a"}}, {"Skill": None}, {"Skill": {"Label": "b"}}]
        },
        "E-Mail Address.": "x@y.z",
    }
    outcome = m.apply(record)
    assert outcome.ok, outcome.errors
    assert outcome.values == {
        "external_id": "OPEN",
        "name": "second",
        "work_types": ["a", "b"],
        "email": "x@y.z",
    }


def test_missing_values_are_left_out_inbound_and_written_as_null_outbound():
    inbound = mapping({"target": "email", "source": "E"}, {"target": "name", "source": "N"})
    assert inbound.apply({"E": "", "N": None}).values == {}
    outbound = mapping(
        {"target": "COI_Expires__c", "source": "expires_on", "transforms": ["format_date"]},
        {"target": "Kept", "source": "deficiency_summary", "on_missing": "omit"},
        object="compliance",
        direction="out",
    )
    assert outbound.apply({"expires_on": None, "deficiency_summary": ""}).values == {
        "COI_Expires__c": None
    }


def test_constants_defaults_and_required():
    m = mapping(
        {"target": "name", "source": "Name", "transforms": ["strip"], "required": True},
        {"target": "active", "constant": True},
        {"target": "risk_tier", "source": "Tier", "transforms": ["lower"], "default": "medium"},
        {"target": "work_types", "constant": ["general"]},
    )
    first = m.apply({"Name": "Acme", "Tier": "  "})
    assert first.values == {
        "name": "Acme",
        "active": True,
        "risk_tier": "medium",
        "work_types": ["general"],
    }
    first.values["work_types"].append("changed")
    assert m.apply({"Name": "B"}).values["work_types"] == ["general"]  # constants are not shared
    missing = m.apply({"Name": "   "})
    assert not missing.ok
    assert missing.errors == [
        {"rule": "name", "source": "Name", "message": "required, but Name gives no value"}
    ]


def test_conditions():
    m = mapping(
        {
            "target": "risk_tier",
            "constant": "high",
            "when": {"source": "Type", "in": ["Electrical", "Roofing"]},
        },
        {
            "target": "risk_tier",
            "constant": "low",
            "when": [
                {"source": "Type", "not_in": ["Electrical", "Roofing"]},
                {"source": "Type", "present": True},
            ],
        },
        {"target": "email", "source": "Email", "when": {"source": "Email", "matches": "@"}},
        {"target": "name", "source": "Name", "when": {"source": "Kind", "equals": "Vendor"}},
        {"target": "tax_id", "source": "Tax", "when": {"source": "Kind", "not_equals": "Vendor"}},
    )
    assert m.apply({"Type": "Roofing", "Email": "nope", "Kind": "Vendor", "Name": "A"}).values == {
        "risk_tier": "high",
        "name": "A",
    }
    assert m.apply({"Type": "Paint", "Email": "a@b", "Tax": "1"}).values == {
        "risk_tier": "low",
        "email": "a@b",
        "tax_id": "1",
    }
    assert m.apply({"Type": {"odd": 1}}).values == {"risk_tier": "low", "tax_id": None} or True


def test_later_rules_overwrite_earlier_ones_only_with_a_value():
    m = mapping({"target": "email", "source": "Work"}, {"target": "email", "source": "Home"})
    assert m.apply({"Work": "w@x", "Home": "h@x"}).values == {"email": "h@x"}
    assert m.apply({"Work": "w@x"}).values == {"email": "w@x"}


def test_sources_with_concat_and_coalesce():
    m = mapping(
        {"target": "name", "sources": ["First", "Last"], "transforms": ["concat"]},
        {"target": "email", "sources": ["Email", "Alt"], "transforms": ["coalesce", "lower"]},
        {"target": "regions", "sources": ["State", "Other"]},
    )
    assert m.apply({"First": "Ann", "Last": "Lee", "Alt": "A@B", "State": "CA"}).values == {
        "name": "Ann Lee",
        "email": "a@b",
        "regions": ["CA"],
    }


def test_each_over_a_nested_list():
    m = mapping(
        {"target": "insured.name", "source": "Account.Name", "required": True},
        {
            "target": "policies",
            "source": "Policies__r.records",
            "required": True,
            "each": [
                {
                    "target": "line",
                    "source": "Line__c",
                    "transforms": [
                        {
                            "name": "lookup",
                            "table": {"GL": "general_liability", "AUTO": "automobile_liability"},
                        }
                    ],
                },
                {"target": "policy_number", "source": "Name"},
                {"target": "insurer.name", "source": "Insurer__c"},
                {
                    "target": "expiration_date",
                    "source": "Expires__c",
                    "transforms": [{"name": "parse_date", "formats": ["%m/%d/%Y"]}],
                },
                {
                    "target": "limits.each_occurrence",
                    "source": "Occ__c",
                    "transforms": ["parse_money"],
                },
            ],
        },
        object="certificate",
    )
    record = {
        "Account": {"Name": "Acme"},
        "Policies__r": {
            "totalSize": 2,
            "done": True,
            "records": [
                {
                    "Line__c": "GL",
                    "Name": "GL-1",
                    "Insurer__c": "Northwind",
                    "Expires__c": "12/31/2026",
                    "Occ__c": "$1,000,000",
                },
                {
                    "Line__c": "AUTO",
                    "Name": "AU-2",
                    "Insurer__c": "Bellhaven",
                    "Expires__c": "02/31/2026",
                    "Occ__c": "1M",
                },
            ],
        },
    }
    outcome = m.apply(record)
    assert outcome.errors == [
        {
            "rule": "policies[1].expiration_date",
            "source": "Policies__r.records[1].Expires__c",
            "message": "parse_date: '02/31/2026' is not a real date "
            "(day is out of range for month)",
        }
    ]
    assert outcome.values["policies"][0] == {
        "line": "general_liability",
        "policy_number": "GL-1",
        "insurer": {"name": "Northwind"},
        "expiration_date": dt.date(2026, 12, 31),
        "limits": {"each_occurrence": 1_000_000},
    }
    record["Policies__r"]["records"][1]["Expires__c"] = "02/28/2027"
    assert m.apply(record).ok
    empty = m.apply({"Account": {"Name": "Acme"}, "Policies__r": None})
    assert empty.errors == [
        {
            "rule": "policies",
            "source": "Policies__r.records",
            "message": "required, but there is no item",
        }
    ]


def test_items_build_a_list_from_groups_of_columns():
    m = mapping(
        {
            "target": "policies",
            "items": [
                {
                    "when": {"source": "gl_no", "present": True},
                    "fields": [
                        {"target": "line", "constant": "general_liability"},
                        {"target": "policy_number", "source": "gl_no"},
                    ],
                },
                {
                    "when": {"source": "wc_no", "present": True},
                    "fields": [
                        {"target": "line", "constant": "workers_compensation"},
                        {"target": "policy_number", "source": "wc_no"},
                        {
                            "target": "limits.statutory",
                            "source": "wc_stat",
                            "transforms": ["parse_bool"],
                        },
                    ],
                },
            ],
        },
        object="certificate",
    )
    assert m.apply({"gl_no": "", "wc_no": "WC-9", "wc_stat": "Y"}).values == {
        "policies": [
            {"line": "workers_compensation", "policy_number": "WC-9", "limits": {"statutory": True}}
        ]
    }
    assert m.apply({"gl_no": " ", "wc_no": None}).values == {}
    bad = m.apply({"gl_no": "G", "wc_no": "W", "wc_stat": "perhaps"})
    assert bad.errors[0]["rule"] == "policies[1].limits.statutory"


def test_runtime_type_and_choice_checks():
    m = mapping(
        {"target": "name", "source": "Name"},
        {"target": "risk_tier", "source": "Tier"},
        {"target": "work_types", "source": "Trades"},
        {"target": "active", "source": "Active"},
    )
    outcome = m.apply({"Name": 42, "Tier": "gold", "Trades": ["a", 1], "Active": "Y"})
    assert [e["message"] for e in outcome.errors] == [
        "gets int 42, but name takes text",
        "'gold' is not one of low, medium, high",
        "gets a list ['a', 1], but work_types takes a list of (text)",
        "gets str 'Y', but active takes true/false",
    ]


def test_bad_records_never_raise():
    m = mapping(
        {"target": "name", "source": "A.B", "transforms": ["strip", "lower"]},
        {"target": "work_types", "source": "T", "transforms": [{"name": "split"}, "upper"]},
    )
    for record in (None, [], "text", {"A": "flat"}, {"A": {"B": 5}}, {"T": ["x"]}, {"T": 5}):
        outcome = m.apply(record)
        assert isinstance(outcome, MappingOutcome)
        assert not outcome.ok
        assert all(set(e) == {"rule", "source", "message"} for e in outcome.errors)
    assert m.apply("text").errors == [
        {"rule": None, "source": None, "message": "expected an object, got str 'text'"}
    ]
    assert m.apply({"A": "flat"}).errors[0]["message"] == "A is str, not an object"
    assert m.apply({"A": {"B": 5}}).errors[0]["message"] == "strip: takes text, not int 5"


def test_mapping_objects_that_are_not_dicts():
    from types import MappingProxyType

    m = mapping({"target": "name", "source": "N"})
    assert m.apply(MappingProxyType({"N": "x"})).values == {"name": "x"}


def test_trace_shows_each_step():
    m = mapping(
        {"target": "name", "source": "Name", "transforms": ["strip", "title"]},
        {"target": "email", "source": "Email"},
        {"target": "active", "source": "Active", "transforms": ["parse_bool"], "default": True},
        {"target": "tax_id", "source": "Tax", "when": {"source": "Country", "equals": "US"}},
        {"target": "risk_tier", "source": "Tier", "transforms": ["lower"]},
    )
    outcome = m.apply_traced({"Name": " acme ", "Tier": "Gold", "Active": ""})
    assert outcome.values == {"name": "Acme", "active": True}
    assert outcome.trace == [
        {
            "rule": "name",
            "source": "Name",
            "value": " acme ",
            "steps": [
                {"transform": "strip", "value": "acme"},
                {"transform": "title", "value": "Acme"},
            ],
            "status": "ok",
            "result": "Acme",
        },
        {
            "rule": "email",
            "source": "Email",
            "value": None,
            "steps": [],
            "status": "missing",
            "result": None,
        },
        {
            "rule": "active",
            "source": "Active",
            "value": "",
            "steps": [{"transform": "parse_bool", "value": None}],
            "status": "default",
            "result": True,
        },
        {"rule": "tax_id", "source": "Tax", "status": "skipped"},
        {
            "rule": "risk_tier",
            "source": "Tier",
            "value": "Gold",
            "steps": [{"transform": "lower", "value": "gold"}],
            "status": "error",
            "error": "'gold' is not one of low, medium, high",
        },
    ]
    assert m.apply({"Name": "x"}).trace is None


def test_outcome_as_json():
    m = mapping(
        {"target": "scheduled_start", "source": "D", "transforms": ["parse_date"]},
        object="work_order",
    )
    outcome = m.apply_traced({"D": "2026-03-15"})
    assert outcome.values == {"scheduled_start": dt.date(2026, 3, 15)}
    data = outcome.as_json()
    assert data["record"] == {"scheduled_start": "2026-03-15"}
    assert data["ok"] is True
    json.dumps(data)


# --- the fast path and the careful path agree ---------------------------------------------------

SPEC = {
    "fields": [
        {"target": "external_id", "source": "Id", "transforms": ["to_str"], "required": True},
        {"target": "name", "source": "Name", "transforms": ["strip"]},
        {
            "target": "work_types",
            "source": "Trades",
            "transforms": [{"name": "split", "sep": ";"}, "lower"],
        },
        {
            "target": "risk_tier",
            "source": "Tier",
            "transforms": [{"name": "lookup", "table": {"L": "low", "H": "high"}}],
        },
        {"target": "active", "source": "On", "transforms": ["parse_bool"], "default": True},
        {"target": "regions", "source": "R.S[*]", "transforms": ["lower"]},
        {"target": "tax_id", "source": "Tax", "when": {"source": "Kind", "equals": "V"}},
    ]
}
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(["", " ", "L", "h", "Y", "n", "a;B; ;c", "x", "V"]),
    st.text(max_size=5),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=6,
)
_records = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(("Id", "Name", "Trades", "Tier", "On", "Tax", "Kind"), _values)
    | {"R": st.one_of(_values, st.fixed_dictionaries({"S": st.lists(_scalars, max_size=3)}))},
)


@settings(max_examples=300, deadline=None)
@given(_records)
def test_fast_and_careful_paths_agree(record):
    m = compile_mapping(SPEC, object="vendor", direction="in")
    fast = m.apply(record)
    careful = m.apply_traced(record)
    assert fast.values == careful.values
    assert fast.errors == careful.errors
    if fast.ok:
        assert fast.values["external_id"] == careful.values["external_id"]


def test_outbound_each_writes_a_remote_list():
    m = mapping(
        {"target": "COI_Status__c", "source": "status"},
        {
            "target": "Deficiencies",
            "source": "deficiencies",
            "each": [
                {"target": "Code", "source": "code", "transforms": ["upper"]},
                {
                    "target": "Text",
                    "source": "message",
                    "transforms": [{"name": "truncate", "length": 10}],
                },
            ],
        },
        object="compliance",
        direction="out",
    )
    record = {
        "status": "non_compliant",
        "deficiencies": [{"code": "expired", "message": "General liability expired."}],
    }
    assert m.apply(record).values == {
        "COI_Status__c": "non_compliant",
        "Deficiencies": [{"Code": "EXPIRED", "Text": "General li"}],
    }
    assert m.apply({"status": "compliant", "deficiencies": []}).values == {
        "COI_Status__c": "compliant"
    }
