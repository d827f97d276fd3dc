"""The node's signature checks: the core's strict rules, with libsodium for the equation.

Every strict check (sizes, a canonical key of prime order, canonical S, a canonical R not
of small order) is the core's own `ed25519.verify_strict`; only the final equation runs in
libsodium, which checks the same cofactorless equation as `cryptography` (R recomputed
from S, h and A, compared byte for byte) in about half the time. The key's checks run in
libsodium first too (`crypto_core_ed25519_is_valid_point`: canonical, on the curve, not of
small order, of order L: the very set of keys the core accepts, in 45 us instead of the
core's 1.1 ms of Python); a key it refuses goes through the core's checks, which say why.
So a node accepts exactly what an auditor running the core accepts;
tests/unit/test_node_signatures.py checks the two agree on the RFC 8032 vectors, on every
malformed case and on keys of every order, canonical or not.
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
RESULTS = ("valid", "invalid")


def sodium_equation(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Check the verification equation of a strict key and signature with libsodium."""
    try:
        crypto_sign_open(signature + message, public_key)
    except BadSignatureError:
        return False
    return True


@lru_cache(maxsize=65536)
def is_strict_public_key(public_key: bytes) -> bool:
    """Tell whether 32 bytes are a key the core's strict rules accept (libsodium's check)."""
    return bool(crypto_core_ed25519_is_valid_point(public_key))


def is_valid_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Tell whether the core's strict verifier accepts a signature (libsodium equation)."""
    return ed25519.is_valid_signature(
        public_key, message, signature, sodium_equation, is_strict_public_key
    )


def verify_transaction(tx: Transaction) -> None:
    """Verify a transaction's signature strictly; raise InvalidTransaction if it fails."""
    verify_transaction_signature(tx, sodium_equation, is_strict_public_key)


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
