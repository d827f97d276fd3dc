"""Canonical strict msgpack: the one byte form of every value that is hashed, signed or stored.

Values are built from int, bytes, str, None, bool, list/tuple and (outside anything
hashed) str-keyed dicts. `pack` always writes the shortest form; `unpack` refuses any
other byte string for the same value, so one value has exactly one encoding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack

from danangchain.errors import DecodeError

MAX_ENCODED_SIZE = 16 * 1024 * 1024
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


# Packers are reused: building one costs more than packing a transaction. They keep
# nothing between calls (each call resets the buffer) and no thread shares them.
_PACKER = msgpack.Packer(use_bin_type=True, strict_types=False, datetime=False)
# Writes floats as float32: packs a value differently from _PACKER exactly when it
# holds a float.
_SINGLE_FLOAT_PACKER = msgpack.Packer(
    use_bin_type=True, strict_types=False, datetime=False, use_single_float=True
)


def pack(value: Any) -> bytes:
    """Encode a value in canonical msgpack (shortest integers and lengths, bin for bytes)."""
    _check_packable(value)
    return _PACKER.pack(value)  # type: ignore[no-any-return]


# Exact types that need no further check: the fast path of _check_packable, which every
# signature, state entry and block goes through (subclasses take the general path).
_LEAF_TYPES = frozenset((type(None), bool, bytes, str))


def _check_packable(value: Any) -> None:
    """Refuse floats, unknown types and out-of-range integers before they reach the wire."""
    kind = type(value)
    if kind in _LEAF_TYPES:
        return
    if kind is list or kind is tuple:
        for item in value:
            item_kind = type(item)
            if item_kind in _LEAF_TYPES or (item_kind is int and _INT_MIN <= item <= _INT_MAX):
                continue
            _check_packable(item)
        return
    _check_packable_in_general(value)


def _check_packable_in_general(value: Any) -> None:
    """Check any value, subclasses of the allowed types included."""
    if value is None or isinstance(value, (bool, bytes, str)):
        return
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise DecodeError(f"integer {value} does not fit in 64 bits")
        return
    if isinstance(value, msgpack.ExtType):  # a tuple, but msgpack writes it as an extension
        raise DecodeError(_EXTENSION_REFUSED.format(code=value.code))
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_packable(item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise DecodeError("map keys must be strings")
            _check_packable(item)
        return
    raise DecodeError(f"cannot encode a value of type {type(value).__name__}")


_EXTENSION_REFUSED = (
    "msgpack extension type {code} is not allowed: only nil, booleans, integers, bytes, "
    "strings, arrays and maps are"
)
_TIMESTAMP_REFUSED = (
    "msgpack timestamps (extension type -1) are not allowed: write a time as integer milliseconds"
)


def _refuse_extension(code: int, data: bytes) -> Any:
    """Refuse a msgpack extension value (msgpack decodes timestamps without asking)."""
    raise DecodeError(_EXTENSION_REFUSED.format(code=code))


def _pairs_to_dict(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """Build a map, refusing duplicate or non-string keys."""
    result: dict[Any, Any] = {}
    for key, item in pairs:
        if not isinstance(key, str):
            raise DecodeError("map keys must be strings")
        if key in result:
            raise DecodeError(f"duplicate map key {key!r}")
        result[key] = item
    return result


def unpack(data: bytes, max_size: int = MAX_ENCODED_SIZE) -> Any:
    """Decode canonical msgpack; raise DecodeError for anything else, including trailing bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("expected bytes")
    if len(data) > max_size:
        raise DecodeError(f"encoding is {len(data)} bytes, more than the limit of {max_size}")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            object_pairs_hook=_pairs_to_dict,
            max_bin_len=max_size,
            max_str_len=max_size,
            max_array_len=max_size,
            max_map_len=max_size,
            max_ext_len=max_size,
            ext_hook=_refuse_extension,
            # A timestamp becomes a float, which never packs back to the same bytes: the
            # check below then finds it, so the accepted path pays nothing for it.
            timestamp=1,
        )
    except msgpack.ExtraData as exc:
        raise DecodeError(f"{len(exc.extra)} trailing bytes after the value") from None
    except DecodeError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise DecodeError(f"malformed msgpack: {exc}") from None
    # What msgpack decodes always passes _check_packable: skip it here.
    canonical = _PACKER.pack(value)
    if canonical != bytes(data):
        _refuse_timestamps(data, max_size)
        _refuse_floats(value)  # a float32 differs too: say that it is a float
        position = _first_difference(canonical, bytes(data))
        raise DecodeError(
            f"non-canonical encoding at byte {position}: an integer or length is written "
            "in a longer form than needed, or a type is not the canonical one"
        )
    # A float64 packs back the same: look for floats only when one is there.
    if _SINGLE_FLOAT_PACKER.pack(value) != canonical:
        _refuse_floats(value)
    return value


