"""PostgreSQL's JSON values read by orjson where it reads them exactly as ``json.loads`` does."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from agentkeep.db.engine import loads_json

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False)
    | st.text()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def _same(a: object, b: object) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0 here)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isinf(a):
        return a == b
    return type(a) is type(b) and a == b


@given(VALUES)
def test_any_json_value_reads_as_the_standard_library_reads_it(value: object) -> None:
    text = json.dumps(value).encode()
    assert _same(loads_json(text), json.loads(text))


def test_what_orjson_would_read_otherwise_goes_to_the_standard_library() -> None:
    for text in (
        b"18446744073709551616",  # beyond 64 bits: orjson would make it a float
        b"-9223372036854775809",
        b'{"id": 123456789012345678901234567890}',
        b"1e400",  # beyond a double: orjson refuses it, json reads infinity
        b'{"a": 1, "a": 2}',
    ):
        assert _same(loads_json(text), json.loads(text)), text
