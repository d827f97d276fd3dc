"""The node's verifier (libsodium for the equation) accepts exactly what the core accepts."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from danangchain import ed25519
from danangchain.ed25519 import (
    SEED_SIZE,
    SigningKey,
    sign,
    signing_key_from_seed,
    verify_strict,
)
from danangchain.errors import InvalidSignature
from danangchain.transaction import RecordBody, sign_transaction, verify_transaction_signature
from node.chain import signatures
from tests.unit.test_ed25519 import (
    EIGHT_TORSION,
    IDENTITY_ENCODING,
    VECTORS,
    L,
    P,
    affine_add,
    affine_decode,
    affine_encode,
    encode_y,
    first_y_off_curve,
    flip_bit,
    with_commitment,
)

Case = tuple[bytes, bytes, bytes]


def refusals(case: Case) -> tuple[str | None, str | None]:
    """Return why the core, then the node, refuses a signature (None: accepted)."""
    answers: list[str | None] = []
    for equation, key_check in (
        (None, None),
        (signatures.sodium_equation, signatures.sodium_key_check),
    ):
        try:
            verify_strict(*case, equation=equation, key_check=key_check)
            answers.append(None)
        except InvalidSignature as error:
            answers.append(str(error))
    return answers[0], answers[1]


def assert_same_verdict(case: Case) -> None:
    core, node = refusals(case)
    assert core == node
    assert signatures.is_valid_signature(*case) == (core is None)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return signing_key_from_seed(bytes(range(SEED_SIZE)))


def malformed_cases(key: SigningKey) -> list[Case]:
    """Keys and signatures the strict rules refuse, and near misses of the equation."""
    good = sign(key, b"m")
    s = int.from_bytes(good[32:], "little")
    mixed_key = affine_encode(
        affine_add(affine_decode(key.public_key), affine_decode(EIGHT_TORSION[1]))
    )
    mixed_r = affine_encode(affine_add(affine_decode(good[:32]), affine_decode(EIGHT_TORSION[2])))
    cases: list[Case] = [(key.public_key, b"m", good), (key.public_key, b"n", good)]
    cases += [(torsion, b"m", good) for torsion in EIGHT_TORSION]
    cases += [(IDENTITY_ENCODING, b"any", IDENTITY_ENCODING + bytes(32))]
    cases += [(mixed_key, b"m", good), (encode_y(P), b"", bytes(64))]
    cases += [(encode_y(first_y_off_curve()), b"", bytes(64)), (key.public_key[:31], b"m", good)]
    cases += [(key.public_key, b"m", good[:32] + (s + L).to_bytes(32, "little"))]
    cases += [(key.public_key, b"m", with_commitment(good, t)) for t in EIGHT_TORSION]
    cases += [
        (key.public_key, b"m", with_commitment(good, r))
        for r in (encode_y(P + 3), encode_y(1, True), encode_y(P - 1, True), mixed_r)
    ]
    cases += [(key.public_key, b"m", with_commitment(good, encode_y(first_y_off_curve())))]
    return cases


def test_node_verifier_agrees_with_core_on_reference_vectors() -> None:
    for vector in VECTORS:
        case = (vector.public_key, vector.message, vector.signature)
        assert refusals(case) == (None, None), f"line {vector.line}"
        assert_same_verdict((vector.public_key, vector.message + b"x", vector.signature))


def test_node_verifier_agrees_with_core_on_malformed_keys_and_signatures(key: SigningKey) -> None:
    for case in malformed_cases(key):
        assert_same_verdict(case)


def test_node_verifier_refuses_identity_commitment_even_when_equation_holds(
    key: SigningKey,
) -> None:
    half = int.from_bytes(hashlib.sha512(key.seed).digest()[:32], "little")
    secret = half & ((1 << 254) - 8) | (1 << 254)
    challenge = hashlib.sha512(IDENTITY_ENCODING + key.public_key + b"m").digest()
    s = int.from_bytes(challenge, "little") * secret % L
    case = (key.public_key, b"m", IDENTITY_ENCODING + s.to_bytes(32, "little"))
    assert refusals(case) == ("signature point R has small order",) * 2


def test_node_transaction_check_matches_core(key: SigningKey) -> None:
    tx = sign_transaction(key, "chain", 1, RecordBody("invoice", bytes(32)))
    signatures.verify_transaction(tx)
    forged = type(tx)(tx.chain_id, tx.sender, 2, tx.body, tx.signature)
    for check in (verify_transaction_signature, signatures.verify_transaction):
        with pytest.raises(Exception, match="signature does not verify"):
            check(forged)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.binary(min_size=SEED_SIZE, max_size=SEED_SIZE),
    message=st.binary(max_size=128),
    bit=st.integers(min_value=-1, max_value=8 * 64 - 1),
)
def test_node_verifier_agrees_with_core_on_any_flipped_bit(
    seed: bytes, message: bytes, bit: int
) -> None:
    signing_key = signing_key_from_seed(seed)
    signature = sign(signing_key, message)
    if bit >= 0:
        signature = flip_bit(signature, bit)
    assert_same_verdict((signing_key.public_key, message, signature))


def core_finds_strict(public_key: bytes) -> bool:
    """Tell whether the core's own key test (not libsodium's) finds a key strict."""
    return ed25519._public_key_defect(public_key) is None


def test_key_check_agrees_with_core_on_every_torsion_class(key: SigningKey) -> None:
    """A prime-order key plus each of the eight torsion points, and each torsion point:
    only the key itself is strict, for libsodium as for the core."""
    keys = [signing_key_from_seed(bytes([seed]) * SEED_SIZE).public_key for seed in range(8)]
    for public_key in [key.public_key, *keys]:
        point = affine_decode(public_key)
        for torsion in EIGHT_TORSION:
            candidate = affine_encode(affine_add(point, affine_decode(torsion)))
            expected = torsion == IDENTITY_ENCODING
            assert core_finds_strict(candidate) is expected
            assert signatures.sodium_key_check(candidate) is expected
    for torsion in EIGHT_TORSION:
        assert not signatures.sodium_key_check(torsion)


def test_key_check_agrees_with_core_on_non_canonical_and_off_curve_keys(key: SigningKey) -> None:
    y = int.from_bytes(key.public_key, "little") & ((1 << 255) - 1)
    odd = bool(key.public_key[31] & 0x80)
    candidates = [encode_y(P + k, sign) for k in range(19) for sign in (False, True)]
    candidates += [encode_y(1, True), encode_y(P - 1, True), encode_y(first_y_off_curve())]
    candidates += [encode_y(y, not odd), encode_y(y + P, odd) if y + P < 2**255 else bytes(32)]
    for candidate in candidates:
        assert signatures.sodium_key_check(candidate) == core_finds_strict(candidate), candidate


@settings(max_examples=200, deadline=None)
@given(public_key=st.binary(min_size=32, max_size=32))
def test_key_check_agrees_with_core_on_any_32_bytes(public_key: bytes) -> None:
    assert signatures.sodium_key_check(public_key) == core_finds_strict(public_key)
