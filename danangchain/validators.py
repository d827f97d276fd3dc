"""Validator sets, signed votes and commit certificates."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from danangchain import ed25519
from danangchain.address import compute_address
from danangchain.encoding import expect_bytes, expect_int, expect_list, expect_str, pack, unpack
from danangchain.errors import DecodeError, InvalidBlock
from danangchain.signing import compute_vote_signing_bytes

DOMAIN_VALIDATORS = "danangchain/validators/v1"
PREVOTE = "prevote"
PRECOMMIT = "precommit"
MAX_VALIDATORS = 256
MAX_NAME_SIZE = 64


@dataclass(frozen=True, slots=True)
class Validator:
    """One authority: its public key, a readable name and its voting power."""

    public_key: bytes
    name: str
    power: int = 1


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    """The validators that sign one height, ordered by address."""

    validators: tuple[Validator, ...]

    @staticmethod
    def of(validators: list[Validator] | tuple[Validator, ...]) -> ValidatorSet:
        """Return a set ordered by address, refusing an empty set and duplicate keys."""
        if not validators:
            raise InvalidBlock("a validator set needs at least one validator")
        keys = {v.public_key for v in validators}
        if len(keys) != len(validators):
            raise InvalidBlock("a validator set lists the same key twice")
        ordered = sorted(validators, key=lambda v: compute_address(v.public_key))
        return ValidatorSet(tuple(ordered))

    @property
    def total_power(self) -> int:
        """Return the sum of every validator's power."""
        return sum(v.power for v in self.validators)

    @property
    def quorum(self) -> int:
        """Return the smallest power that is more than 2/3 of the total."""
        return self.total_power * 2 // 3 + 1

    def power_of(self, public_key: bytes) -> int:
        """Return a key's voting power, 0 for a key outside the set."""
        for validator in self.validators:
            if validator.public_key == public_key:
                return validator.power
        return 0

    def proposer(self, height: int, round_: int) -> Validator:
        """Return the proposer of (height, round): round-robin by address order."""
        return self.validators[(height + round_) % len(self.validators)]


def encode_validator_set(validator_set: ValidatorSet) -> bytes:
    """Encode a validator set canonically."""
    return pack([[v.public_key, v.name, v.power] for v in validator_set.validators])


def decode_validator_set(data: bytes) -> ValidatorSet:
    """Decode a validator set and check its order and bounds."""
    return decode_validator_set_fields(unpack(data))


def decode_validator_set_fields(items: Any) -> ValidatorSet:
    """Build a validator set from its decoded [key, name, power] entries, checking them."""
    if not isinstance(items, list) or not 0 < len(items) <= MAX_VALIDATORS:
        raise DecodeError(f"validator set: expected 1..{MAX_VALIDATORS} entries")
    validators = []
    for item in items:
        key, name, power = expect_list(item, 3, "validator")
        validators.append(
            Validator(
                public_key=expect_bytes(key, "validator key", size=ed25519.PUBLIC_KEY_SIZE),
                name=expect_str(name, "validator name", MAX_NAME_SIZE),
                power=expect_int(power, "validator power", minimum=1, maximum=2**32),
            )
        )
    validator_set = ValidatorSet.of(validators)
    if validator_set.validators != tuple(validators):
        raise DecodeError("validator set is not ordered by address")
    return validator_set


def compute_validator_set_hash(validator_set: ValidatorSet) -> bytes:
    """Return the hash that block headers commit to."""
    return hashlib.sha256(pack([DOMAIN_VALIDATORS, encode_validator_set(validator_set)])).digest()


@dataclass(frozen=True, slots=True)
class Vote:
    """A validator's signed prevote or precommit for a block hash (None: nil)."""

    vote_type: str
    height: int
    round: int
    block_hash: bytes | None
    validator: bytes
    signature: bytes


