"""The Tendermint state machine of one validator (or follower), one event at a time.

Rules are numbered as in CONSENSUS.md. Before its first StartHeight the machine has no
height state; after it, every method that needs the state of the height is handed it
(`_Height`), and that state holds the signing key only for a validator of the height,
so mypy proves each use is safe: no `assert` is needed, or stripped by python -O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import assert_never

from danangchain import ed25519
from danangchain.block import Block
from danangchain.consensus.events import (
    TIMEOUT_PRECOMMIT,
    TIMEOUT_PREVOTE,
    TIMEOUT_PROPOSE,
    Action,
    BlockValidated,
    Broadcast,
    CertifiedBlockReceived,
    CommitBlock,
    Event,
    EvidenceFound,
    MessageDropped,
    MessageReceived,
    PeerAhead,
    PersistSigning,
    ProposalBlockReady,
    RequestProposalBlock,
    ScheduleTimeout,
    StartHeight,
    TimeoutFired,
    Timeouts,
    TxsAvailable,
    ValidateBlock,
)
from danangchain.consensus.messages import (
    STEP_OF_VOTE,
    STEP_PREVOTE,
    STEP_PROPOSE,
    Message,
    Proposal,
    SigningRecord,
    Verify,
    is_signed_by_sender,
    sign_proposal,
)
from danangchain.errors import DanangChainError
from danangchain.validators import (
    PRECOMMIT,
    PREVOTE,
    ValidatorSet,
    Vote,
    make_certificate,
    sign_vote,
    verify_certificate,
)

MAX_BUFFERED_FUTURE_MESSAGES = 4096
MAX_EVIDENCE = 1024
MAX_VALUES_PER_VOTER = 3
GOSSIP_ROUNDS = 16
KEPT_OWN_ROUNDS = 8
DEFAULT_TIMEOUTS = Timeouts()


@dataclass
class _Height:
    """Everything a validator tracks within one height, from its StartHeight on."""

    validator_set: ValidatorSet
    quorum: int
    # This node's key if it has power at this height; None while it only follows.
    signer: ed25519.SigningKey | None
    locked_round: int = -1
    locked_block: Block | None = None
    valid_round: int = -1
    valid_block: Block | None = None
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
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
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
        self._current: _Height | None = None  # None until the first StartHeight
        self.future: list[Message] = []
        self.evidence: list[EvidenceFound] = []
        self._out: list[Action] = []

    # Entry point

    def step(self, event: Event) -> list[Action]:
        """Apply one event and return the actions to carry out, in order."""
        self._out = []
        match event:
            case StartHeight():
                self._start_height(event)
            case MessageReceived():
                self._receive(event.message)
            case BlockValidated():
                self._on_validated(event)
            case ProposalBlockReady():
                self._on_proposal_block(event)
            case TimeoutFired():
                self._on_timeout(event)
            case TxsAvailable():
                if self._current is not None:
                    self._wake(self._current)
            case CertifiedBlockReceived():
                self._on_certified_block(event)
            case _:
                assert_never(event)
        if self._current is not None:
            self._evaluate(self._current)
        return self._out

    def gossip_set(self) -> list[Message]:
        """Return the messages to re-send so lagging peers can catch up within this height:
        recent proposals, every prevote for a value (proofs of lock), this round's votes,
        and this validator's own votes of recent rounds (a peer may still be in them)."""
        state = self._current
        if state is None or self.decided:
            return []
        me = self.key.public_key if self.key is not None else None
        first = self.round - GOSSIP_ROUNDS
        messages: list[Message] = [p for r, p in sorted(state.proposals.items()) if r >= first]
        for (round_, vote_type), votes in sorted(state.votes.items()):
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

    # Helpers over the vote sets

    def _power(self, state: _Height, round_: int, vote_type: str) -> int:
        """Return the power of the votes of a round and type, for any value."""
        votes = state.votes.get((round_, vote_type), {})
        return sum(state.validator_set.power_of(validator) for validator in votes)

    def _power_for(self, state: _Height, round_: int, vote_type: str, value: bytes | None) -> int:
        """Return the power of the votes of a round and type for one value (None: nil)."""
        votes = state.votes.get((round_, vote_type), {})
        return sum(
            state.validator_set.power_of(validator)
            for validator, cast in votes.items()
            if any(v.block_hash == value for v in cast)
        )

    def _validity(self, state: _Height, block_hash: bytes) -> bool | None:
        """Return whether a block is valid, asking for validation if not known yet."""
        known = state.validity.get(block_hash)
        if known is None and block_hash not in state.validating:
            block = state.blocks.get(block_hash)
            if block is not None:
                state.validating.add(block_hash)
                self._out.append(ValidateBlock(block))
        return known

    # Heights and rounds

    def _start_height(self, event: StartHeight) -> None:
        self.height = event.height
        signer = self.key
        if signer is not None and event.validator_set.power_of(signer.public_key) == 0:
            signer = None
        state = _Height(event.validator_set, self._quorum(event.validator_set), signer)
        self._current = state
        self.decided = False
        first_round = 0
        record = self.restored
        if record is not None and record.height == event.height:
            # Recover the lock after a restart: forgetting it could break agreement.
            state.locked_round, state.locked_block = record.locked_round, record.locked_block
            state.valid_round, state.valid_block = record.valid_round, record.valid_block
            for block in (record.locked_block, record.valid_block):
                if block is not None:
                    state.blocks[block.hash] = block
                    state.validity[block.hash] = True
            for message in record.messages:
                if message.height == event.height:
                    if isinstance(message, Proposal):
                        self._accept_proposal(state, message)
                    else:
                        self._accept_vote(state, message)
            # Rejoin the round it was in: it may re-sign what it signed, or a later step.
            first_round = record.round
        self.round = first_round
        self.step_ = STEP_PROPOSE
        self.waiting_for_txs = not event.txs_available
        if not self.waiting_for_txs:
            self._start_round(state, first_round)
        buffered, self.future = self.future, []
        for message in buffered:
            self._receive(message)

    def _wake(self, state: _Height) -> None:
        """Start the height's first round once there is something to agree on."""
        if self.waiting_for_txs and not self.decided:
            self.waiting_for_txs = False
            self._start_round(state, self.round)

    def _start_round(self, state: _Height, round_: int) -> None:
        """Rule 1: enter a round; propose if it is ours, else wait for the proposal."""
        self.round, self.step_ = round_, STEP_PROPOSE
        proposer = state.validator_set.proposer(self.height, round_)
        # Every node, the proposer too, times out: a proposer that cannot propose (its
        # block builder is slow, or it restarted into this round) must not stall the round.
        self._schedule(TIMEOUT_PROPOSE, round_)
        if self.key is not None and proposer.public_key == self.key.public_key:
            if state.valid_block is not None:
                self._propose(state, state.valid_block, state.valid_round)
            else:
                self._out.append(RequestProposalBlock(self.height, round_))

    def _schedule(self, kind: str, round_: int) -> None:
        self._out.append(
            ScheduleTimeout(kind, self.height, round_, self.timeouts.delay_ms(kind, round_))
        )

    # Signing, guarded by the durable record

    def _may_sign(self, round_: int, step: int, value: bytes | None) -> bool:
        """Refuse to sign below what was last signed, or a different value at the same step."""
        position = (self.height, round_, step)
        if position < self.last_signed:
            return False
        return not (position == self.last_signed and value != self.last_signed_value)

    def _record(self, state: _Height, signer: bytes, message: Message, step: int) -> None:
        """Note a message as signed and ask for the record to be synced before it leaves."""
        value = message.block_hash
        self.last_signed, self.last_signed_value = (self.height, message.round, step), value
        if isinstance(message, Proposal):
            self._accept_proposal(state, message)
        else:
            self._accept_vote(state, message)
        self._out.append(
            PersistSigning(
                SigningRecord(
                    self.height,
                    message.round,
                    step,
                    value,
                    state.locked_round,
                    state.locked_block,
                    state.valid_round,
                    state.valid_block,
                    self._own_recent_messages(state, signer),
                )
            )
        )

    def _own_recent_messages(self, state: _Height, me: bytes) -> tuple[Message, ...]:
        """Return this validator's own messages of this height from recent rounds."""
        first = self.round - KEPT_OWN_ROUNDS
        own: list[Message] = [
            p for r, p in state.proposals.items() if p.proposer == me and r == self.round
        ]
        for (round_, _), votes in state.votes.items():
            if round_ >= first:
                own.extend(votes.get(me, []))
        return tuple(own)

    def _propose(self, state: _Height, block: Block, valid_round: int) -> None:
        signer = state.signer
        if signer is None or not self._may_sign(self.round, STEP_PROPOSE, block.hash):
            return
        proposal = sign_proposal(signer, self.chain_id, self.height, self.round, block, valid_round)
        state.validity[block.hash] = True  # built or validated by this node already
        self._record(state, signer.public_key, proposal, STEP_PROPOSE)
        self._out.append(Broadcast(proposal))

    def _vote(self, state: _Height, vote_type: str, block_hash: bytes | None) -> None:
        """Sign and broadcast a vote for the current round, and count it."""
        step = STEP_OF_VOTE[vote_type]
        self.step_ = step
        signer = state.signer
        if signer is None or not self._may_sign(self.round, step, block_hash):
            return
        vote = sign_vote(signer, self.chain_id, vote_type, self.height, self.round, block_hash)
        self._record(state, signer.public_key, vote, step)
        self._out.append(Broadcast(vote))

    # Receiving messages

    def _receive(self, message: Message) -> None:
        state = self._current
        if state is None or message.height > self.height:
            self._buffer_future(message)
            return
        if message.height < self.height or self.decided:
            self._out.append(MessageDropped("old height"))
            return
        sender = message.proposer if isinstance(message, Proposal) else message.validator
        if state.validator_set.power_of(sender) == 0:
            self._out.append(MessageDropped("unknown validator"))
            return
        if isinstance(message, Proposal):
            if state.validator_set.proposer(self.height, message.round).public_key != sender:
                self._out.append(MessageDropped("not the round's proposer"))
                return
            if message.block.height != self.height or message.valid_round >= message.round:
                self._out.append(MessageDropped("malformed proposal"))
                return
        if not is_signed_by_sender(self.chain_id, message, self.verify):
            self._out.append(MessageDropped("bad signature"))
            return
        if self.waiting_for_txs:
            self._wake(state)  # others have started this height: so do we
        if isinstance(message, Proposal):
            self._accept_proposal(state, message)
        else:
            self._accept_vote(state, message)

    def _buffer_future(self, message: Message) -> None:
        if message.height == self.height + 1 and len(self.future) < MAX_BUFFERED_FUTURE_MESSAGES:
            self.future.append(message)
        elif message.height > self.height + 1:
            self._out.append(PeerAhead(message.height))

    def _accept_proposal(self, state: _Height, proposal: Proposal) -> None:
        existing = state.proposals.get(proposal.round)
        if existing is not None:
            if existing.block_hash != proposal.block_hash:
                self._out.append(MessageDropped("conflicting proposal"))
            return
        state.proposals[proposal.round] = proposal
        state.blocks.setdefault(proposal.block_hash, proposal.block)
        state.senders.setdefault(proposal.round, set()).add(proposal.proposer)
        self._validity(state, proposal.block_hash)

    def _accept_vote(self, state: _Height, vote: Vote) -> None:
        cast = state.votes.setdefault((vote.round, vote.vote_type), {}).setdefault(
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
        state.senders.setdefault(vote.round, set()).add(vote.validator)

    # Answers from the caller

    def _on_validated(self, event: BlockValidated) -> None:
        state = self._current
        if state is not None:
            state.validity[event.block_hash] = event.valid
            if not event.timely:
                state.untimely.add(event.block_hash)
            state.validating.discard(event.block_hash)

    def _on_proposal_block(self, event: ProposalBlockReady) -> None:
        state = self._current
        current = (self.height, self.round, self.step_)
        if (
            state is not None
            and not self.decided
            and current == (event.height, event.round, STEP_PROPOSE)
        ):
            self._propose(state, event.block, -1)

    def _on_timeout(self, event: TimeoutFired) -> None:
        """Rule 10: act on a timeout only if height, round (and step) still match."""
        state = self._current
        if (
            state is None
            or self.decided
            or (event.height, event.round) != (self.height, self.round)
        ):
            return
        if event.kind == TIMEOUT_PROPOSE and self.step_ == STEP_PROPOSE:
            self._vote(state, PREVOTE, None)
        elif event.kind == TIMEOUT_PREVOTE and self.step_ == STEP_PREVOTE:
            self._vote(state, PRECOMMIT, None)
        elif event.kind == TIMEOUT_PRECOMMIT:
            self._start_round(state, self.round + 1)

    def _on_certified_block(self, event: CertifiedBlockReceived) -> None:
        """Decide a height from a certificate fetched by block sync."""
        state = self._current
        if state is None or self.decided or event.block.height != self.height:
            return
        try:
            verify_certificate(
                event.certificate, self.chain_id, self.height, event.block.hash, state.validator_set
            )
        except DanangChainError as exc:
            self._out.append(MessageDropped(f"bad certificate: {exc}"))
            return
        self.decided = True
        self._out.append(CommitBlock(event.block, event.certificate))

    # The rules, applied until none fires

    def _evaluate(self, state: _Height) -> None:
        while not self.decided and not self.waiting_for_txs:
            if not (
                self._rule_decide(state)
                or self._rule_skip_round(state)
                or self._rule_proposal(state)
                or self._rule_prevote_quorum(state)
                or self._rule_precommit_quorum(state)
            ):
                return

    def _rule_decide(self, state: _Height) -> bool:
        """Rule 8: a block with a quorum of precommits in some round is decided."""
        for (round_, vote_type), votes in state.votes.items():
            if vote_type != PRECOMMIT:
                continue
            values = {v.block_hash for cast in votes.values() for v in cast}
            for block_hash in (value for value in values if value is not None):
                if self._power_for(state, round_, PRECOMMIT, block_hash) < state.quorum:
                    continue
                if block_hash not in state.blocks or not self._validity(state, block_hash):
                    continue
                certificate = make_certificate(
                    [v for cast in votes.values() for v in cast if v.block_hash == block_hash]
                )
                self.decided = True
                self._out.append(CommitBlock(state.blocks[block_hash], certificate))
                return True
        return False

    def _rule_skip_round(self, state: _Height) -> bool:
        """Rule 9: messages of a later round from more than 1/3 of the power: go there."""
        total = state.validator_set.total_power
        for round_ in sorted(state.senders, reverse=True):
            if round_ <= self.round:
                break
            power = sum(state.validator_set.power_of(s) for s in state.senders[round_])
            if power * 3 > total:
                self._start_round(state, round_)
                return True
        return False

    def _rule_proposal(self, state: _Height) -> bool:
        """Rules 2 and 3: prevote on the round's proposal, fresh or with a proof of lock."""
        proposal = state.proposals.get(self.round)
        if self.step_ != STEP_PROPOSE or proposal is None:
            return False
        value, vr = proposal.block_hash, proposal.valid_round
        if vr >= 0 and self._power_for(state, vr, PREVOTE, value) < state.quorum:
            return False  # rule 3 waits for the proof of lock
        valid = self._validity(state, value)
        if valid is None:
            return False
        locked = state.locked_block.hash if state.locked_block is not None else None
        unlocked = state.locked_round == -1 if vr < 0 else state.locked_round <= vr
        # A fresh proposal must also be timely; one with a proof of lock need not be.
        acceptable = valid and (vr >= 0 or value not in state.untimely)
        self._vote(state, PREVOTE, value if acceptable and (unlocked or locked == value) else None)
        return True

    def _rule_prevote_quorum(self, state: _Height) -> bool:
        """Rules 4, 5 and 6: act on a quorum of prevotes in the current round."""
        r = self.round
        if (
            self.step_ == STEP_PREVOTE
            and (4, r) not in state.fired
            and self._power(state, r, PREVOTE) >= state.quorum
        ):
            state.fired.add((4, r))
            self._schedule(TIMEOUT_PREVOTE, r)
            return True
        proposal = state.proposals.get(r)
        if (
            proposal is not None
            and self.step_ >= STEP_PREVOTE
            and (5, r) not in state.fired
            and self._power_for(state, r, PREVOTE, proposal.block_hash) >= state.quorum
            and self._validity(state, proposal.block_hash)
        ):
            state.fired.add((5, r))
            state.valid_round, state.valid_block = r, proposal.block
            if self.step_ == STEP_PREVOTE:
                state.locked_round, state.locked_block = r, proposal.block
                self._vote(state, PRECOMMIT, proposal.block_hash)
            return True
        if self.step_ == STEP_PREVOTE and self._power_for(state, r, PREVOTE, None) >= state.quorum:
            self._vote(state, PRECOMMIT, None)
            return True
        return False

    def _rule_precommit_quorum(self, state: _Height) -> bool:
        """Rule 7: any quorum of precommits in the current round starts its timeout."""
        r = self.round
        if (7, r) not in state.fired and self._power(state, r, PRECOMMIT) >= state.quorum:
            state.fired.add((7, r))
            self._schedule(TIMEOUT_PRECOMMIT, r)
            return True
        return False
