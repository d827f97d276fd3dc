"""Canonical msgpack: every value has exactly one accepted byte form."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from danangchain.encoding import pack, unpack
from danangchain.errors import DecodeError

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.binary(max_size=300)
    | st.text(max_size=100)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=20)
        | st.dictionaries(st.text(max_size=10), children, max_size=8)
    ),
    max_leaves=40,
)


@given(values)
def test_pack_then_unpack_returns_the_same_value(value: object) -> None:
    assert unpack(pack(value)) == value


@given(values)
def test_pack_is_deterministic(value: object) -> None:
    assert pack(value) == pack(unpack(pack(value)))


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_canonically_or_raise_decode_error(data: bytes) -> None:
    try:
        value = unpack(data)
    except DecodeError:
        return
    assert pack(value) == data


@given(values, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_refused(value: object, extra: bytes) -> None:
    with pytest.raises(DecodeError, match="trailing"):
        unpack(pack(value) + extra)


@given(st.integers(min_value=0, max_value=127))
def test_small_integer_in_a_longer_form_is_refused(number: int) -> None:
    for longer in (
        b"\xcc" + bytes([number]),
        b"\xcd" + struct.pack(">H", number),
        b"\xce" + struct.pack(">I", number),
        b"\xcf" + struct.pack(">Q", number),
    ):
        with pytest.raises(DecodeError, match="non-canonical"):
            unpack(longer)


@pytest.mark.parametrize(
    "encoded",
    [
        b"\xcd\x00\x05",  # 5 as uint16
        b"\xce" + struct.pack(">I", 300),  # 300 fits in uint16
        b"\xd0\x05",  # 5 as int8
        b"\xd1\xff\xff",  # -1 as int16
        b"\xda\x00\x01a",  # "a" as str16
        b"\xc5\x00\x01\x00",  # one byte as bin16
        b"\xdc\x00\x01\x01",  # [1] as array16
        b"\xde\x00\x01\xa1a\x01",  # {"a": 1} as map16
    ],
)
def test_lengths_and_integers_in_longer_forms_are_refused(encoded: bytes) -> None:
    with pytest.raises(DecodeError):
        unpack(encoded)


def test_duplicate_map_keys_are_refused() -> None:
    with pytest.raises(DecodeError, match="duplicate map key"):
        unpack(b"\x82\xa1a\x01\xa1a\x02")


def test_floats_are_refused_both_ways() -> None:
    with pytest.raises(DecodeError):
        unpack(msgpack.packb(1.5))
    with pytest.raises(DecodeError):
        pack([1.5])


def test_non_string_map_keys_are_refused() -> None:
    with pytest.raises(DecodeError):
        unpack(msgpack.packb({1: 2}, strict_types=False))


def test_integers_beyond_64_bits_cannot_be_packed() -> None:
    with pytest.raises(DecodeError):
        pack(2**64)


def test_oversize_input_is_refused_before_parsing() -> None:
    with pytest.raises(DecodeError, match="limit"):
        unpack(b"\xc4\x05hello", max_size=4)


def test_invalid_utf8_string_is_refused() -> None:
    with pytest.raises(DecodeError):
        unpack(b"\xa2\xff\xfe")


# Extension types, timestamps among them, are refused as floats are: msgpack would hand
# them to a caller as values no decode_* function expects.


def _nested(value: object, depth: int) -> object:
    for _ in range(depth):
        value = [value]
    return value


@given(
    st.integers(min_value=-128, max_value=127).filter(lambda code: code != -1),
    st.binary(max_size=40),
    st.integers(min_value=0, max_value=3),
)
def test_extension_types_are_refused_at_any_depth(code: int, data: bytes, depth: int) -> None:
    extension = b"\xc7" + bytes([len(data)]) + struct.pack(">b", code) + data  # ext 8
    with pytest.raises(DecodeError, match=f"extension type {code} is not allowed"):
        unpack(b"\x91" * depth + extension)


@given(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=0, max_value=999_999_999),
    st.integers(min_value=0, max_value=3),
)
def test_timestamps_are_refused_at_any_depth(seconds: int, nanoseconds: int, depth: int) -> None:
    encoded = msgpack.packb(_nested(msgpack.Timestamp(seconds, nanoseconds), depth))
    with pytest.raises(DecodeError, match="timestamps .* are not allowed"):
        unpack(encoded)


@given(st.binary(max_size=20).filter(lambda data: len(data) not in (4, 8, 12)))
def test_malformed_timestamps_are_refused(data: bytes) -> None:
    with pytest.raises(DecodeError, match="timestamp"):
        unpack(b"\xc7" + bytes([len(data)]) + b"\xff" + data)  # ext 8, type -1


def test_an_empty_extension_is_refused() -> None:
    # Once the decoder bounded extensions at 0 bytes, which let this one through.
    with pytest.raises(DecodeError, match="extension type 5"):
        unpack(b"\xc7\x00\x05")


def test_timestamp_in_a_map_value_is_refused() -> None:
    with pytest.raises(DecodeError, match="timestamps"):
        unpack(msgpack.packb({"time": msgpack.Timestamp(1_700_000_000, 0)}))


def test_extensions_and_timestamps_cannot_be_packed() -> None:
    with pytest.raises(DecodeError, match="extension type 1"):
        pack([msgpack.ExtType(1, b"x")])
    with pytest.raises(DecodeError, match="Timestamp"):
        pack(msgpack.Timestamp(1, 0))


@pytest.mark.parametrize(
    ("leaf", "reason"),
    [
        (b"\xcc\x01", "non-canonical"),
        (b"\xca" + bytes(4), "floats"),
        (b"\xd6\xff" + bytes(4), "timestamps"),
    ],
)
def test_refusals_deeper_than_the_recursion_limit_are_decode_errors(
    leaf: bytes, reason: str
) -> None:
    with pytest.raises(DecodeError, match=reason):
        unpack(b"\x91" * 1020 + leaf)