def sign_vote(
    key: ed25519.SigningKey,
    chain_id: str,
    vote_type: str,
    height: int,
    round_: int,
    block_hash: bytes | None,
) -> Vote:
    """Sign a vote with a validator's key."""
    message = compute_vote_signing_bytes(chain_id, vote_type, height, round_, block_hash)
    return Vote(vote_type, height, round_, block_hash, key.public_key, ed25519.sign(key, message))


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    """More than 2/3 of a height's validators' precommits for one block."""

    height: int
    round: int
    block_hash: bytes
    signatures: tuple[tuple[bytes, bytes], ...]


def make_certificate(votes: list[Vote]) -> CommitCertificate:
    """Build a certificate from precommits for one (height, round, block), sorted by key."""
    first = votes[0]
    if first.block_hash is None:
        raise InvalidBlock("a certificate cannot certify nil")
    for vote in votes:
        same = (vote.vote_type, vote.height, vote.round, vote.block_hash)
        if same != (PRECOMMIT, first.height, first.round, first.block_hash):
            raise InvalidBlock("a certificate's votes must be precommits for one block")
    signatures = tuple(sorted((v.validator, v.signature) for v in votes))
    return CommitCertificate(first.height, first.round, first.block_hash, signatures)


def encode_certificate_fields(cert: CommitCertificate) -> list[Any]:
    """Return a certificate's fixed-order field array."""
    return [cert.height, cert.round, cert.block_hash, [list(pair) for pair in cert.signatures]]


def encode_certificate(cert: CommitCertificate) -> bytes:
    """Encode a certificate canonically."""
    return pack(encode_certificate_fields(cert))


def decode_certificate_fields(value: Any) -> CommitCertificate:
    """Build a certificate from its decoded field array."""
    height, round_, block_hash, signatures = expect_list(value, 4, "certificate")
    if not isinstance(signatures, list) or len(signatures) > MAX_VALIDATORS:
        raise DecodeError(f"certificate signatures: expected at most {MAX_VALIDATORS}")
    pairs = []
    for pair in signatures:
        key, signature = expect_list(pair, 2, "certificate signature")
        pairs.append(
            (
                expect_bytes(key, "signer", size=ed25519.PUBLIC_KEY_SIZE),
                expect_bytes(signature, "signature", size=ed25519.SIGNATURE_SIZE),
            )
        )
    return CommitCertificate(
        height=expect_int(height, "certificate height"),
        round=expect_int(round_, "certificate round", maximum=2**31),
        block_hash=expect_bytes(block_hash, "certificate block hash", size=32),
        signatures=tuple(pairs),
    )


def decode_certificate(data: bytes) -> CommitCertificate:
    """Decode a certificate from canonical bytes."""
    return decode_certificate_fields(unpack(data))


def compute_certificate_hash(cert: CommitCertificate | None) -> bytes:
    """Return the hash a header commits to for the previous block's certificate."""
    if cert is None:
        return bytes(32)
    return hashlib.sha256(encode_certificate(cert)).digest()


def verify_certificate(
    cert: CommitCertificate,
    chain_id: str,
    height: int,
    block_hash: bytes,
    validator_set: ValidatorSet,
) -> None:
    """Check a certificate against a height's validator set; raise InvalidBlock if it fails."""
    # Verify it certifies the block at hand.
    if cert.height != height or cert.block_hash != block_hash:
        raise InvalidBlock(f"certificate is for height {cert.height}, not block {height}")
    # Verify signers are sorted and unique, so one validator cannot count twice.
    keys = [key for key, _ in cert.signatures]
    if keys != sorted(set(keys)):
        raise InvalidBlock("certificate lists a signer twice or out of order")
    message = compute_vote_signing_bytes(chain_id, PRECOMMIT, height, cert.round, block_hash)
    power = 0
    for key, signature in cert.signatures:
        signer_power = validator_set.power_of(key)
        if signer_power == 0:
            raise InvalidBlock(f"certificate is signed by {key.hex()}, not a validator")
        if not ed25519.is_valid_signature(key, message, signature):
            raise InvalidBlock(f"certificate signature of {key.hex()} does not verify")
        power += signer_power
    # Verify more than 2/3 of the voting power signed.
    if power < validator_set.quorum:
        raise InvalidBlock(
            f"certificate has power {power}, needs {validator_set.quorum} "
            f"of {validator_set.total_power}"
        )
