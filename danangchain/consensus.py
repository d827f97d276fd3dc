"""Tendermint BFT consensus as a pure, deterministic state machine.

The algorithm is Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on BFT
consensus" (2018); CONSENSUS.md restates its rules, numbered as in the comments below.
`Consensus.step(event)` takes one event (a message, a timeout, a validation result, ...)
and returns the actions the caller must carry out in order: persist the signing record
(before the next broadcast leaves), broadcast, schedule a timeout, validate a block,
build a proposal, commit. No clock, socket or disk is touched here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
from danangchain.errors import DanangChainError, DecodeError
from danangchain.signing import compute_proposal_signing_bytes, compute_vote_signing_bytes
from danangchain.validators import (
    PRECOMMIT,
    PREVOTE,
    CommitCertificate,
    ValidatorSet,
    Vote,
    make_certificate,
    verify_certificate,
)

STEP_PROPOSE, STEP_PREVOTE, STEP_PRECOMMIT = 0, 1, 2
STEP_OF_VOTE = {PREVOTE: STEP_PREVOTE, PRECOMMIT: STEP_PRECOMMIT}
TIMEOUT_PROPOSE, TIMEOUT_PREVOTE, TIMEOUT_PRECOMMIT = "propose", "prevote", "precommit"
MAX_ROUND = 2**31
MAX_BUFFERED_FUTURE_MESSAGES = 4096
MAX_EVIDENCE = 1024
MAX_VALUES_PER_VOTER = 3
GOSSIP_ROUNDS = 16
KEPT_OWN_ROUNDS = 8

Verify = Callable[[bytes, bytes, bytes], bool]


# Messages


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


# Timeouts


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


Event = (
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


Action = (
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


# The state machine


@dataclass
class _HeightState:
    """Everything a validator tracks within one height."""

    validator_set: ValidatorSet
    proposals: dict[int, Proposal] = field(default_factory=dict)
    blocks: dict[bytes, Block] = field(default_factory=dict)
    validity: dict[bytes, bool] = field(default_factory=dict)
    untimely: set[bytes] = field(default_factory=set)
    validating: set[bytes] = field(default_factory=set)
    # Every distinct value a validator voted for: an equivocator's votes all count, as
    # the paper counts messages, and relaying them lets peers check a proof of lock.
    votes: dict[tuple[int, str], dict[bytes, list[Vote]]] = field(default_factory=dict)
    senders: dict[int, set[bytes]] = field(default_factory=dict)
    fired: set[tuple[int, int]] = field(default_factory=set)


class Consensus:
    """One validator's view of consensus; `step` is its only entry point."""

    def __init__(
        self,
        chain_id: str,
        key: ed25519.SigningKey | None,
        timeouts: Timeouts = Timeouts(),
        restored: SigningRecord | None = None,
        verify: Verify = ed25519.is_valid_signature,
        quorum: Callable[[ValidatorSet], int] | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.key = key
        self.timeouts = timeouts
        self.verify = verify
        self._quorum = quorum or (lambda validator_set: validator_set.quorum)
        self.restored = restored
        self.last_signed = (
            (-1, -1, -1) if restored is None else (restored.height, restored.round, restored.step)
        )
        self.last_signed_value = None if restored is None else restored.value
        self.height = 0
        self.round = 0
        self.step_ = STEP_PROPOSE
        self.decided = True  # nothing to decide until StartHeight
        self.waiting_for_txs = False
        self.locked_round, self.valid_round = -1, -1
        self.locked_block: Block | None = None
        self.valid_block: Block | None = None
        self.state: _HeightState | None = None
        self.future: list[Message] = []
        self.evidence: list[EvidenceFound] = []
        self._out: list[Action] = []

    # Entry point

    def step(self, event: Event) -> list[Action]:
        """Apply one event and return the actions to carry out, in order."""
        self._out = []
        if isinstance(event, StartHeight):
            self._start_height(event)
        elif isinstance(event, MessageReceived):
            self._receive(event.message)
        elif isinstance(event, BlockValidated):
            self._on_validated(event)
        elif isinstance(event, ProposalBlockReady):
            self._on_proposal_block(event)
        elif isinstance(event, TimeoutFired):
            self._on_timeout(event)
        elif isinstance(event, TxsAvailable):
            self._wake()
        elif isinstance(event, CertifiedBlockReceived):
            self._on_certified_block(event)
        self._evaluate()
        return self._out

    # Helpers over the vote sets

    @property
    def quorum(self) -> int:
        """Return the power that is more than 2/3 of this height's set."""
        assert self.state is not None
        return self._quorum(self.state.validator_set)

    def _power(self, round_: int, vote_type: str, value: Any = ...) -> int:
        """Return the power of votes of a round and type, for one value or (default) any."""
        assert self.state is not None
        votes = self.state.votes.get((round_, vote_type), {})
        return sum(
            self.state.validator_set.power_of(validator)
            for validator, cast in votes.items()
            if value is ... or any(v.block_hash == value for v in cast)
        )

    def _is_validator(self) -> bool:
        assert self.state is not None
        return self.key is not None and self.state.validator_set.power_of(self.key.public_key) > 0

    def _validity(self, block_hash: bytes) -> bool | None:
        """Return whether a block is valid, asking for validation if not known yet."""
        assert self.state is not None
        known = self.state.validity.get(block_hash)
        if known is None and block_hash not in self.state.validating:
            block = self.state.blocks.get(block_hash)
            if block is not None:
                self.state.validating.add(block_hash)
                self._out.append(ValidateBlock(block))
        return known

    def gossip_set(self) -> list[Message]:
        """Return the messages to re-send so lagging peers can catch up within this height:
        recent proposals, every prevote for a value (proofs of lock), this round's votes,
        and this validator's own votes of recent rounds (a peer may still be in them)."""
        if self.state is None or self.decided:
            return []
        me = self.key.public_key if self.key is not None else None
        first = self.round - GOSSIP_ROUNDS
        messages: list[Message] = [p for r, p in sorted(self.state.proposals.items()) if r >= first]
        for (round_, vote_type), votes in sorted(self.state.votes.items()):
            if round_ < first:
                continue
            for cast in votes.values():
                messages.extend(
                    v
                    for v in cast
                    if round_ == self.round
                    or v.validator == me
                    or (vote_type == PREVOTE and v.block_hash is not None)
                )
        return messages

    # Heights and rounds

    def _start_height(self, event: StartHeight) -> None:
        self.height = event.height
        self.state = _HeightState(event.validator_set)
        self.decided = False
        self.locked_round, self.locked_block = -1, None
        self.valid_round, self.valid_block = -1, None
        first_round = 0
        record = self.restored
        if record is not None and record.height == event.height:
            # Recover the lock after a restart: forgetting it could break agreement.
            self.locked_round, self.locked_block = record.locked_round, record.locked_block
            self.valid_round, self.valid_block = record.valid_round, record.valid_block
            for block in (record.locked_block, record.valid_block):
                if block is not None:
                    self.state.blocks[block.hash] = block
                    self.state.validity[block.hash] = True
            for message in record.messages:
                if message.height == event.height:
                    if isinstance(message, Proposal):
                        self._accept_proposal(message)
                    else:
                        self._accept_vote(message)
            # Rejoin the round it was in: it may re-sign what it signed, or a later step.
            first_round = record.round
        self.round = first_round
        self.step_ = STEP_PROPOSE
        self.waiting_for_txs = not event.txs_available
        if not self.waiting_for_txs:
            self._start_round(first_round)
        buffered, self.future = self.future, []
        for message in buffered:
            self._receive(message)

    def _wake(self) -> None:
        """Start the height's first round once there is something to agree on."""
        if self.waiting_for_txs and not self.decided:
            self.waiting_for_txs = False
            self._start_round(self.round)

    def _start_round(self, round_: int) -> None:
        """Rule 1: enter a round; propose if it is ours, else wait for the proposal."""
        assert self.state is not None
        self.round, self.step_ = round_, STEP_PROPOSE
        proposer = self.state.validator_set.proposer(self.height, round_)
        # Every node, the proposer too, times out: a proposer that cannot propose (its
        # block builder is slow, or it restarted into this round) must not stall the round.
        self._schedule(TIMEOUT_PROPOSE, round_)
        if self.key is not None and proposer.public_key == self.key.public_key:
            if self.valid_block is not None:
                self._propose(self.valid_block, self.valid_round)
            else:
                self._out.append(RequestProposalBlock(self.height, round_))

    def _schedule(self, kind: str, round_: int) -> None:
        self._out.append(
            ScheduleTimeout(kind, self.height, round_, self.timeouts.delay_ms(kind, round_))
        )

    # Signing, guarded by the durable record

    def _may_sign(self, round_: int, step: int, value: bytes | None) -> bool:
        """Refuse to sign below what was last signed, or a different value at the same step."""
        if not self._is_validator():
            return False
        position = (self.height, round_, step)
        if position < self.last_signed:
            return False
        return not (position == self.last_signed and value != self.last_signed_value)

    def _record(self, message: Message, step: int) -> None:
        """Note a message as signed and ask for the record to be synced before it leaves."""
        value = message.block_hash
        self.last_signed, self.last_signed_value = (self.height, message.round, step), value
        if isinstance(message, Proposal):
            self._accept_proposal(message)
        else:
            self._accept_vote(message)
        self._out.append(
            PersistSigning(
                SigningRecord(
                    self.height,
                    message.round,
                    step,
                    value,
                    self.locked_round,
                    self.locked_block,
                    self.valid_round,
                    self.valid_block,
                    self._own_recent_messages(),
                )
            )
        )

    def _own_recent_messages(self) -> tuple[Message, ...]:
        """Return this validator's own messages of this height from recent rounds."""
        assert self.state is not None and self.key is not None
        me, first = self.key.public_key, self.round - KEPT_OWN_ROUNDS
        own: list[Message] = [
            p for r, p in self.state.proposals.items() if p.proposer == me and r == self.round
        ]
        for (round_, _), votes in self.state.votes.items():
            if round_ >= first:
                own.extend(votes.get(me, []))
        return tuple(own)

    def _propose(self, block: Block, valid_round: int) -> None:
        assert self.state is not None and self.key is not None
        if not self._may_sign(self.round, STEP_PROPOSE, block.hash):
            return
        proposal = sign_proposal(
            self.key, self.chain_id, self.height, self.round, block, valid_round
        )
        self.state.validity[block.hash] = True  # built or validated by this node already
        self._record(proposal, STEP_PROPOSE)
        self._out.append(Broadcast(proposal))

    def _vote(self, vote_type: str, block_hash: bytes | None) -> None:
        """Sign and broadcast a vote for the current round, and count it."""
        step = STEP_OF_VOTE[vote_type]
        self.step_ = step
        if not self._may_sign(self.round, step, block_hash):
            return
        assert self.key is not None
        signed = compute_vote_signing_bytes(
            self.chain_id, vote_type, self.height, self.round, block_hash
        )
        vote = Vote(
            vote_type,
            self.height,
            self.round,
            block_hash,
            self.key.public_key,
            ed25519.sign(self.key, signed),
        )
        self._record(vote, step)
        self._out.append(Broadcast(vote))

    # Receiving messages

    def _receive(self, message: Message) -> None:
        if self.state is None or message.height > self.height:
            self._buffer_future(message)
            return
        if message.height < self.height or self.decided:
            self._out.append(MessageDropped("old height"))
            return
        sender = message.proposer if isinstance(message, Proposal) else message.validator
        if self.state.validator_set.power_of(sender) == 0:
            self._out.append(MessageDropped("unknown validator"))
            return
        if isinstance(message, Proposal):
            if self.state.validator_set.proposer(self.height, message.round).public_key != sender:
                self._out.append(MessageDropped("not the round's proposer"))
                return
            if message.block.height != self.height or message.valid_round >= message.round:
                self._out.append(MessageDropped("malformed proposal"))
                return
        if not is_signed_by_sender(self.chain_id, message, self.verify):
            self._out.append(MessageDropped("bad signature"))
            return
        if self.waiting_for_txs:
            self._wake()  # others have started this height: so do we
        if isinstance(message, Proposal):
            self._accept_proposal(message)
        else:
            self._accept_vote(message)

    def _buffer_future(self, message: Message) -> None:
        if message.height == self.height + 1 and len(self.future) < MAX_BUFFERED_FUTURE_MESSAGES:
            self.future.append(message)
        elif message.height > self.height + 1:
            self._out.append(PeerAhead(message.height))

    def _accept_proposal(self, proposal: Proposal) -> None:
        assert self.state is not None
        existing = self.state.proposals.get(proposal.round)
        if existing is not None:
            if existing.block_hash != proposal.block_hash:
                self._out.append(MessageDropped("conflicting proposal"))
            return
        self.state.proposals[proposal.round] = proposal
        self.state.blocks.setdefault(proposal.block_hash, proposal.block)
        self.state.senders.setdefault(proposal.round, set()).add(proposal.proposer)
        self._validity(proposal.block_hash)

    def _accept_vote(self, vote: Vote) -> None:
        assert self.state is not None
        cast = self.state.votes.setdefault((vote.round, vote.vote_type), {}).setdefault(
            vote.validator, []
        )
        if any(v.block_hash == vote.block_hash for v in cast):
            return
        if cast and len(self.evidence) < MAX_EVIDENCE:
            evidence = EvidenceFound(cast[0], vote)
            self.evidence.append(evidence)
            self._out.append(evidence)
        if len(cast) < MAX_VALUES_PER_VOTER:
            cast.append(vote)
        self.state.senders.setdefault(vote.round, set()).add(vote.validator)

    # Answers from the caller

    def _on_validated(self, event: BlockValidated) -> None:
        if self.state is not None:
            self.state.validity[event.block_hash] = event.valid
            if not event.timely:
                self.state.untimely.add(event.block_hash)
            self.state.validating.discard(event.block_hash)

    def _on_proposal_block(self, event: ProposalBlockReady) -> None:
        current = (self.height, self.round, self.step_)
        if not self.decided and current == (event.height, event.round, STEP_PROPOSE):
            self._propose(event.block, -1)

    def _on_timeout(self, event: TimeoutFired) -> None:
        """Rule 10: act on a timeout only if height, round (and step) still match."""
        if self.decided or (event.height, event.round) != (self.height, self.round):
            return
        if event.kind == TIMEOUT_PROPOSE and self.step_ == STEP_PROPOSE:
            self._vote(PREVOTE, None)
        elif event.kind == TIMEOUT_PREVOTE and self.step_ == STEP_PREVOTE:
            self._vote(PRECOMMIT, None)
        elif event.kind == TIMEOUT_PRECOMMIT:
            self._start_round(self.round + 1)

    def _on_certified_block(self, event: CertifiedBlockReceived) -> None:
        """Decide a height from a certificate fetched by block sync."""
        if self.state is None or self.decided or event.block.height != self.height:
            return
        try:
            verify_certificate(
                event.certificate,
                self.chain_id,
                self.height,
                event.block.hash,
                self.state.validator_set,
            )
        except DanangChainError as exc:
            self._out.append(MessageDropped(f"bad certificate: {exc}"))
            return
        self.decided = True
        self._out.append(CommitBlock(event.block, event.certificate))

    # The rules, applied until none fires

    def _evaluate(self) -> None:
        while self.state is not None and not self.decided and not self.waiting_for_txs:
            if not (
                self._rule_decide()
                or self._rule_skip_round()
                or self._rule_proposal()
                or self._rule_prevote_quorum()
                or self._rule_precommit_quorum()
            ):
                return

    def _rule_decide(self) -> bool:
        """Rule 8: a block with a quorum of precommits in some round is decided."""
        assert self.state is not None
        for (round_, vote_type), votes in self.state.votes.items():
            if vote_type != PRECOMMIT:
                continue
            for block_hash in {v.block_hash for cast in votes.values() for v in cast} - {None}:
                assert block_hash is not None
                if self._power(round_, PRECOMMIT, block_hash) < self.quorum:
                    continue
                if block_hash not in self.state.blocks or not self._validity(block_hash):
                    continue
                certificate = make_certificate(
                    [v for cast in votes.values() for v in cast if v.block_hash == block_hash]
                )
                self.decided = True
                self._out.append(CommitBlock(self.state.blocks[block_hash], certificate))
                return True
        return False

    def _rule_skip_round(self) -> bool:
        """Rule 9: messages of a later round from more than 1/3 of the power: go there."""
        assert self.state is not None
        total = self.state.validator_set.total_power
        for round_ in sorted(self.state.senders, reverse=True):
            if round_ <= self.round:
                break
            power = sum(self.state.validator_set.power_of(s) for s in self.state.senders[round_])
            if power * 3 > total:
                self._start_round(round_)
                return True
        return False

    def _rule_proposal(self) -> bool:
        """Rules 2 and 3: prevote on the round's proposal, fresh or with a proof of lock."""
        assert self.state is not None
        proposal = self.state.proposals.get(self.round)
        if self.step_ != STEP_PROPOSE or proposal is None:
            return False
        value, vr = proposal.block_hash, proposal.valid_round
        if vr >= 0 and self._power(vr, PREVOTE, value) < self.quorum:
            return False  # rule 3 waits for the proof of lock
        valid = self._validity(value)
        if valid is None:
            return False
        locked = self.locked_block.hash if self.locked_block is not None else None
        unlocked = self.locked_round == -1 if vr < 0 else self.locked_round <= vr
        # A fresh proposal must also be timely; one with a proof of lock need not be.
        acceptable = valid and (vr >= 0 or value not in self.state.untimely)
        self._vote(PREVOTE, value if acceptable and (unlocked or locked == value) else None)
        return True

    def _rule_prevote_quorum(self) -> bool:
        """Rules 4, 5 and 6: act on a quorum of prevotes in the current round."""
        assert self.state is not None
        r = self.round
        if (
            self.step_ == STEP_PREVOTE
            and (4, r) not in self.state.fired
            and self._power(r, PREVOTE) >= self.quorum
        ):
            self.state.fired.add((4, r))
            self._schedule(TIMEOUT_PREVOTE, r)
            return True
        proposal = self.state.proposals.get(r)
        if (
            proposal is not None
            and self.step_ >= STEP_PREVOTE
            and (5, r) not in self.state.fired
            and self._power(r, PREVOTE, proposal.block_hash) >= self.quorum
            and self._validity(proposal.block_hash)
        ):
            self.state.fired.add((5, r))
            self.valid_round, self.valid_block = r, proposal.block
            if self.step_ == STEP_PREVOTE:
                self.locked_round, self.locked_block = r, proposal.block
                self._vote(PRECOMMIT, proposal.block_hash)
            return True
        if self.step_ == STEP_PREVOTE and self._power(r, PREVOTE, None) >= self.quorum:
            self._vote(PRECOMMIT, None)
            return True
        return False

    def _rule_precommit_quorum(self) -> bool:
        """Rule 7: any quorum of precommits in the current round starts its timeout."""
        assert self.state is not None
        r = self.round
        if (7, r) not in self.state.fired and self._power(r, PRECOMMIT) >= self.quorum:
            self.state.fired.add((7, r))
            self._schedule(TIMEOUT_PRECOMMIT, r)
            return True
        return False
