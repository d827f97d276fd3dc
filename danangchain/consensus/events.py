"""What the consensus machine is told (events) and what it asks for (actions), and its
round timeouts. `Event` and `Action` are closed unions: a `match` over one of them ends
with `typing.assert_never`, so mypy reports a case that is not handled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from danangchain.block import Block
from danangchain.consensus.messages import Message, SigningRecord
from danangchain.validators import CommitCertificate, ValidatorSet, Vote

TIMEOUT_PROPOSE, TIMEOUT_PREVOTE, TIMEOUT_PRECOMMIT = "propose", "prevote", "precommit"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Round timeouts in ms: base + round * delta, capped so a healed network recovers fast."""

    propose_ms: int = 1000
    propose_delta_ms: int = 500
    prevote_ms: int = 500
    prevote_delta_ms: int = 250
    precommit_ms: int = 500
    precommit_delta_ms: int = 250
    cap_ms: int = 10_000

    def delay_ms(self, kind: str, round_: int) -> int:
        """Return the timeout of a kind for a round."""
        base, delta = {
            TIMEOUT_PROPOSE: (self.propose_ms, self.propose_delta_ms),
            TIMEOUT_PREVOTE: (self.prevote_ms, self.prevote_delta_ms),
            TIMEOUT_PRECOMMIT: (self.precommit_ms, self.precommit_delta_ms),
        }[kind]
        return min(base + round_ * delta, self.cap_ms)


# Events


@dataclass(frozen=True, slots=True)
class StartHeight:
    """Begin a height with its validator set; wait for transactions unless some are ready."""

    height: int
    validator_set: ValidatorSet
    txs_available: bool = True


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A proposal or vote from the network (or from this node's own past)."""

    message: Message


@dataclass(frozen=True, slots=True)
class BlockValidated:
    """The outcome of validating a block against the state (the paper's valid(v)), and
    whether its time was acceptable to this node's clock when it arrived (`timely`).

    Timeliness only decides a prevote for a fresh proposal (no proof of lock), as in
    proposer-based timestamps: a block that more than 2/3 prevoted or precommitted is
    followed whatever this node's clock says, so a node with a wrong clock cannot stall."""

    block_hash: bytes
    valid: bool
    timely: bool = True


@dataclass(frozen=True, slots=True)
class ProposalBlockReady:
    """The block this node built for a round it proposes in."""

    height: int
    round: int
    block: Block


@dataclass(frozen=True, slots=True)
class TimeoutFired:
    """A timeout scheduled earlier has expired."""

    kind: str
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class TxsAvailable:
    """Transactions wait in the mempool."""


@dataclass(frozen=True, slots=True)
class CertifiedBlockReceived:
    """A block and its commit certificate fetched from a peer (block sync)."""

    block: Block
    certificate: CommitCertificate


Event: TypeAlias = (
    StartHeight
    | MessageReceived
    | BlockValidated
    | ProposalBlockReady
    | TimeoutFired
    | TxsAvailable
    | CertifiedBlockReceived
)


# Actions


@dataclass(frozen=True, slots=True)
class PersistSigning:
    """Sync this record to disk before carrying out the actions after it."""

    record: SigningRecord


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send a signed message to every peer."""

    message: Message


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    """Fire TimeoutFired(kind, height, round) after delay_ms."""

    kind: str
    height: int
    round: int
    delay_ms: int


@dataclass(frozen=True, slots=True)
class RequestProposalBlock:
    """Build a block for (height, round) and answer with ProposalBlockReady."""

    height: int
    round: int


@dataclass(frozen=True, slots=True)
class ValidateBlock:
    """Validate a block against the state and answer with BlockValidated."""

    block: Block


@dataclass(frozen=True, slots=True)
class CommitBlock:
    """A block is decided: commit it with its certificate, then send StartHeight(height+1)."""

    block: Block
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class EvidenceFound:
    """Two conflicting signed votes by one validator for one (height, round, type)."""

    first: Vote
    second: Vote


@dataclass(frozen=True, slots=True)
class MessageDropped:
    """A message refused before use, with the reason (for counting)."""

    reason: str


@dataclass(frozen=True, slots=True)
class PeerAhead:
    """A peer speaks of a later height: fetch the missing blocks (block sync)."""

    height: int


Action: TypeAlias = (
    PersistSigning
    | Broadcast
    | ScheduleTimeout
    | RequestProposalBlock
    | ValidateBlock
    | CommitBlock
    | EvidenceFound
    | MessageDropped
    | PeerAhead
)
