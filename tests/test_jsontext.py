"""JSON text for responses and JSON columns: what the standard library could write, written."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given
from hypothesis import strategies as st

from connector import jsontext

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # past 64 bits too, which orjson refuses
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_json)
def test_any_json_value_reads_back_as_itself(value):
    assert json.loads(jsontext.dumps(value)) == value


def test_responses_keep_flasks_conversions(app):
    text = app.json.dumps({"on": dt.date(2026, 11, 28), "n": 2**70, "name": "Zoë"})

    assert json.loads(text) == {"on": "Sat, 28 Nov 2026 00:00:00 GMT", "n": 2**70, "name": "Zoë"}
