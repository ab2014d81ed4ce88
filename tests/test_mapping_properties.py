"""Round trips: a canonical record written out with a mapping's outbound transforms and read back
with their inbound counterparts is the same record (for the invertible transforms)."""

from __future__ import annotations

import datetime as dt
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from mappings import compile_mapping

DATE_FORMATS = ["iso", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d", "%d %b %Y", "%B %d, %Y"]
BOOL_WORDS = [("Y", "N"), ("/1", "/Off"), ("true", "false"), ("Yes", "No"), ("X", "O")]
TIER_PICKLIST = {"low": "Tier 3 - Low", "medium": "Tier 2 - Medium", "high": "Tier 1 - High"}

_tag = (
    st.text(string.ascii_lowercase + string.digits + " -", min_size=1, max_size=12)
    .map(str.strip)
    .filter(bool)
)


@st.composite
def shapes(draw):
    """A pair of specs (canonical -> remote, remote -> canonical) with drawn parameters."""
    date_format = draw(st.sampled_from(DATE_FORMATS))
    yes, no = draw(st.sampled_from(BOOL_WORDS))
    sep = draw(st.sampled_from([";", ",", "|", " / "]))
    symbol = draw(st.sampled_from(["", "$"]))
    thousands = draw(st.sampled_from(["", ","]))
    out = [
        {
            "target": "Start",
            "source": "scheduled_start",
            "transforms": [{"name": "format_date", "format": date_format}],
        },
        {
            "target": "Nte",
            "source": "amount",
            "transforms": [
                {"name": "format_money", "unit": "cents", "symbol": symbol, "thousands": thousands}
            ],
        },
        {"target": "Trade", "source": "work_type", "transforms": ["upper"]},
        {"target": "Id", "source": "external_id", "transforms": ["parse_int"]},
    ]
    back = [
        {
            "target": "scheduled_start",
            "source": "Start",
            "transforms": [{"name": "parse_date", "formats": [date_format]}],
        },
        {
            "target": "amount",
            "source": "Nte",
            "transforms": [{"name": "parse_money", "unit": "cents"}],
        },
        {"target": "work_type", "source": "Trade", "transforms": ["lower"]},
        {"target": "external_id", "source": "Id", "transforms": ["to_str"]},
    ]
    vendor_out = [
        {
            "target": "Active",
            "source": "active",
            "transforms": [{"name": "format_bool", "true": yes, "false": no}],
        },
        {"target": "Trades", "source": "work_types", "transforms": [{"name": "join", "sep": sep}]},
        {
            "target": "Tier",
            "source": "risk_tier",
            "transforms": [{"name": "lookup", "table": TIER_PICKLIST}],
        },
    ]
    vendor_back = [
        {
            "target": "active",
            "source": "Active",
            "transforms": [{"name": "parse_bool", "true": [yes], "false": [no]}],
        },
        {
            "target": "work_types",
            "source": "Trades",
            "transforms": [{"name": "split", "sep": sep.strip() or sep}],
        },
        {
            "target": "risk_tier",
            "source": "Tier",
            "transforms": [{"name": "lookup", "table": {v: k for k, v in TIER_PICKLIST.items()}}],
        },
    ]
    return (
        compile_mapping({"fields": out}, object="work_order", direction="out"),
        compile_mapping({"fields": back}, object="work_order", direction="in"),
        compile_mapping({"fields": vendor_out}, object="vendor", direction="out"),
        compile_mapping({"fields": vendor_back}, object="vendor", direction="in"),
        sep,
    )


work_orders = st.fixed_dictionaries(
    {
        "scheduled_start": st.dates(dt.date(1900, 1, 1), dt.date(2200, 12, 31)),
        "amount": st.integers(0, 10**12),
        "work_type": _tag,
        "external_id": st.integers(1, 10**15).map(str),
    }
)
vendors = st.fixed_dictionaries(
    {
        "active": st.booleans(),
        "work_types": st.lists(_tag, min_size=1, max_size=5),
        "risk_tier": st.sampled_from(list(TIER_PICKLIST)),
    }
)


@settings(max_examples=200, deadline=None)
@given(shapes(), work_orders, vendors)
def test_outbound_then_inbound_gives_the_canonical_values_back(shape, work_order, vendor):
    out, back, vendor_out, vendor_back, sep = shape
    remote = out.apply(work_order)
    assert remote.ok, remote.errors
    again = back.apply(remote.values)
    assert again.ok, again.errors
    assert again.values == work_order

    if any(sep.strip() in tag for tag in vendor["work_types"]):
        return  # a separator inside a value cannot be told apart from one between values
    remote = vendor_out.apply(vendor)
    assert remote.ok, remote.errors
    again = vendor_back.apply(remote.values)
    assert again.ok, again.errors
    assert again.values == vendor


@settings(max_examples=100, deadline=None)
@given(
    st.dates(dt.date(1900, 1, 1), dt.date(2200, 12, 31)),
    st.integers(0, 10**12),
    st.sampled_from(["$", ""]),
)
def test_inbound_then_outbound_gives_the_remote_values_back(day, amount, symbol):
    """Remote values already in the written form come back unchanged."""
    remote = {
        "Expires": day.strftime("%m/%d/%Y"),
        "Limit": f"{symbol}{amount:,}",
    }
    inbound = compile_mapping(
        {
            "fields": [
                {
                    "target": "policies",
                    "items": [
                        {
                            "fields": [
                                {
                                    "target": "expiration_date",
                                    "source": "Expires",
                                    "transforms": [{"name": "parse_date", "formats": ["%m/%d/%Y"]}],
                                },
                                {
                                    "target": "limits.each_occurrence",
                                    "source": "Limit",
                                    "transforms": ["parse_money"],
                                },
                            ]
                        }
                    ],
                }
            ]
        },
        object="certificate",
        direction="in",
    )
    canonical = inbound.apply(remote)
    assert canonical.ok, canonical.errors
    policy = canonical.values["policies"][0]
    assert policy == {"expiration_date": day, "limits": {"each_occurrence": amount}}
    outbound = compile_mapping(
        {
            "fields": [
                {
                    "target": "Expires",
                    "source": "expires_on",
                    "transforms": [{"name": "format_date", "format": "%m/%d/%Y"}],
                },
                {
                    "target": "Limit",
                    "source": "score",
                    "transforms": [{"name": "format_money", "symbol": symbol}],
                },
            ]
        },
        object="compliance",
        direction="out",
    )
    written = outbound.apply({"expires_on": day, "score": amount})
    assert written.values == remote
