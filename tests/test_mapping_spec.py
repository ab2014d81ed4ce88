"""Reading and validating mapping specs: every problem is reported with its rule and reason."""

from __future__ import annotations

import json

import pytest

from mappings import (
    DIRECTIONS,
    OBJECTS,
    MappingSpecError,
    compile_mapping,
    load_spec_text,
    validate_spec,
)


def errors_of(spec, object="vendor", direction="in") -> dict:
    with pytest.raises(MappingSpecError) as caught:
        validate_spec(spec, object=object, direction=direction)
    json.dumps(caught.value.errors)  # the API returns them as JSON
    return caught.value.errors


def rules(*fields) -> dict:
    return {"fields": list(fields)}


# --- text ---------------------------------------------------------------------------------------

YAML = """
# comment
fields:
  - target: name
    source: Name
    transforms: [strip]
  - target: active
    source: Active__c
    transforms:
      - name: parse_bool
        true: [yes, Y, on]
        false: [no, N, NO, off]
    default: true
"""


def test_yaml_reads_as_its_author_means():
    spec = load_spec_text(YAML)
    bool_rule = spec["fields"][1]["transforms"][0]
    assert bool_rule["true"] == ["yes", "Y", "on"]  # not YAML 1.1 booleans
    assert bool_rule["false"] == ["no", "N", "NO", "off"]
    assert spec["fields"][1]["default"] is True


def test_yaml_keeps_dates_codes_and_numeric_keys_as_text():
    spec = load_spec_text(
        "fields:\n- {target: x, constant: 2026-12-31}\n"
        "- {target: y, source: z, transforms: [{name: lookup, table: {1: a, 01234: b, 1:30: c}}]}"
    )
    assert spec["fields"][0]["constant"] == "2026-12-31"
    assert spec["fields"][1]["transforms"][0]["table"] == {"1": "a", "01234": "b", "1:30": "c"}
    json.dumps(spec, sort_keys=True)  # storable


def test_json_text():
    spec = load_spec_text('{"fields": [{"target": "name", "source": "Name"}]}')
    assert spec == {"fields": [{"target": "name", "source": "Name"}]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fields: [", "Not valid YAML"),
        ("a: 1\na: 2", "duplicate key 'a'"),
        ("base: &b {target: x}\nfields: [*b]", "aliases"),
        ('{"fields": [}', "Not valid JSON"),
        ('{"x": NaN}', "NaN is not allowed"),
        ("- just\n- a list", "must be a mapping"),
        ("", "must be a mapping"),
    ],
)
def test_unreadable_text(text, message):
    with pytest.raises(MappingSpecError) as caught:
        load_spec_text(text)
    assert list(caught.value.errors) == ["_schema"]
    assert message in caught.value.errors["_schema"][0]


def test_yaml_errors_say_where():
    with pytest.raises(MappingSpecError) as caught:
        load_spec_text("fields:\n  - target: x\n   source: y\n")
    assert "line 3" in caught.value.errors["_schema"][0]


# --- the four kinds of error the issue names ------------------------------------------------------


def test_unknown_canonical_field():
    errors = errors_of(rules({"target": "nme", "source": "Name"}))
    assert errors == {
        "fields": {0: {"target": ["unknown vendor field 'nme' (did you mean 'name'?)"]}}
    }


def test_unknown_transform():
    errors = errors_of(
        rules(
            {"target": "name", "source": "Name"},
            {"target": "email", "source": "Email"},
            {"target": "phone", "source": "Phone", "transforms": ["foo"]},
        )
    )
    assert errors == {"fields": {2: {"transforms": {0: {"name": ["unknown transform 'foo'"]}}}}}


def test_bad_parameters():
    errors = errors_of(
        rules(
            {"target": "name", "source": "N", "transforms": [{"name": "truncate"}]},
            {"target": "email", "source": "E", "transforms": [{"name": "split", "sepp": ";"}]},
            {
                "target": "tax_id",
                "source": "T",
                "transforms": [{"name": "regex_extract", "pattern": "("}],
            },
            {
                "target": "regions",
                "source": "R",
                "transforms": [{"name": "parse_date", "formats": ["%m/%d"]}],
            },
        )
    )["fields"]
    assert errors[0] == {"transforms": {0: {"length": ["Missing data for required field."]}}}
    assert errors[1] == {"transforms": {0: {"sepp": ["Unknown field."]}}}
    assert "regular expression" in errors[2]["transforms"][0]["pattern"][0]
    assert "whole date" in errors[3]["transforms"][0]["formats"][0][0]


