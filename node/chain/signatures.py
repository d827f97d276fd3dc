"""The node's signature checks: the core's strict rules, with libsodium for the equation
and for the key test.

Every strict check (sizes, a canonical key of prime order, canonical S, a canonical R not
of small order) is the core's own `ed25519.verify_strict`, with two parts done by
libsodium: the final equation, the same cofactorless equation as `cryptography` (R
recomputed from S, h and A, compared byte for byte) in about half the time; and the test
that a key is canonical, on the curve and of prime order (`is_valid_point`), which takes
30 µs where the core's Python takes 1.2 ms for each key it has not seen. A key libsodium
refuses is judged again by the core, which gives the reason. So a node accepts exactly
what an auditor running the core accepts; tests/unit/test_node_signatures.py checks the
two agree on the RFC 8032 vectors, on every malformed case and on every torsion class.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from nacl.bindings import crypto_core_ed25519_is_valid_point, crypto_sign_open
from nacl.exceptions import BadSignatureError

from danangchain import ed25519
from danangchain.errors import InvalidTransaction
from danangchain.transaction import Transaction, verify_transaction_signature

KINDS = ("transaction", "vote", "peer_request")
KEY_CACHE_SIZE = 65_536
RESULTS = ("valid", "invalid")


def sodium_equation(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Check the verification equation of a strict key and signature with libsodium."""
    try:
        crypto_sign_open(signature + message, public_key)
    except BadSignatureError:
        return False
    return True


@lru_cache(maxsize=KEY_CACHE_SIZE)
def sodium_key_check(public_key: bytes) -> bool:
    """Tell whether libsodium finds a 32-byte key canonical, on the curve, of prime order
    and not of small order: the core's strict key test. Remembered per key (30 µs each,
    most of a signature check's 45)."""
    return bool(crypto_core_ed25519_is_valid_point(public_key))


def is_valid_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Tell whether the core's strict verifier accepts a signature (libsodium's parts)."""
    return ed25519.is_valid_signature(
        public_key, message, signature, sodium_equation, sodium_key_check
    )


def verify_transaction(tx: Transaction) -> None:
    """Verify a transaction's signature strictly; raise InvalidTransaction if it fails."""
    verify_transaction_signature(tx, sodium_equation, sodium_key_check)


class SignatureChecks:
    """One node's signature checks, counted by (kind, result): the exact numbers its
    /metrics exports. Each node owns one, so two nodes in a process never mix counts."""

    def __init__(self) -> None:
        self.checked: Counter[tuple[str, str]] = Counter()

    def is_valid(self, public_key: bytes, message: bytes, signature: bytes, kind: str) -> bool:
        """Check a consensus message's ("vote") or a peer request's signature; count it."""
        valid = is_valid_signature(public_key, message, signature)
        self.checked[kind, "valid" if valid else "invalid"] += 1
        return valid

    def verify_transaction(self, tx: Transaction) -> None:
        """Verify a transaction's signature; count it; raise InvalidTransaction if it fails."""
        try:
            verify_transaction(tx)
        except InvalidTransaction:
            self.checked["transaction", "invalid"] += 1
            raise
        self.checked["transaction", "valid"] += 1
