"""Tests of addresses and their bech32m text form."""

import contextlib
import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from danangchain.address import (
    ADDRESS_SIZE,
    CHARSET,
    HRP,
    compute_address,
    decode_address,
    decode_bech32m,
    encode_address,
    encode_bech32m,
    is_address_text,
)
from danangchain.errors import AddressError

EXAMPLE = encode_address(bytes(range(ADDRESS_SIZE)))

# BIP-350 test vectors for the generic bech32m decoder.
VALID_BECH32M = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]
INVALID_BECH32M = [
    (" 1xj0phk", "invalid character ' ' at position 1"),
    ("\x7f1g6xzxy", "invalid character '\\x7f' at position 1"),
    ("\x801vctc34", "invalid character '\\x80' at position 1"),
    (
        "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
        "too long",
    ),
    ("qyrz8wqd2c9m", "missing separator"),
    ("1qyrz8wqd2c9m", "empty prefix"),
    ("y1b0jsk6g", "invalid character 'b' at position 3"),
    ("lt1igcx5c0", "invalid character 'i' at position 4"),
    ("in1muywd", "too short"),
    ("mm1crxm3i", "invalid character 'i' at position 9"),
    ("au1s5cgom", "invalid character 'o' at position 8"),
    ("M1VUXWEZ", "checksum failed"),
    ("16plkw9", "empty prefix"),
    ("1p2gdwpf", "empty prefix"),
]
# BIP-173 vectors: valid bech32, so bech32m must name the wrong encoding.
VALID_BECH32 = ["A12UEL5L", "a12uel5l", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw"]


def reference_polymod(values: list[int]) -> int:
    """Compute the bech32 checksum residue as the BIP-173 reference does."""
    generators = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            checksum ^= generators[i] if ((top >> i) & 1) else 0
    return checksum


def encode_with_bech32_checksum(hrp: str, data: list[int]) -> str:
    """Encode with the original BIP-173 checksum (constant 1) instead of bech32m."""
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    residue = reference_polymod(expanded + data + [0] * 6) ^ 1
    checksum = [(residue >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[v] for v in data + checksum)


def to_five_bit_groups(data: bytes) -> list[int]:
    """Regroup bytes into five-bit values (the length must be a multiple of 5 bytes)."""
    bits = int.from_bytes(data, "big")
    count = len(data) * 8 // 5
    return [(bits >> 5 * (count - 1 - i)) & 31 for i in range(count)]


def test_address_is_first_20_bytes_of_sha256_of_public_key() -> None:
    public_key = bytes(range(32))
    assert compute_address(public_key) == hashlib.sha256(public_key).digest()[:20]


def test_compute_address_rejects_public_key_of_wrong_size() -> None:
    with pytest.raises(AddressError, match="31 bytes, expected 32"):
        compute_address(bytes(31))


def test_address_text_has_dn_prefix_and_fixed_length() -> None:
    assert EXAMPLE.startswith("dn1")
    assert len(EXAMPLE) == 41
    assert HRP == "dn"


@given(st.binary(min_size=ADDRESS_SIZE, max_size=ADDRESS_SIZE))
def test_address_round_trips_through_text(address: bytes) -> None:
    text = encode_address(address)
    assert decode_address(text) == address
    assert decode_address(text.upper()) == address
    assert is_address_text(text)


def test_encode_matches_an_independent_bech32m_encoding() -> None:
    address = bytes(range(100, 120))
    hrp, data = decode_bech32m(encode_address(address))
    assert hrp == "dn"
    assert list(data) == to_five_bit_groups(address)


def test_every_single_character_substitution_is_detected() -> None:
    for position, original in enumerate(EXAMPLE):
        for replacement in CHARSET + "1":
            if replacement == original:
                continue
            typo = EXAMPLE[:position] + replacement + EXAMPLE[position + 1 :]
            with pytest.raises(AddressError):
                decode_address(typo)


def test_every_swap_of_adjacent_characters_is_detected() -> None:
    for position in range(len(EXAMPLE) - 1):
        first, second = EXAMPLE[position], EXAMPLE[position + 1]
        if first == second:
            continue
        swapped = EXAMPLE[:position] + second + first + EXAMPLE[position + 2 :]
        assert not is_address_text(swapped)


def test_typo_in_data_reports_checksum_failure() -> None:
    replacement = "q" if EXAMPLE[10] != "q" else "p"
    typo = EXAMPLE[:10] + replacement + EXAMPLE[11:]
    with pytest.raises(AddressError, match="^checksum failed: probably a typo$"):
        decode_address(typo)


def test_decode_rejects_mixed_case() -> None:
    mixed = EXAMPLE[:5] + EXAMPLE[5:].upper()
    with pytest.raises(AddressError, match="mixed case"):
        decode_address(mixed)


def test_decode_rejects_wrong_prefix() -> None:
    other = encode_bech32m("bc", to_five_bit_groups(bytes(20)))
    with pytest.raises(AddressError, match="wrong prefix 'bc'"):
        decode_address(other)


def test_decode_names_invalid_character_and_its_position() -> None:
    typo = EXAMPLE[:12] + "b" + EXAMPLE[13:]
    with pytest.raises(AddressError, match="invalid character 'b' at position 13"):
        decode_address(typo)


def test_decode_rejects_wrong_length_even_with_valid_checksum() -> None:
    for group_count in (30, 33, 52):
        text = encode_bech32m(HRP, [0] * group_count)
        with pytest.raises(AddressError, match="wrong length"):
            decode_address(text)
    with pytest.raises(AddressError, match="wrong length: 40 characters"):
        decode_address(EXAMPLE[:-1])
    with pytest.raises(AddressError, match="wrong length: 1000000 characters"):
        decode_address("q" * 1_000_000)


def test_decode_rejects_bech32_checksum_as_wrong_encoding() -> None:
    text = encode_with_bech32_checksum(HRP, to_five_bit_groups(bytes(range(20))))
    with pytest.raises(AddressError, match="wrong encoding: bech32 checksum, expected bech32m"):
        decode_address(text)


def test_decode_rejects_missing_separator_and_empty_text() -> None:
    with pytest.raises(AddressError, match="missing separator"):
        decode_address("dnqqqq")
    with pytest.raises(AddressError, match="missing separator"):
        decode_address("")


def test_encode_rejects_address_of_wrong_size() -> None:
    with pytest.raises(AddressError, match="21 bytes, expected 20"):
        encode_address(bytes(21))


def test_error_messages_are_one_line() -> None:
    for text in ["", "dn1", "x" * 200, EXAMPLE.upper()[:-1] + "x", "dn1\n" + EXAMPLE[3:]]:
        try:
            decode_address(text)
        except AddressError as error:
            assert "\n" not in str(error)


@pytest.mark.parametrize("text", VALID_BECH32M)
def test_bip350_valid_vectors_decode_and_reencode(text: str) -> None:
    hrp, data = decode_bech32m(text)
    assert encode_bech32m(hrp, data) == text.lower()


@pytest.mark.parametrize(("text", "reason"), INVALID_BECH32M)
def test_bip350_invalid_vectors_are_rejected(text: str, reason: str) -> None:
    with pytest.raises(AddressError, match=re.escape(reason)):
        decode_bech32m(text)


@pytest.mark.parametrize("text", VALID_BECH32)
def test_bip173_bech32_strings_are_the_wrong_encoding(text: str) -> None:
    with pytest.raises(AddressError, match="wrong encoding"):
        decode_bech32m(text)


@given(st.text(max_size=60))
def test_decode_address_only_raises_address_error(text: str) -> None:
    with contextlib.suppress(AddressError):
        decode_address(text)