def test_type_that_cannot_reach_the_target():
    errors = errors_of(
        rules({"target": "amount", "source": "Nte", "transforms": ["parse_date"]}),
        object="work_order",
    )
    assert errors == {
        "fields": {
            0: {
                "target": [
                    "gets a date from parse_date, but work_order field 'amount' takes an amount "
                    "in cents"
                ]
            }
        }
    }
    # Whole units never go where cents are expected (and the other way round).
    errors = errors_of(
        rules({"target": "amount", "source": "Nte", "transforms": ["parse_money"]}),
        object="work_order",
    )
    assert "takes an amount in cents" in errors["fields"][0]["target"][0]
    # Outbound: a date transform fed the integer score.
    errors = errors_of(
        rules({"target": "COI_Score__c", "source": "score", "transforms": ["format_date"]}),
        object="compliance",
        direction="out",
    )
    assert errors["fields"][0]["transforms"][0]["name"] == [
        "format_date takes a date or a date-time or text, not an integer (given by score)"
    ]


def test_a_list_needs_a_transform_to_become_text():
    errors = errors_of(rules({"target": "name", "sources": ["First", "Last"]}))
    assert "gets a list" in errors["fields"][0]["target"][0]
    validate_spec(
        rules({"target": "name", "sources": ["First", "Last"], "transforms": ["concat"]}),
        object="vendor",
        direction="in",
    )


def test_transforms_must_feed_one_another():
    errors = errors_of(
        rules({"target": "name", "source": "N", "transforms": ["parse_bool", "strip"]})
    )
    assert errors["fields"][0]["transforms"][1]["name"] == [
        "strip takes text, not true/false (given by parse_bool)"
    ]


# --- constants, defaults, choices ---------------------------------------------------------------


def test_constants_and_defaults_must_fit_the_target():
    errors = errors_of(
        rules(
            {"target": "active", "constant": "yes"},
            {"target": "risk_tier", "constant": "gold"},
            {"target": "name", "source": "N", "default": 5},
            {"target": "risk_tier", "source": "T", "default": "extreme"},
        )
    )["fields"]
    assert errors[0] == {"constant": ["'yes' is not true/false; active takes true/false"]}
    assert errors[1] == {"constant": ["'gold' is not a risk_tier (low, medium, high)"]}
    assert errors[2] == {"default": ["5 is not text; name takes text"]}
    assert errors[3] == {"default": ["Must be one of low, medium, high."]}


def test_lookup_values_must_be_choices_of_the_target():
    errors = errors_of(
        rules(
            {
                "target": "risk_tier",
                "source": "Tier",
                "transforms": [{"name": "lookup", "table": {"A": "low", "B": "gold"}}],
            }
        )
    )
    assert errors["fields"][0]["transforms"][0]["name"] == [
        "lookup can give 'gold', which is not a risk_tier (low, medium, high)"
    ]


def test_outbound_lookup_keys_must_cover_the_source_choices():
    errors = errors_of(
        rules(
            {
                "target": "COI_Status__c",
                "source": "status",
                "transforms": [
                    {"name": "lookup", "table": {"compliant": "OK", "noncompliant": "No"}}
                ],
            }
        ),
        object="compliance",
        direction="out",
    )
    assert errors["fields"][0]["transforms"][0]["table"] == [
        "'noncompliant' is never a value of status",
        "no entry for 'expiring' (a value of status); add it or a default",
    ]


def test_conditions_are_checked():
    errors = errors_of(
        rules(
            {"target": "A", "source": "score", "when": {"source": "status", "equals": "ok"}},
            {"target": "B", "source": "score", "when": {"source": "nope", "present": True}},
            {"target": "C", "source": "score", "when": {"source": "status"}},
            {"target": "D", "source": "score", "when": [{"source": "status", "matches": "("}]},
        ),
        object="compliance",
        direction="out",
    )["fields"]
    assert "never a value of status" in errors[0]["when"][0]["equals"][0]
    assert "unknown compliance field 'nope'" in errors[1]["when"][0]["source"][0]
    assert "exactly one of" in errors[2]["when"]["_schema"][0]
    assert "regular expression" in errors[3]["when"][0]["matches"][0]


# --- shape --------------------------------------------------------------------------------------


