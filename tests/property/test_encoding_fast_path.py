"""The fast path of the canonical encoder (which the auditor's speed rests on) refuses and
accepts exactly what the general path does, subclasses and floats included."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from danangchain.encoding import pack, unpack
from danangchain.errors import DecodeError


class Small(enum.IntEnum):
    """An int subclass: not of an exact allowed type, so it takes the general path."""

    ONE = 1


class Text(str):
    """A str subclass."""


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**65)
    | st.binary(max_size=8)
    | st.text(max_size=8)
    | st.floats(allow_nan=False)
    | st.just(Small.ONE)
    | st.builds(Text, st.text(max_size=4))
    | st.builds(bytearray, st.binary(max_size=4))
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6)
        | st.lists(children, max_size=6).map(tuple)
        | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)


def is_packable(value: Any) -> bool:
    """The rule, written plainly: what pack must accept."""
    if value is None or isinstance(value, (bool, bytes, str)):
        return True
    if isinstance(value, int):
        return -(2**63) <= value <= 2**64 - 1
    if isinstance(value, (list, tuple)):
        return all(is_packable(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_packable(v) for k, v in value.items())
    return False


@given(values)
def test_pack_accepts_exactly_the_packable_values(value: Any) -> None:
    if is_packable(value):
        assert isinstance(pack(value), bytes)
    else:
        with pytest.raises(DecodeError):
            pack(value)


def test_floats_nested_in_decoded_values_are_refused() -> None:
    import msgpack

    for value in ([1, [2, 1.5]], {"a": [0.0]}, [{"b": {"c": 2.5}}]):
        with pytest.raises(DecodeError, match="floats are not allowed"):
            unpack(msgpack.packb(value, use_bin_type=True))
