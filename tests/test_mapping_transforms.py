"""Each transform of the mapping engine on its own: good values, bad values, empty values."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from marshmallow import ValidationError

from mappings import TRANSFORMS, TransformError
from mappings.canonical import ANY, BOOL, CENTS, DATE, INT, MONEY, STR, list_of
from mappings.transforms import TypeMismatch


def fn(name: str, **params):
    """The transform `name` with its parameters validated and bound, as the engine calls it."""
    transform = TRANSFORMS[name]
    return transform.bind(transform.load_params(params))


def bad(name: str, value, match: str, **params) -> None:
    with pytest.raises(TransformError, match=match):
        fn(name, **params)(value)


def test_every_transform_is_documented_and_takes_empty_text_quietly():
    for name, transform in TRANSFORMS.items():
        assert transform.doc, name
        if transform.takes(STR) and name not in ("split",):
            params = {"table": {"a": "b"}} if name == "lookup" else {}
            params |= {"pattern": "x"} if name.startswith("regex") else {}
            params |= {"length": 3} if name == "truncate" else {}
            assert fn(name, **params)("") in ("", None), name


# --- text ---------------------------------------------------------------------------------------


def test_case_and_whitespace():
    assert fn("strip")("  Acme  Plumbing \n") == "Acme  Plumbing"
    assert fn("lower")("Ops@ACME.com") == "ops@acme.com"
    assert fn("upper")("ca") == "CA"
    assert fn("title")("acme plumbing") == "Acme Plumbing"
    assert fn("truncate", length=5)("Plumbing") == "Plumb"
    assert fn("truncate", length=50)("Plumbing") == "Plumbing"


def test_truncate_needs_a_positive_length():
    with pytest.raises(ValidationError):
        TRANSFORMS["truncate"].load_params({})
    with pytest.raises(ValidationError):
        TRANSFORMS["truncate"].load_params({"length": 0})


def test_to_str():
    to_str = fn("to_str")
    assert to_str(284019342) == "284019342"
    assert to_str(2006012.0) == "2006012"
    assert to_str(True) == "true"
    assert to_str(dt.date(2026, 12, 31)) == "2026-12-31"
    assert to_str("a") == "a"


def test_regex_extract():
    assert fn("regex_extract", pattern=r"EIN:?\s*(\d{2}-\d{7})")("EIN: 12-3456789") == (
        "12-3456789"
    )
    assert fn("regex_extract", pattern=r"\d+")("WO-4471") == "4471"
    assert fn("regex_extract", pattern=r"(?P<n>\d+)", group="n")("WO-4471") == "4471"
    assert fn("regex_extract", pattern=r"\d+")("none here") is None
    assert fn("regex_extract", pattern=r"\d+")("") is None


def test_regex_params_are_checked():
    with pytest.raises(ValidationError, match="regular expression"):
        TRANSFORMS["regex_extract"].load_params({"pattern": "("})
    with pytest.raises(ValidationError, match="group"):
        TRANSFORMS["regex_extract"].load_params({"pattern": "(a)", "group": 2})
    with pytest.raises(ValidationError, match="group named"):
        TRANSFORMS["regex_extract"].load_params({"pattern": "(a)", "group": "x"})


def test_regex_replace():
    assert fn("regex_replace", pattern=r"\D")("(555) 010-2233") == "5550102233"
    assert fn("regex_replace", pattern=r"(\w+), (\w+)", replace=r"\2 \1")("Doe, Jane") == (
        "Jane Doe"
    )


# --- lists --------------------------------------------------------------------------------------


def test_split_and_join():
    assert fn("split", sep=";")("Plumbing; HVAC;;Electrical ") == ["Plumbing", "HVAC", "Electrical"]
    assert fn("split")("a,b") == ["a", "b"]
    assert fn("split", sep=";", strip=False)(" a; b") == [" a", " b"]
    assert fn("split")("") is None
    assert fn("split")("   ") is None
    assert fn("join")(["a", "b"]) == "a, b"
    assert (
        fn("join", sep="\n", key="message")(
            [{"code": "expired", "message": "GL expired"}, {"code": "x", "message": None}]
        )
        == "GL expired"
    )
    assert fn("join")([]) == ""
    bad("join", ["a", {"x": 1}], "not text")
    bad("join", ["not a record"], "not a record", key="message")


def test_concat_and_coalesce():
    assert fn("concat")(["Acme", "", None, "LLC"]) == "Acme LLC"
    assert fn("concat", sep="-")(["CA", 94107]) == "CA-94107"
    assert fn("coalesce")([None, "", "ops@acme.com", "x"]) == "ops@acme.com"
    assert fn("coalesce")([None, ""]) is None


def test_to_list():
    assert fn("to_list")("ca") == ["ca"]
    assert fn("to_list")(["ca"]) == ["ca"]


# --- numbers and money --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("$1,000,000", 1_000_000),
        ("1000000", 1_000_000),
        ("1,000,000.00", 1_000_000),
        ("1M", 1_000_000),
        ("1.5MM", 1_500_000),
        ("2m", 2_000_000),
        ("250K", 250_000),
        ("$ 2,000,000 USD", 2_000_000),
        ("USD 5,000", 5_000),
        ("-500", -500),
        (1_000_000, 1_000_000),
        (1000000.0, 1_000_000),
    ],
)
def test_parse_money_units(text, units):
    assert fn("parse_money")(text) == units


def test_parse_money_cents():
    cents = fn("parse_money", unit="cents")
    assert cents("$1,234.56") == 123_456
    assert cents(750.0) == 75_000
    assert cents(19.99) == 1999
    assert cents("500") == 50_000
    assert cents("1.5K") == 150_000


@pytest.mark.parametrize("text", ["$1,OOO", "1,5", "12,34,567", "one million", "$", "1M2", "--5"])
def test_parse_money_refuses_what_is_not_an_amount(text):
    bad("parse_money", text, "not an amount")


def test_parse_money_refuses_fractions_it_cannot_keep_and_booleans():
    bad("parse_money", "$999.99", "not a whole amount")
    bad("parse_money", "1.005", "fraction of a cent", unit="cents")
    bad("parse_money", True, "not an amount")
    bad("parse_money", float("nan"), "not an amount")


def test_parse_money_empty_is_no_value():
    assert fn("parse_money")("") is None
    assert fn("parse_money")("  ") is None


def test_format_money():
    assert fn("format_money")(1_000_000) == "1,000,000"
    assert fn("format_money", symbol="$")(2_500) == "$2,500"
    assert fn("format_money", unit="cents")(123_456) == "1,234.56"
    assert fn("format_money", unit="cents", thousands="")(5) == "0.05"
    assert fn("format_money", symbol="$")(-500) == "-$500"


def test_parse_int():
    parse = fn("parse_int")
    assert parse("42") == 42
    assert parse(" 1,200 ") == 1200
    assert parse("42.0") == 42
    assert parse(85.0) == 85
    assert parse(7) == 7
    assert parse("") is None
    for text in ("4.5", "abc", "1,2", "$5"):
        bad("parse_int", text, "not a whole number")
    bad("parse_int", 4.5, "not a whole number")
    bad("parse_int", True, "not a whole number")


# --- booleans -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["Y", "y", "yes", "YES", "X", "x", "/1", "true", "True", "1", "on", " Y "]
)
def test_parse_bool_true(text):
    assert fn("parse_bool")(text) is True


@pytest.mark.parametrize("text", ["N", "n", "no", "false", "0", "/Off", "off"])
def test_parse_bool_false(text):
    assert fn("parse_bool")(text) is False


def test_parse_bool_other_values():
    parse = fn("parse_bool")
    assert parse(True) is True
    assert parse(0) is False
    assert parse("") is None
    bad("parse_bool", "maybe", "not a yes/no value")
    bad("parse_bool", 2, "not a yes/no value")


def test_parse_bool_with_own_words():
    parse = fn("parse_bool", true=["Compliant"], false=["Lapsed", "Missing"])
    assert parse("compliant") is True
    assert parse("LAPSED") is False
    bad("parse_bool", "Y", "not a yes/no value", true=["Compliant"], false=["Lapsed"])
    with pytest.raises(ValidationError, match="Both true and false"):
        TRANSFORMS["parse_bool"].load_params({"true": ["y"], "false": ["Y"]})


def test_format_bool():
    assert fn("format_bool")(True) is True
    blocked = fn("format_bool", true="Payment", false="_blank_")
    assert blocked(True) == "Payment"
    assert blocked(False) == "_blank_"
    assert fn("format_bool", true="/1", false="/Off")(False) == "/Off"


# --- dates --------------------------------------------------------------------------------------


def test_parse_date_formats():
    us = fn("parse_date", formats=["%m/%d/%Y"])
    assert us("12/31/2026") == dt.date(2026, 12, 31)
    assert us("1/5/2026") == dt.date(2026, 1, 5)
    assert fn("parse_date")("2026-12-31") == dt.date(2026, 12, 31)
    assert fn("parse_date")("2026-03-15T09:00:00-05:00") == dt.date(2026, 3, 15)
    assert fn("parse_date")("2026-03-15T23:30:00Z") == dt.date(2026, 3, 15)
    assert fn("parse_date", formats=["%d.%m.%Y"])("31.12.2026") == dt.date(2026, 12, 31)
    assert fn("parse_date", formats=["%d-%b-%Y"])("31-Dec-2026") == dt.date(2026, 12, 31)
    assert fn("parse_date")(dt.datetime(2026, 1, 2, 3, 4)) == dt.date(2026, 1, 2)
    assert fn("parse_date")(dt.date(2026, 1, 2)) == dt.date(2026, 1, 2)


def test_parse_date_tries_formats_in_order():
    either = fn("parse_date", formats=["%m/%d/%Y", "iso"])
    assert either("12/31/2026") == either("2026-12-31") == dt.date(2026, 12, 31)
    day_first = fn("parse_date", formats=["%m/%d/%Y", "%d/%m/%Y"])
    assert day_first("31/12/2026") == dt.date(2026, 12, 31)


@pytest.mark.parametrize(
    ("text", "formats"),
    [("31/02/2026", ["%d/%m/%Y"]), ("02/31/2026", ["%m/%d/%Y"]), ("2026-02-30", ["iso"])],
)
def test_parse_date_refuses_days_that_do_not_exist(text, formats):
    bad("parse_date", text, "not a real date", formats=formats)


def test_parse_date_refuses_other_shapes_and_says_which_format():
    bad("parse_date", "12/31/2026", r"does not match the date format iso")
    bad("parse_date", "2026-12-31", re.escape("format %m/%d/%Y"), formats=["%m/%d/%Y"])
    bad("parse_date", "31-Foo-2026", "does not match", formats=["%d-%b-%Y"])
    bad("parse_date", "soon", "does not match")


def test_parse_date_empty_is_no_value():
    assert fn("parse_date")("") is None
    assert fn("parse_date", formats=["%m/%d/%Y"])("   ") is None


def test_date_formats_are_checked_when_saved():
    load = TRANSFORMS["parse_date"].load_params
    with pytest.raises(ValidationError, match="whole date"):
        load({"formats": ["%m/%d"]})
    with pytest.raises(ValidationError, match="usable"):
        load({"formats": ["%Q"]})
    with pytest.raises(ValidationError):
        load({"formats": []})
    with pytest.raises(ValidationError, match="date directive"):
        TRANSFORMS["format_date"].load_params({"format": "%Y-%Q"})


def test_parse_datetime():
    parse = fn("parse_datetime")
    assert parse("2026-03-15T09:00:00-05:00") == dt.datetime(2026, 3, 15, 14, tzinfo=dt.UTC)
    assert parse("2026-03-15T09:00:00") == dt.datetime(2026, 3, 15, 9, tzinfo=dt.UTC)
    assert parse("2026-03-15") == dt.datetime(2026, 3, 15, tzinfo=dt.UTC)
    assert parse("") is None
    bad("parse_datetime", "03/15/2026 9am", "does not match")


def test_format_date():
    assert fn("format_date")(dt.date(2026, 12, 31)) == "2026-12-31"
    assert fn("format_date", format="%m/%d/%Y")(dt.date(2026, 1, 5)) == "01/05/2026"
    assert fn("format_date")("2026-12-31") == "2026-12-31"
    assert fn("format_date")("") is None
    bad("format_date", "12/31/2026", "not an ISO date")


# --- lookup -------------------------------------------------------------------------------------


def test_lookup():
    trades = fn("lookup", table={"PLUMB": "plumbing", "HVAC": "hvac"}, default="general")
    assert trades("plumb") == "plumbing"
    assert trades(" HVAC ") == "hvac"
    assert trades("ROOF") == "general"
    assert trades("") is None
    strict = fn("lookup", table={"Low": "low"})
    bad("lookup", "Gold", "not in the lookup table", table={"Low": "low"})
    assert strict("LOW") == "low"
    exact = fn("lookup", table={"Low": "low"}, case_sensitive=True, keep_unknown=True)
    assert exact("LOW") == "LOW"
    assert exact("Low") == "low"


def test_lookup_of_numbers_booleans_and_nulls():
    assert fn("lookup", table={"1": "gold", "2": "silver"})(1) == "gold"
    assert fn("lookup", table={"true": "Yes", "false": "No"})(False) == "No"
    assert fn("lookup", table={"N/A": None, "x": "y"})("n/a") is None
    assert fn("lookup", table={"a": "b"}, default=None)("zzz") is None
    bad("lookup", {"a": 1}, "cannot be looked up", table={"a": "b"})


def test_lookup_table_must_hold_scalars():
    with pytest.raises(ValidationError):
        TRANSFORMS["lookup"].load_params({"table": {"a": {"b": 1}}})
    with pytest.raises(ValidationError):
        TRANSFORMS["lookup"].load_params({"table": {}})
    with pytest.raises(ValidationError):
        TRANSFORMS["lookup"].load_params({})


# --- typing -------------------------------------------------------------------------------------


def types(name: str, kind: str, **params) -> str:
    return TRANSFORMS[name].output_type(kind, TRANSFORMS[name].load_params(params))


def test_output_types():
    assert types("parse_date", ANY) == DATE
    assert types("parse_money", ANY) == MONEY
    assert types("parse_money", ANY, unit="cents") == CENTS
    assert types("parse_int", STR) == INT
    assert types("parse_bool", ANY) == BOOL
    assert types("split", ANY) == list_of(STR)
    assert types("lower", list_of(STR)) == list_of(STR)  # applied to each element
    assert types("lookup", list_of(STR), table={"a": "b"}) == list_of(STR)
    assert types("lookup", STR, table={"a": True}) == BOOL
    assert types("lookup", STR, table={"a": "x", "b": 1}) == ANY
    assert types("format_bool", BOOL, true="Payment", false="_blank_") == STR
    assert types("to_list", STR) == list_of(STR)
    assert types("coalesce", list_of(STR)) == STR


def test_type_mismatches():
    with pytest.raises(TypeMismatch, match="parse_date takes"):
        types("parse_date", INT)
    with pytest.raises(TypeMismatch, match="format_date takes"):
        types("format_date", BOOL)
    with pytest.raises(TypeMismatch, match="needs `key`"):
        types("join", list_of("dict"))
    with pytest.raises(TypeMismatch, match="takes a list"):
        types("concat", STR)