def _refuse_timestamps(data: bytes, max_size: int) -> None:
    """Refuse bytes that hold a msgpack timestamp, which decoding turned into a float."""
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=False,
            max_bin_len=max_size,
            max_str_len=max_size,
            max_array_len=max_size,
            max_map_len=max_size,
            max_ext_len=max_size,
        )
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError):
        # The same bytes decoded when timestamps became floats: one is out of range.
        raise DecodeError(_TIMESTAMP_REFUSED) from None
    if _holds_timestamp(value):
        raise DecodeError(_TIMESTAMP_REFUSED)


def _holds_timestamp(value: Any) -> bool:
    """Return whether a value decoded with msgpack's defaults holds a Timestamp."""
    return any(isinstance(item, msgpack.Timestamp) for item in _scalars(value))


def _refuse_floats(value: Any) -> None:
    """Refuse floats anywhere in a decoded value: they have more than one byte form."""
    # msgpack decodes to exact types only, so comparing types is enough.
    if any(type(item) is float for item in _scalars(value)):
        raise DecodeError("floats are not allowed")


def _scalars(value: Any) -> Iterator[Any]:
    """Yield every item of a decoded value that is not an array or a map."""
    # A loop, not recursion: msgpack nests deeper than Python's recursion limit.
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is list:
            pending.extend(item)
        elif kind is dict:
            pending.extend(item.values())
        else:
            yield item


def _first_difference(a: bytes, b: bytes) -> int:
    """Return the index of the first byte where two strings differ."""
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


# Field readers used by every decode_* function, so type errors read the same everywhere.


def expect_list(value: Any, length: int, what: str) -> list[Any]:
    """Return value as a list of exactly `length` items, else raise DecodeError."""
    if not isinstance(value, list):
        raise DecodeError(f"{what}: expected an array")
    if len(value) != length:
        raise DecodeError(f"{what}: expected {length} fields, got {len(value)}")
    return value


def expect_int(value: Any, what: str, minimum: int = 0, maximum: int = _INT_MAX) -> int:
    """Return value as an int within bounds (bool refused), else raise DecodeError."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise DecodeError(f"{what}: expected an integer")
    if not minimum <= value <= maximum:
        raise DecodeError(f"{what}: {value} is out of range {minimum}..{maximum}")
    return value


def expect_bytes(
    value: Any, what: str, size: int | None = None, max_size: int | None = None
) -> bytes:
    """Return value as bytes of the given exact or maximum size, else raise DecodeError."""
    if not isinstance(value, bytes):
        raise DecodeError(f"{what}: expected bytes")
    if size is not None and len(value) != size:
        raise DecodeError(f"{what}: expected {size} bytes, got {len(value)}")
    if max_size is not None and len(value) > max_size:
        raise DecodeError(f"{what}: {len(value)} bytes is more than {max_size}")
    return value


def expect_str(value: Any, what: str, max_size: int) -> str:
    """Return value as a str of at most max_size UTF-8 bytes, else raise DecodeError."""
    if not isinstance(value, str):
        raise DecodeError(f"{what}: expected a string")
    if len(value.encode()) > max_size:
        raise DecodeError(f"{what}: longer than {max_size} bytes")
    return value


def expect_optional_bytes(value: Any, what: str, size: int) -> bytes | None:
    """Return None or bytes of exactly `size`, else raise DecodeError."""
    return None if value is None else expect_bytes(value, what, size=size)
