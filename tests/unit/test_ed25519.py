"""Tests of danangchain.ed25519: reference vectors, strict key and signature rules."""

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import cryptography_vectors
import pytest
from cryptography.exceptions import InvalidSignature as CryptographyInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from danangchain.ed25519 import (
    PUBLIC_KEY_SIZE,
    SEED_SIZE,
    SIGNATURE_SIZE,
    SigningKey,
    is_strict_public_key,
    is_valid_signature,
    sign,
    signing_key_from_seed,
    verify_strict,
)
from danangchain.errors import InvalidSignature

# Field prime, group order and curve constant of edwards25519, for the helpers below.
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, -1, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

# Canonical encodings of the eight small-order points, as listed by ed25519-dalek
# (EIGHT_TORSION) and "Taming the many EdDSAs" (Chalkias et al., 2020).
EIGHT_TORSION = [
    bytes.fromhex(encoding)
    for encoding in (
        "0100000000000000000000000000000000000000000000000000000000000000",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    )
]
IDENTITY_ENCODING = EIGHT_TORSION[0]


@dataclass(frozen=True)
class Vector:
    """One line of the ed25519 reference vectors."""

    line: int
    seed: bytes
    public_key: bytes
    message: bytes
    signature: bytes


def load_vectors() -> list[Vector]:
    """Parse sign.input: `seed||pk : pk : message : signature||message :` in hex."""
    path = os.path.join("asymmetric", "Ed25519", "sign.input")
    with cryptography_vectors.open_vector_file(path, "r") as vector_file:
        lines = vector_file.read().splitlines()
    vectors = []
    for number, line in enumerate(lines, start=1):
        secret, public_key, message, signed, trailer = line.split(":")
        # The format repeats pk and the message; check the repeats so a misparse cannot hide.
        assert secret[64:] == public_key and signed[128:] == message and trailer == ""
        vectors.append(
            Vector(
                line=number,
                seed=bytes.fromhex(secret[:64]),
                public_key=bytes.fromhex(public_key),
                message=bytes.fromhex(message),
                signature=bytes.fromhex(signed[:128]),
            )
        )
    return vectors


VECTORS = load_vectors()
# Chunks keep per-test overhead low while a failure still names its line.
VECTOR_CHUNKS = [VECTORS[start : start + 128] for start in range(0, len(VECTORS), 128)]


def encode_y(y: int, x_is_odd: bool = False) -> bytes:
    """Encode a y coordinate (reduced or not) with a sign bit, without any check."""
    return (y | (int(x_is_odd) << 255)).to_bytes(32, "little")


def affine_decode(encoded: bytes) -> tuple[int, int]:
    """Decode a point to affine (x, y) the RFC 8032 sample way, independent of the module."""
    y = int.from_bytes(encoded, "little") & ((1 << 255) - 1)
    x_squared = (y * y - 1) * pow(D * y * y + 1, -1, P) % P
    x = pow(x_squared, (P + 3) // 8, P)
    if (x * x - x_squared) % P:
        x = x * SQRT_M1 % P
    if (x * x - x_squared) % P:
        raise ValueError("not on the curve")
    if x & 1 != encoded[31] >> 7:
        x = P - x
    return x, y


def affine_add(first: tuple[int, int], second: tuple[int, int]) -> tuple[int, int]:
    """Add two affine points of -x^2 + y^2 = 1 + d x^2 y^2."""
    (x1, y1), (x2, y2) = first, second
    t = D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, -1, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, -1, P) % P
    return x3, y3


def affine_encode(point: tuple[int, int]) -> bytes:
    """Encode an affine point canonically."""
    x, y = point
    return encode_y(y, bool(x & 1))


def first_y_off_curve() -> int:
    """Find the smallest y for which no x is on the curve."""
    y = 2
    while True:
        try:
            affine_decode(encode_y(y))
        except ValueError:
            return y
        y += 1


def refusal(public_key: bytes, message: bytes, signature: bytes) -> str | None:
    """Return why verify_strict refuses a signature, or None if it accepts it."""
    try:
        verify_strict(public_key, message, signature)
    except InvalidSignature as error:
        return str(error)
    return None


