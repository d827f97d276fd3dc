"""Consensus messages and the durable signing record, with their wire and store codecs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from danangchain import ed25519
from danangchain.block import Block, decode_block, encode_block
from danangchain.encoding import (
    expect_bytes,
    expect_int,
    expect_list,
    expect_optional_bytes,
    expect_str,
    pack,
    unpack,
)
from danangchain.errors import DecodeError
from danangchain.signing import compute_proposal_signing_bytes, compute_vote_signing_bytes
from danangchain.validators import PRECOMMIT, PREVOTE, Vote

STEP_PROPOSE, STEP_PREVOTE, STEP_PRECOMMIT = 0, 1, 2
STEP_OF_VOTE = {PREVOTE: STEP_PREVOTE, PRECOMMIT: STEP_PRECOMMIT}
MAX_ROUND = 2**31

Verify = Callable[[bytes, bytes, bytes], bool]


@dataclass(frozen=True, slots=True)
class Proposal:
    """The proposer's signed offer of a block for (height, round); valid_round -1 if fresh."""

    height: int
    round: int
    block: Block
    valid_round: int
    proposer: bytes
    signature: bytes

    @property
    def block_hash(self) -> bytes:
        """Return the hash of the proposed block."""
        return self.block.hash


Message = Proposal | Vote


def sign_proposal(
    key: ed25519.SigningKey,
    chain_id: str,
    height: int,
    round_: int,
    block: Block,
    valid_round: int,
) -> Proposal:
    """Sign a proposal with the proposer's key."""
    message = compute_proposal_signing_bytes(chain_id, height, round_, block.hash, valid_round)
    return Proposal(height, round_, block, valid_round, key.public_key, ed25519.sign(key, message))


def is_signed_by_sender(chain_id: str, message: Message, verify: Verify) -> bool:
    """Check the signature of a proposal or a vote against its claimed sender."""
    if isinstance(message, Proposal):
        signed = compute_proposal_signing_bytes(
            chain_id, message.height, message.round, message.block_hash, message.valid_round
        )
        return verify(message.proposer, signed, message.signature)
    signed = compute_vote_signing_bytes(
        chain_id, message.vote_type, message.height, message.round, message.block_hash
    )
    return verify(message.validator, signed, message.signature)


def encode_message(message: Message) -> bytes:
    """Encode a consensus message for the wire."""
    if isinstance(message, Proposal):
        return pack(
            [
                "proposal",
                message.height,
                message.round,
                encode_block(message.block),
                message.valid_round,
                message.proposer,
                message.signature,
            ]
        )
    return pack(
        [
            "vote",
            message.vote_type,
            message.height,
            message.round,
            message.block_hash,
            message.validator,
            message.signature,
        ]
    )


def decode_message(data: bytes) -> Message:
    """Decode a consensus message; raise DecodeError if malformed."""
    value = unpack(data)
    if not isinstance(value, list) or not value:
        raise DecodeError("consensus message: expected a tagged array")
    if value[0] == "proposal":
        _, height, round_, block, valid_round, proposer, signature = expect_list(
            value, 7, "proposal"
        )
        return Proposal(
            height=expect_int(height, "height", minimum=1),
            round=expect_int(round_, "round", maximum=MAX_ROUND),
            block=decode_block(expect_bytes(block, "block")),
            valid_round=expect_int(valid_round, "valid_round", minimum=-1, maximum=MAX_ROUND),
            proposer=expect_bytes(proposer, "proposer", size=ed25519.PUBLIC_KEY_SIZE),
            signature=expect_bytes(signature, "signature", size=ed25519.SIGNATURE_SIZE),
        )
    if value[0] == "vote":
        _, vote_type, height, round_, block_hash, validator, signature = expect_list(
            value, 7, "vote"
        )
        vote_type = expect_str(vote_type, "vote type", 16)
        if vote_type not in (PREVOTE, PRECOMMIT):
            raise DecodeError(f"vote type {vote_type!r} is not prevote or precommit")
        return Vote(
            vote_type=vote_type,
            height=expect_int(height, "height", minimum=1),
            round=expect_int(round_, "round", maximum=MAX_ROUND),
            block_hash=expect_optional_bytes(block_hash, "block_hash", 32),
            validator=expect_bytes(validator, "validator", size=ed25519.PUBLIC_KEY_SIZE),
            signature=expect_bytes(signature, "signature", size=ed25519.SIGNATURE_SIZE),
        )
    raise DecodeError(f"unknown consensus message {value[0]!r}")


# The durable signing record


@dataclass(frozen=True, slots=True)
class SigningRecord:
    """What a validator last signed and its lock: synced to disk before a message leaves."""

    height: int
    round: int
    step: int
    value: bytes | None
    locked_round: int = -1
    locked_block: Block | None = None
    valid_round: int = -1
    valid_block: Block | None = None
    # Own signed messages of this height (recent rounds), re-sent after a restart: a peer
    # may need them, and the validator cannot sign them again once it has moved past them.
    messages: tuple[Message, ...] = ()


def encode_signing_record(record: SigningRecord) -> bytes:
    """Encode a signing record for the node's store."""

    def block_or_none(block: Block | None) -> bytes | None:
        return None if block is None else encode_block(block)

    return pack(
        [
            record.height,
            record.round,
            record.step,
            record.value,
            record.locked_round,
            block_or_none(record.locked_block),
            record.valid_round,
            block_or_none(record.valid_block),
            [encode_message(m) for m in record.messages],
        ]
    )


def decode_signing_record(data: bytes) -> SigningRecord:
    """Decode a signing record from the node's store."""
    fields: list[Any] = expect_list(unpack(data), 9, "signing record")
    height, round_, step, value, locked_round, locked, valid_round, valid, messages = fields
    if not isinstance(messages, list):
        raise DecodeError("signing record: messages must be an array")
    return SigningRecord(
        height=expect_int(height, "height"),
        round=expect_int(round_, "round", maximum=MAX_ROUND),
        step=expect_int(step, "step", maximum=STEP_PRECOMMIT),
        value=expect_optional_bytes(value, "value", 32),
        locked_round=expect_int(locked_round, "locked_round", minimum=-1),
        locked_block=None if locked is None else decode_block(expect_bytes(locked, "locked")),
        valid_round=expect_int(valid_round, "valid_round", minimum=-1),
        valid_block=None if valid is None else decode_block(expect_bytes(valid, "valid")),
        messages=tuple(decode_message(expect_bytes(m, "message")) for m in messages),
    )
