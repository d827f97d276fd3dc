"""Ed25519 keys, signing and strict verification.

Signing and the final verification equation come from `cryptography`. What it
does not give us is strictness: it accepts public keys of small order and of
mixed order, and signatures whose R has small order. Such keys and signatures
let one signature be valid for many messages or many keys, so the ledger
refuses them here, before the equation is checked.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.exceptions import InvalidSignature as _CryptographyInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from danangchain.errors import InvalidSignature

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
SEED_SIZE = 32

# Field prime, prime group order and curve constant of edwards25519 (RFC 8032, 5.1).
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, -1, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_SIGN_BIT = 1 << 255
_CACHE_SIZE = 65536

# Canonical encodings of the eight points of order 1, 2, 4 and 8 (ed25519-dalek's
# EIGHT_TORSION); tests check that they are exactly the points with [8]P = 0.
_SMALL_ORDER_ENCODINGS = frozenset(
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
)

# The verification equation on a strict key and signature: (public key, message, signature)
# -> whether [S]B = R + [h]A holds with R compared as encoded bytes (cofactorless).
Equation = Callable[[bytes, bytes, bytes], bool]

# Another implementation of the strict key test of a 32-byte key: canonical, on the curve,
# of prime order (libsodium's crypto_core_ed25519_is_valid_point in the node). Only its
# "strict" answer is taken; a key it refuses is judged, with the reason, by the core.
KeyCheck = Callable[[bytes], bool]

# A point in extended twisted Edwards coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, xy = T/Z.
_Point = tuple[int, int, int, int]
_IDENTITY: _Point = (0, 1, 1, 0)


class _PointDecodeError(ValueError):
    """32 bytes that are not the canonical encoding of a curve point."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 private seed with its public key; never shows the seed."""

    seed: bytes = field(repr=False)
    public_key: bytes
    # Kept so that sign() does not parse the seed again on every call.
    _private_key: Ed25519PrivateKey = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Load the private key and refuse a public key that does not belong to the seed."""
        if len(self.seed) != SEED_SIZE:
            raise ValueError(f"seed must be {SEED_SIZE} bytes, got {len(self.seed)}")
        private_key = Ed25519PrivateKey.from_private_bytes(self.seed)
        if _encode_public_key(private_key.public_key()) != self.public_key:
            raise ValueError("public key does not belong to the seed")
        # The dataclass is frozen; this is its one initialisation of a derived field.
        object.__setattr__(self, "_private_key", private_key)


def signing_key_from_seed(seed: bytes) -> SigningKey:
    """Derive the signing key of a 32-byte seed."""
    if len(seed) != SEED_SIZE:
        raise ValueError(f"seed must be {SEED_SIZE} bytes, got {len(seed)}")
    public_key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return SigningKey(seed=bytes(seed), public_key=_encode_public_key(public_key))


def sign(key: SigningKey, message: bytes) -> bytes:
    """Sign a message; Ed25519 is deterministic, so the same input gives the same signature."""
    return key._private_key.sign(message)


def is_strict_public_key(public_key: bytes) -> bool:
    """Tell whether bytes canonically encode a point of prime order L."""
    return len(public_key) == PUBLIC_KEY_SIZE and _public_key_defect(bytes(public_key)) is None


def verify_strict(
    public_key: bytes,
    message: bytes,
    signature: bytes,
    equation: Equation | None = None,
    key_check: KeyCheck | None = None,
) -> None:
    """Verify a signature strictly, or raise InvalidSignature saying what is wrong.

    `equation` checks the final equation once every strict check passed; by default
    `cryptography` does. Another implementation of the same cofactorless equation (the
    node's libsodium) leaves what is accepted unchanged. So does `key_check`, another
    implementation of the strict key test (this module's costs about 1.2 ms per new key).
    """
    # Verify the sizes first: only 32-byte keys may enter the caches.
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise InvalidSignature(f"public key must be {PUBLIC_KEY_SIZE} bytes, got {len(public_key)}")
    if len(signature) != SIGNATURE_SIZE:
        raise InvalidSignature(f"signature must be {SIGNATURE_SIZE} bytes, got {len(signature)}")
    public_key = bytes(public_key)
    signature = bytes(signature)
    # Verify the key: a small- or mixed-order key would accept forged signatures.
    if key_check is None or not key_check(public_key):
        defect = _public_key_defect(public_key)
        if defect is not None:
            raise InvalidSignature(defect)
    # Verify S < L, so that S + L cannot be a second valid signature.
    if int.from_bytes(signature[32:], "little") >= _L:
        raise InvalidSignature("signature scalar S is not below the group order")
    _check_commitment(signature[:32])
    holds = (equation or _cryptography_equation)(public_key, message, signature)
    if not holds:
        raise InvalidSignature(_explain_mismatch(signature[:32]))


def is_valid_signature(
    public_key: bytes,
    message: bytes,
    signature: bytes,
    equation: Equation | None = None,
    key_check: KeyCheck | None = None,
) -> bool:
    """Tell whether verify_strict accepts a signature."""
    try:
        verify_strict(public_key, message, signature, equation, key_check)
    except InvalidSignature:
        return False
    return True


def _cryptography_equation(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Check the verification equation with `cryptography` (OpenSSL)."""
    try:
        _load_public_key(public_key).verify(signature, message)
    except _CryptographyInvalidSignature:
        return False
    return True


def _encode_public_key(public_key: Ed25519PublicKey) -> bytes:
    """Return the 32-byte encoding of a cryptography public key."""
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@lru_cache(maxsize=_CACHE_SIZE)
def _public_key_defect(public_key: bytes) -> str | None:
    """Return why a 32-byte public key is not strict, or None if it is."""
    try:
        point = _decode_point(public_key)
    except _PointDecodeError as error:
        return f"public key {error}"
    if _has_small_order(point):
        return "public key has small order"
    if not _is_identity(_multiply(_L, point)):
        return "public key has a torsion component (mixed order)"
    return None


@lru_cache(maxsize=_CACHE_SIZE)
def _load_public_key(public_key: bytes) -> Ed25519PublicKey:
    """Load a strict public key into cryptography once per key."""
    return Ed25519PublicKey.from_public_bytes(public_key)


def _check_commitment(encoded: bytes) -> None:
    """Refuse a signature point R that is non-canonical or of small order."""
    # Only checks that need no square root run here: a square root costs about
    # as much as the whole verification. An R off the curve cannot equal the
    # canonical encoding that cryptography recomputes, so the equation refuses it.
    y, x_is_odd = _split_encoding(encoded)
    if y >= _P:
        raise InvalidSignature("signature point R is not canonical: y is not below the field prime")
    if x_is_odd and y in (1, _P - 1):
        raise InvalidSignature("signature point R is not canonical: x = 0 with the sign bit set")
    if encoded in _SMALL_ORDER_ENCODINGS:
        raise InvalidSignature("signature point R has small order")


def _explain_mismatch(encoded_commitment: bytes) -> str:
    """Say why a signature failed the equation: R off the curve, or no match."""
    try:
        _decode_point(encoded_commitment)
    except _PointDecodeError as error:
        return f"signature point R {error}"
    return "signature does not match"


def _split_encoding(encoded: bytes) -> tuple[int, bool]:
    """Split a 32-byte point encoding into y and whether x is odd."""
    value = int.from_bytes(encoded, "little")
    return value & (_SIGN_BIT - 1), bool(value & _SIGN_BIT)


def _decode_point(encoded: bytes) -> _Point:
    """Decode a canonical 32-byte point encoding (RFC 8032, 5.1.3)."""
    y, x_is_odd = _split_encoding(encoded)
    if y >= _P:
        raise _PointDecodeError("is not canonical: y is not below the field prime")
    x = _recover_x(y)
    if x == 0 and x_is_odd:
        raise _PointDecodeError("is not canonical: x = 0 with the sign bit set")
    if (x & 1) != x_is_odd:
        x = _P - x
    return (x, y, 1, x * y % _P)


def _recover_x(y: int) -> int:
    """Return a root x of the curve equation at y, or refuse a y off the curve."""
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    # One exponentiation computes sqrt(u / v) up to a factor sqrt(-1) (RFC 8032, 5.1.3).
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    vxx = v * x * x % _P
    if vxx == u:
        return x
    if vxx == _P - u:
        return x * _SQRT_M1 % _P
    raise _PointDecodeError("is not a point on the curve")


def _add(first: _Point, second: _Point) -> _Point:
    """Add two points (complete formula for a = -1, RFC 8032, 5.1.4)."""
    x1, y1, z1, t1 = first
    x2, y2, z2, t2 = second
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = 2 * t1 * t2 * _D % _P
    d = 2 * z1 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _double(point: _Point) -> _Point:
    """Double a point (RFC 8032, 5.1.4)."""
    x1, y1, z1, _ = point
    a = x1 * x1 % _P
    b = y1 * y1 % _P
    c = 2 * z1 * z1 % _P
    h = a + b
    e = h - (x1 + y1) * (x1 + y1)
    g = a - b
    f = c + g
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _multiply(scalar: int, point: _Point) -> _Point:
    """Multiply a point by a scalar by double-and-add."""
    # Variable time is fine: only public keys and public constants come here.
    result = _IDENTITY
    for bit in bin(scalar)[2:]:
        result = _double(result)
        if bit == "1":
            result = _add(result, point)
    return result


def _has_small_order(point: _Point) -> bool:
    """Tell whether [8]P is the identity, i.e. P is one of the eight torsion points."""
    return _is_identity(_double(_double(_double(point))))


def _is_identity(point: _Point) -> bool:
    """Tell whether a point is the neutral element (x = 0, y = 1)."""
    x, y, z, _ = point
    return x % _P == 0 and (y - z) % _P == 0
