"""Account addresses and their bech32m text form ("dn1..."), which catches typos.

The bech32m codec follows the BIP-350 reference (BIP-173 with the new checksum constant).
Its checksum detects any error in up to four characters, so a mistyped or swapped
character in an address is refused instead of sending a record to a stranger.
"""

import hashlib
from collections.abc import Sequence
from functools import lru_cache

from danangchain.errors import AddressError

ADDRESS_SIZE = 20
HRP = "dn"

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
CHECKSUM_LENGTH = 6
MAX_TEXT_LENGTH = 90  # BIP-173: the checksum's guarantees hold only up to this length
BECH32_CONSTANT = 1
BECH32M_CONSTANT = 0x2BC830A3
_GENERATORS = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_CHARSET_VALUES = {character: value for value, character in enumerate(CHARSET)}
_SEPARATOR = "1"
# 20 bytes are exactly 32 five-bit groups, so an address needs no padding bits.
_ADDRESS_GROUPS = ADDRESS_SIZE * 8 // 5
ADDRESS_TEXT_LENGTH = len(HRP) + 1 + _ADDRESS_GROUPS + CHECKSUM_LENGTH


def compute_address(public_key: bytes) -> bytes:
    """Return the address of a 32-byte public key: the first 20 bytes of its SHA-256."""
    if len(public_key) != 32:
        raise AddressError.of("public key is {size} bytes, expected 32", size=len(public_key))
    return _address_of(bytes(public_key))


@lru_cache(maxsize=16_384)
def _address_of(public_key: bytes) -> bytes:
    # Remembered: the rules look up each transaction's sender by address several times.
    return hashlib.sha256(public_key).digest()[:ADDRESS_SIZE]


def encode_address(address: bytes) -> str:
    """Return the bech32m text of a 20-byte address."""
    if len(address) != ADDRESS_SIZE:
        raise AddressError.of(
            "address is {size} bytes, expected {expected}", size=len(address), expected=ADDRESS_SIZE
        )
    return encode_bech32m(HRP, _convert_bits(address, 8, 5))


def decode_address(text: str) -> bytes:
    """Return the 20-byte address written as `text`, refusing any malformed or mistyped one."""
    # Refuse oversized input before scanning it: addresses arrive from untrusted clients.
    if len(text) > MAX_TEXT_LENGTH:
        raise _wrong_length(text)
    lowered = _verify_characters_and_case(text)
    hrp, data_part = _split_at_separator(lowered)
    # Verify the prefix before the checksum, which also covers it, to name the real mistake.
    if hrp != HRP:
        raise AddressError.of(
            "wrong prefix {prefix!r}: an address starts with '{expected}1'",
            prefix=hrp,
            expected=HRP,
        )
    values = _decode_data_part(data_part, offset=len(hrp) + 1)
    if len(text) != ADDRESS_TEXT_LENGTH:
        raise _wrong_length(text)
    _verify_checksum(hrp, values)
    return bytes(_convert_bits(values[:-CHECKSUM_LENGTH], 5, 8))


def is_address_text(text: str) -> bool:
    """Return whether `text` is a well-formed address with a valid checksum."""
    try:
        decode_address(text)
    except AddressError:
        return False
    return True


def encode_bech32m(hrp: str, data: Sequence[int]) -> str:
    """Return the lowercase bech32m string of `hrp` and five-bit `data` values."""
    checksum = _compute_checksum(hrp, data, BECH32M_CONSTANT)
    return hrp + _SEPARATOR + "".join(CHARSET[value] for value in [*data, *checksum])


