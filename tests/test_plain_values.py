"""DynamoDB values read as plain Python (engine.store.plain): the values, and the path named
when one is binary, exactly as a walk that names every path on the way would give them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary
from hypothesis import given
from hypothesis import strategies as st

from engine.store import WrongAttributeTypeError, plain


def _reference(value: Any, field: str = "value") -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Binary | bytes | bytearray):
        raise WrongAttributeTypeError(field)
    if isinstance(value, set | frozenset):
        items = [_reference(v, field) for v in value]
        return sorted(items, key=lambda v: (str(type(v)), v))
    if isinstance(value, dict):
        return {str(k): _reference(v, f"{field}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_reference(v, f"{field}[{i}]") for i, v in enumerate(value)]
    return value


_SCALARS = st.one_of(
    st.text(max_size=5),
    st.booleans(),
    st.none(),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.binary(max_size=3).map(Binary),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(min_size=1, max_size=4), inner, max_size=3),
        st.frozensets(st.text(max_size=3), max_size=3),
    ),
    max_leaves=12,
)


def _outcome(read: Any, value: Any) -> Any:
    try:
        return ("value", read(value, "attr"))
    except WrongAttributeTypeError as err:
        return ("binary", str(err))


@given(_VALUES)
def test_plain_reads_as_the_path_naming_walk(value: Any) -> None:
    assert _outcome(plain, value) == _outcome(_reference, value)


def test_a_binary_deep_inside_is_named_by_its_path() -> None:
    with pytest.raises(WrongAttributeTypeError) as caught:
        plain({"windows": [{"days": "mon"}, {"start": Binary(b"09:00")}]}, "doc")
    assert str(caught.value) == str(WrongAttributeTypeError("doc.windows[1].start"))