def test_shape_errors():
    errors = errors_of(
        rules(
            {"target": "name"},
            {"target": "name", "source": "a..b"},
            {"target": "name", "source": "N", "constant": "x"},
            "name <- Name",
            {"target": "name", "source": "N", "required": "sometimes", "colour": "red"},
        )
    )["fields"]
    assert errors[0] == {"source": ["Give exactly one of source, sources or constant."]}
    assert errors[1] == {"source": ["Empty key at position 3."]}
    assert errors[2] == {"source": ["Give exactly one of source, sources or constant."]}
    assert errors[3] == {"_schema": ["A rule must be an object."]}
    assert errors[4] == {"required": ["Not a valid boolean."], "colour": ["Unknown field."]}


def test_top_level_errors():
    assert errors_of({"fields": []}) == {"fields": ["Length must be between 1 and 500."]}
    assert errors_of({}) == {"fields": ["Missing data for required field."]}
    assert errors_of({"fields": [{"target": "name", "source": "N"}], "x": 1}) == {
        "x": ["Unknown field."]
    }
    assert errors_of({"object": "work_order", "fields": [{"target": "name", "source": "N"}]}) == {
        "object": ["The spec is for 'work_order', not 'vendor'."]
    }
    assert (
        "cannot be stored"
        in errors_of({"fields": [{"target": "name", "constant": {1}}]})["_schema"][0]
    )
    with pytest.raises(MappingSpecError) as caught:
        validate_spec({"fields": []}, object="invoice", direction="in")
    assert "object" in caught.value.errors


def test_list_rules():
    errors = errors_of(
        rules(
            {"target": "policies", "source": "x"},
            {"target": "insured.name", "source": "x", "each": [{"target": "a", "source": "b"}]},
            {
                "target": "policies",
                "source": "Policies__r.records",
                "each": [
                    {"target": "line", "source": "L"},
                    {"target": "limits.foo", "source": "F"},
                ],
            },
            {"target": "policies", "items": [{"fields": [{"target": "colour", "constant": "x"}]}]},
            {"target": "policies", "source": "x", "each": [], "transforms": ["strip"]},
        ),
        object="certificate",
    )["fields"]
    assert "give its `each` or `items` rules" in errors[0]["target"][0]
    assert "not a list of records" in errors[1]["target"][0]
    assert errors[2] == {
        "each": {
            1: {
                "target": [
                    "unknown certificate field 'limits.foo' (did you mean 'limits.statutory'?)"
                ]
            }
        }
    }
    assert "unknown certificate field 'colour'" in errors[3]["items"][0]["fields"][0]["target"][0]
    assert errors[4]["each"] == ["Length must be between 1 and 500."]


def test_outbound_targets_must_not_overlap():
    errors = errors_of(
        rules(
            {"target": "Status", "source": "status"}, {"target": "Status.Code", "source": "score"}
        ),
        object="compliance",
        direction="out",
    )
    assert errors == {"fields": {1: {"target": ["overlaps the target of rule 0"]}}}


def test_all_rules_are_reported_at_once():
    errors = errors_of(
        rules(
            {"target": "nme", "source": "Name"},
            {"target": "email", "source": "E", "transforms": ["lowr"]},
            {"target": "active", "source": "A", "transforms": ["parse_date"]},
        )
    )
    assert sorted(errors["fields"]) == [0, 1, 2]
    assert errors["fields"][1]["transforms"][0]["name"] == [
        "unknown transform 'lowr' (did you mean 'lower'?)"
    ]


# --- normalisation ------------------------------------------------------------------------------


def test_normalised_spec_is_json_and_compiles_again():
    spec = load_spec_text(YAML)
    checked = validate_spec(spec, object="vendor", direction="in")
    assert checked["fields"][0]["transforms"] == [{"name": "strip"}]
    stored = json.loads(json.dumps(checked, sort_keys=True))
    assert validate_spec(stored, object="vendor", direction="in") == stored
    mapping = compile_mapping(stored, object="vendor", direction="in", version=3)
    assert mapping.version == 3
    assert mapping.apply({"Name": " A ", "Active__c": "off"}).values == {
        "name": "A",
        "active": False,
    }


def test_validate_does_not_change_its_argument():
    spec = {"fields": [{"target": "name", "source": "N", "transforms": ["strip"]}]}
    before = json.dumps(spec)
    validate_spec(spec, object="vendor", direction="in")
    assert json.dumps(spec) == before


def test_objects_and_directions():
    assert {"vendor", "certificate", "work_order", "compliance"} <= set(OBJECTS)
    assert DIRECTIONS == ("in", "out")