def decode_bech32m(text: str) -> tuple[str, tuple[int, ...]]:
    """Return the lowercase hrp and five-bit data of a bech32m string (BIP-350)."""
    if len(text) > MAX_TEXT_LENGTH:
        raise AddressError.of(
            "too long: {length} characters, at most {most}", length=len(text), most=MAX_TEXT_LENGTH
        )
    lowered = _verify_characters_and_case(text)
    hrp, data_part = _split_at_separator(lowered)
    if len(data_part) < CHECKSUM_LENGTH:
        raise AddressError.of(
            "too short: fewer than {least} checksum characters", least=CHECKSUM_LENGTH
        )
    values = _decode_data_part(data_part, offset=len(hrp) + 1)
    _verify_checksum(hrp, values)
    return hrp, tuple(values[:-CHECKSUM_LENGTH])


def _wrong_length(text: str) -> AddressError:
    """Return the error for an address text of the wrong length."""
    return AddressError.of(
        "wrong length: {length} characters, an address has {expected}",
        length=len(text),
        expected=ADDRESS_TEXT_LENGTH,
    )


def _verify_characters_and_case(text: str) -> str:
    """Return `text` in lowercase after refusing non-printable-ASCII and mixed case."""
    for position, character in enumerate(text, start=1):
        if not 33 <= ord(character) <= 126:
            raise AddressError.of(
                "invalid character {character!r} at position {position}",
                character=character,
                position=position,
            )
    lowered = text.lower()
    # BIP-173 allows all-uppercase (for QR codes) but never a mix of cases.
    if lowered != text and text.upper() != text:
        raise AddressError.of("mixed case: write the address all lowercase or all uppercase")
    return lowered


def _split_at_separator(text: str) -> tuple[str, str]:
    """Return the human-readable prefix and data part on either side of the last '1'."""
    position = text.rfind(_SEPARATOR)
    if position == -1:
        raise AddressError.of("missing separator '1' between prefix and data")
    if position == 0:
        raise AddressError.of("empty prefix before the separator '1'")
    return text[:position], text[position + 1 :]


def _decode_data_part(data_part: str, offset: int) -> list[int]:
    """Return the five-bit values of the data part, naming the first character not in CHARSET."""
    values = []
    for position, character in enumerate(data_part, start=offset + 1):
        value = _CHARSET_VALUES.get(character)
        if value is None:
            raise AddressError.of(
                "invalid character {character!r} at position {position}",
                character=character,
                position=position,
            )
        values.append(value)
    return values


def _verify_checksum(hrp: str, values: Sequence[int]) -> None:
    """Raise AddressError unless `values` end in a valid bech32m checksum of `hrp`."""
    residue = _compute_polymod([*_expand_hrp(hrp), *values])
    if residue == BECH32M_CONSTANT:
        return
    if residue == BECH32_CONSTANT:
        raise AddressError.of("wrong encoding: bech32 checksum, expected bech32m (BIP-350)")
    raise AddressError.of("checksum failed: probably a typo")


def _compute_checksum(hrp: str, data: Sequence[int], constant: int) -> list[int]:
    """Return the six checksum values that make `hrp` and `data` verify under `constant`."""
    residue = _compute_polymod([*_expand_hrp(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ constant
    return [(residue >> 5 * (5 - i)) & 31 for i in range(CHECKSUM_LENGTH)]


def _compute_polymod(values: Sequence[int]) -> int:
    """Return the BCH checksum residue of five-bit `values`."""
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATORS):
            if (top >> i) & 1:
                checksum ^= generator
    return checksum


def _expand_hrp(hrp: str) -> list[int]:
    """Return the hrp as the checksum sees it: high bits, a zero, then low bits."""
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(values: Sequence[int], from_bits: int, to_bits: int) -> list[int]:
    """Return `values` regrouped from `from_bits` to `to_bits` per value, without padding."""
    # Callers only regroup whole multiples of 40 bits (20 bytes, 32 groups): no padding arises.
    accumulator, bits, mask, result = 0, 0, (1 << to_bits) - 1, []
    for value in values:
        accumulator = (accumulator << from_bits | value) & ((1 << (from_bits + to_bits)) - 1)
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            result.append((accumulator >> bits) & mask)
    if bits:
        raise AddressError(f"{len(values) * from_bits} bits do not regroup evenly")
    return result