def with_commitment(signature: bytes, commitment: bytes) -> bytes:
    """Replace R, the first half of a signature."""
    return commitment + signature[32:]


def flip_bit(data: bytes, index: int) -> bytes:
    """Flip one bit of a byte string, counting bits across it."""
    flipped = bytearray(data)
    flipped[index // 8 % len(data)] ^= 1 << (index % 8)
    return bytes(flipped)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    """Return a fixed signing key."""
    return signing_key_from_seed(bytes(range(SEED_SIZE)))


# --- Reference vectors ---------------------------------------------------------------


def test_reference_vectors_are_complete_and_start_with_rfc8032() -> None:
    assert len(VECTORS) == 1024
    # RFC 8032, 7.1, TEST 1 (empty message) and TEST 2 (one byte 0x72).
    assert VECTORS[0].public_key.hex().startswith("d75a980182b10ab7")
    assert VECTORS[0].message == b""
    assert VECTORS[1].message == b"\x72"


@pytest.mark.parametrize("chunk", VECTOR_CHUNKS, ids=lambda chunk: f"lines{chunk[0].line}+")
def test_reference_vectors_sign_and_verify(chunk: list[Vector]) -> None:
    for vector in chunk:
        signing_key = signing_key_from_seed(vector.seed)
        assert signing_key.public_key == vector.public_key, f"line {vector.line}"
        assert sign(signing_key, vector.message) == vector.signature, f"line {vector.line}"
        reason = refusal(vector.public_key, vector.message, vector.signature)
        assert reason is None, f"line {vector.line}: {reason}"
        assert is_valid_signature(vector.public_key, vector.message, vector.signature)


@pytest.mark.parametrize("chunk", VECTOR_CHUNKS, ids=lambda chunk: f"lines{chunk[0].line}+")
def test_reference_vectors_refused_after_bit_flip(chunk: list[Vector]) -> None:
    for vector in chunk:
        # An empty message has no bit to flip, so it gets one byte more instead.
        tampered = flip_bit(vector.message, 7 * vector.line) if vector.message else b"\x00"
        reason = refusal(vector.public_key, tampered, vector.signature)
        assert reason == "signature does not match", f"line {vector.line}: {reason}"
        # Bits in R or in the top of S may trip an earlier check; any refusal will do.
        flipped = flip_bit(vector.signature, 5 * vector.line)
        assert refusal(vector.public_key, vector.message, flipped), f"line {vector.line}"


# --- Signing keys --------------------------------------------------------------------


def test_signing_key_from_seed_refuses_wrong_seed_length() -> None:
    with pytest.raises(ValueError, match="seed must be 32 bytes, got 31"):
        signing_key_from_seed(bytes(31))


def test_signing_key_refuses_public_key_of_another_seed(key: SigningKey) -> None:
    with pytest.raises(ValueError, match="does not belong to the seed"):
        SigningKey(seed=bytes(SEED_SIZE), public_key=key.public_key)


def test_signing_key_repr_hides_seed(key: SigningKey) -> None:
    shown = repr(key)
    assert "seed" not in shown
    assert repr(key.seed) not in shown and key.seed.hex() not in shown
    assert "_private_key" not in shown


def test_signing_keys_of_same_seed_are_equal(key: SigningKey) -> None:
    again = signing_key_from_seed(key.seed)
    assert again == key and hash(again) == hash(key)


# --- Public keys ---------------------------------------------------------------------


def test_eight_torsion_list_is_the_whole_small_order_subgroup() -> None:
    # Check the test's own list independently: eight distinct points, each with [8]T = 0.
    points = [affine_decode(encoding) for encoding in EIGHT_TORSION]
    assert len(set(points)) == 8
    for point in points:
        multiple = point
        for _ in range(3):
            multiple = affine_add(multiple, multiple)
        assert multiple == (0, 1)
    assert [affine_encode(point) for point in points] == EIGHT_TORSION


@pytest.mark.parametrize("encoding", EIGHT_TORSION, ids=lambda encoding: encoding.hex()[:8])
def test_small_order_public_key_refused(encoding: bytes, key: SigningKey) -> None:
    assert not is_strict_public_key(encoding)
    with pytest.raises(InvalidSignature, match="public key has small order"):
        verify_strict(encoding, b"m", sign(key, b"m"))


def test_cryptography_alone_accepts_a_universal_forgery_on_small_order_key() -> None:
    # Why this module exists: with A = identity, R = identity and S = 0,
    # the equation [S]B = R + [k]A holds for every message.
    forged = IDENTITY_ENCODING + bytes(32)
    Ed25519PublicKey.from_public_bytes(IDENTITY_ENCODING).verify(forged, b"any message at all")
    with pytest.raises(InvalidSignature, match="public key has small order"):
        verify_strict(IDENTITY_ENCODING, b"any message at all", forged)


@pytest.mark.parametrize(
    "encoding",
    [
        encode_y(1, x_is_odd=True),
        encode_y(P - 1, x_is_odd=True),
        encode_y(P),
        encode_y(P, x_is_odd=True),
        encode_y(P + 1),
        encode_y(P + 1, x_is_odd=True),
    ],
    ids=["y=1,-0", "y=-1,-0", "y=p", "y=p,odd", "y=p+1", "y=p+1,odd"],
)
def test_non_canonical_small_order_encoding_refused(encoding: bytes) -> None:
    assert not is_strict_public_key(encoding)
    assert not is_valid_signature(encoding, b"", IDENTITY_ENCODING + bytes(32))


@pytest.mark.parametrize("y", range(P, 2**255))
def test_public_key_with_y_not_below_field_prime_refused(y: int) -> None:
    for x_is_odd in (False, True):
        encoding = encode_y(y, x_is_odd)
        assert not is_strict_public_key(encoding)
        with pytest.raises(InvalidSignature, match="public key is not canonical: y is not below"):
            verify_strict(encoding, b"", bytes(SIGNATURE_SIZE))


def test_public_key_off_curve_refused() -> None:
    encoding = encode_y(first_y_off_curve())
    assert not is_strict_public_key(encoding)
    with pytest.raises(InvalidSignature, match="public key is not a point on the curve"):
        verify_strict(encoding, b"", bytes(SIGNATURE_SIZE))


@pytest.mark.parametrize("torsion", EIGHT_TORSION[1:], ids=lambda encoding: encoding.hex()[:8])
def test_mixed_order_public_key_refused(torsion: bytes, key: SigningKey) -> None:
    mixed = affine_encode(affine_add(affine_decode(key.public_key), affine_decode(torsion)))
    assert is_strict_public_key(key.public_key)
    assert not is_strict_public_key(mixed)
    # cryptography loads it without complaint; we do not.
    Ed25519PublicKey.from_public_bytes(mixed)
    with pytest.raises(InvalidSignature, match=r"torsion component \(mixed order\)"):
        verify_strict(mixed, b"m", sign(key, b"m"))


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_public_key_of_wrong_length_refused(size: int, key: SigningKey) -> None:
    encoding = (key.public_key * 3)[:size]
    assert not is_strict_public_key(encoding)
    with pytest.raises(InvalidSignature, match=f"public key must be 32 bytes, got {size}"):
        verify_strict(encoding, b"m", sign(key, b"m"))


def test_bytearray_arguments_answered_not_crashing_the_cache(key: SigningKey) -> None:
    # Outside the type hints, but a caller passing a bytearray must not get "unhashable type".
    public_key = bytearray(key.public_key)
    assert is_strict_public_key(public_key)  # type: ignore[arg-type]
    verify_strict(public_key, b"m", bytearray(sign(key, b"m")))  # type: ignore[arg-type]


# --- Signatures ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 63, 65])
def test_signature_of_wrong_length_refused(size: int, key: SigningKey) -> None:
    signature = (sign(key, b"m") * 2)[:size]
    with pytest.raises(InvalidSignature, match=f"signature must be 64 bytes, got {size}"):
        verify_strict(key.public_key, b"m", signature)


@pytest.mark.parametrize(
    "malleate",
    [lambda s: s + L, lambda s: s + 2 * L, lambda s: 2**256 - 1],
    ids=["S+L", "S+2L", "all-ones"],
)
def test_non_canonical_signature_scalar_refused(
    malleate: Callable[[int], int], key: SigningKey
) -> None:
    signature = sign(key, b"m")
    scalar = malleate(int.from_bytes(signature[32:], "little"))
    malleated = signature[:32] + scalar.to_bytes(32, "little")
    with pytest.raises(InvalidSignature, match="signature scalar S is not below the group order"):
        verify_strict(key.public_key, b"m", malleated)


@pytest.mark.parametrize("torsion", EIGHT_TORSION, ids=lambda encoding: encoding.hex()[:8])
def test_small_order_commitment_refused(torsion: bytes, key: SigningKey) -> None:
    signature = with_commitment(sign(key, b"m"), torsion)
    with pytest.raises(InvalidSignature, match="signature point R has small order"):
        verify_strict(key.public_key, b"m", signature)


def test_commitment_of_identity_refused_even_when_equation_holds(key: SigningKey) -> None:
    # With R = identity, S = k * a mod L satisfies [S]B = R + [k]A: valid for RFC 8032,
    # refused by the strict rule. cryptography itself accepts it.
    # The secret scalar a is the clamped first half of SHA-512(seed) (RFC 8032, 5.1.5).
    half = int.from_bytes(hashlib.sha512(key.seed).digest()[:32], "little")
    secret = half & ((1 << 254) - 8) | (1 << 254)
    challenge = hashlib.sha512(IDENTITY_ENCODING + key.public_key + b"m").digest()
    s = int.from_bytes(challenge, "little") * secret % L
    signature = IDENTITY_ENCODING + s.to_bytes(32, "little")
    Ed25519PublicKey.from_public_bytes(key.public_key).verify(signature, b"m")
    with pytest.raises(InvalidSignature, match="signature point R has small order"):
        verify_strict(key.public_key, b"m", signature)


@pytest.mark.parametrize(
    ("commitment", "reason"),
    [
        (encode_y(P + 3), "R is not canonical: y is not below the field prime"),
        (encode_y(1, x_is_odd=True), "R is not canonical: x = 0 with the sign bit set"),
        (encode_y(P - 1, x_is_odd=True), "R is not canonical: x = 0 with the sign bit set"),
        (encode_y(first_y_off_curve()), "R is not a point on the curve"),
    ],
    ids=["y>=p", "y=1,-0", "y=-1,-0", "off-curve"],
)
def test_malformed_commitment_refused(commitment: bytes, reason: str, key: SigningKey) -> None:
    signature = with_commitment(sign(key, b"m"), commitment)
    with pytest.raises(InvalidSignature, match=f"signature point {reason}"):
        verify_strict(key.public_key, b"m", signature)


def test_signature_for_another_key_refused(key: SigningKey) -> None:
    other = signing_key_from_seed(bytes(SEED_SIZE))
    with pytest.raises(InvalidSignature, match="signature does not match"):
        verify_strict(other.public_key, b"m", sign(key, b"m"))
    with pytest.raises(CryptographyInvalidSignature):
        Ed25519PublicKey.from_public_bytes(other.public_key).verify(sign(key, b"m"), b"m")


def test_is_valid_signature_mirrors_verify_strict(key: SigningKey) -> None:
    signature = sign(key, b"m")
    assert is_valid_signature(key.public_key, b"m", signature)
    assert not is_valid_signature(key.public_key, b"n", signature)
    assert not is_valid_signature(key.public_key[:31], b"m", signature)


# --- Properties ----------------------------------------------------------------------

seeds = st.binary(min_size=SEED_SIZE, max_size=SEED_SIZE)
messages = st.binary(max_size=256)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, message=messages)
def test_signature_of_any_seed_and_message_verifies(seed: bytes, message: bytes) -> None:
    signing_key = signing_key_from_seed(seed)
    assert len(signing_key.public_key) == PUBLIC_KEY_SIZE
    assert is_strict_public_key(signing_key.public_key)
    signature = sign(signing_key, message)
    assert len(signature) == SIGNATURE_SIZE
    verify_strict(signing_key.public_key, message, signature)


@settings(max_examples=40, deadline=None)
@given(message=messages, bit=st.integers(min_value=0, max_value=8 * SIGNATURE_SIZE - 1))
def test_any_flipped_signature_bit_is_refused(key: SigningKey, message: bytes, bit: int) -> None:
    tampered = flip_bit(sign(key, message), bit)
    assert not is_valid_signature(key.public_key, message, tampered)
