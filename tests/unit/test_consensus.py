"""The consensus machine's own rules, one event at a time."""

from __future__ import annotations

import pytest

from danangchain import ed25519
from danangchain.block import Block, Header
from danangchain.consensus import (
    BlockValidated,
    Broadcast,
    CertifiedBlockReceived,
    CommitBlock,
    Consensus,
    EvidenceFound,
    MessageDropped,
    MessageReceived,
    PersistSigning,
    Proposal,
    ProposalBlockReady,
    RequestProposalBlock,
    ScheduleTimeout,
    StartHeight,
    TimeoutFired,
    TxsAvailable,
    ValidateBlock,
    decode_message,
    decode_signing_record,
    encode_message,
    encode_signing_record,
    sign_proposal,
)
from danangchain.errors import DecodeError
from danangchain.validators import (
    PRECOMMIT,
    PREVOTE,
    Validator,
    ValidatorSet,
    make_certificate,
    sign_vote,
)

CHAIN = "unit"
KEYS = [ed25519.signing_key_from_seed(bytes([i + 1]) * 32) for i in range(4)]
VSET = ValidatorSet.of([Validator(k.public_key, f"v{i}") for i, k in enumerate(KEYS)])


def key_of(index_in_set: int) -> ed25519.SigningKey:
    public = VSET.validators[index_in_set].public_key
    return next(k for k in KEYS if k.public_key == public)


def block(height: int = 1, salt: int = 0) -> Block:
    header = Header(
        CHAIN,
        height,
        10 + salt,
        bytes(32),
        bytes([salt]) * 32,
        0,
        bytes(32),
        bytes(32),
        bytes(32),
        KEYS[0].public_key,
        bytes(32),
    )
    return Block(header, (), None, ())


def started(key: ed25519.SigningKey, height: int = 1) -> Consensus:
    machine = Consensus(CHAIN, key)
    machine.step(StartHeight(height, VSET))
    return machine


def broadcasts(actions: list) -> list:
    return [a.message for a in actions if isinstance(a, Broadcast)]


def test_proposer_asks_for_a_block_then_proposes_and_prevotes_it() -> None:
    proposer = key_of(1 % 4)  # proposer(h=1, r=0) is index (1 + 0) % 4
    machine = Consensus(CHAIN, proposer)
    actions = machine.step(StartHeight(1, VSET))
    assert RequestProposalBlock(1, 0) in actions
    actions = machine.step(ProposalBlockReady(1, 0, block()))
    sent = broadcasts(actions)
    assert isinstance(sent[0], Proposal) and sent[1].vote_type == PREVOTE
    # The signing record is synced before each message leaves.
    kinds = [type(a) for a in actions if isinstance(a, (PersistSigning, Broadcast))]
    assert kinds == [PersistSigning, Broadcast, PersistSigning, Broadcast]


def test_validator_prevotes_a_valid_fresh_proposal_after_validation() -> None:
    machine = started(key_of(0))
    proposal = sign_proposal(key_of(1), CHAIN, 1, 0, block(), -1)
    actions = machine.step(MessageReceived(proposal))
    assert ValidateBlock(proposal.block) in actions and not broadcasts(actions)
    actions = machine.step(BlockValidated(proposal.block_hash, True))
    (vote,) = broadcasts(actions)
    assert (vote.vote_type, vote.block_hash) == (PREVOTE, proposal.block_hash)


def test_validator_prevotes_nil_for_an_invalid_proposal() -> None:
    machine = started(key_of(0))
    proposal = sign_proposal(key_of(1), CHAIN, 1, 0, block(), -1)
    machine.step(MessageReceived(proposal))
    (vote,) = broadcasts(machine.step(BlockValidated(proposal.block_hash, False)))
    assert vote.block_hash is None


def test_proposal_from_the_wrong_proposer_is_dropped() -> None:
    machine = started(key_of(0))
    actions = machine.step(MessageReceived(sign_proposal(key_of(2), CHAIN, 1, 0, block(), -1)))
    assert MessageDropped("not the round's proposer") in actions


def test_vote_from_an_unknown_key_is_dropped() -> None:
    outsider = ed25519.signing_key_from_seed(b"\x99" * 32)
    machine = started(key_of(0))
    vote = sign_vote(outsider, CHAIN, PREVOTE, 1, 0, None)
    assert MessageDropped("unknown validator") in machine.step(MessageReceived(vote))


def test_vote_with_a_bad_signature_is_dropped() -> None:
    machine = started(key_of(0))
    vote = sign_vote(key_of(1), "another-chain", PREVOTE, 1, 0, None)
    assert MessageDropped("bad signature") in machine.step(MessageReceived(vote))


def test_conflicting_votes_by_one_validator_are_kept_as_evidence() -> None:
    machine = started(key_of(0))
    first = sign_vote(key_of(2), CHAIN, PREVOTE, 1, 0, None)
    second = sign_vote(key_of(2), CHAIN, PREVOTE, 1, 0, b"\x01" * 32)
    machine.step(MessageReceived(first))
    actions = machine.step(MessageReceived(second))
    assert EvidenceFound(first, second) in actions and machine.evidence


def test_quorum_of_precommits_decides_the_block() -> None:
    machine = started(key_of(0))
    proposal = sign_proposal(key_of(1), CHAIN, 1, 0, block(), -1)
    machine.step(MessageReceived(proposal))
    machine.step(BlockValidated(proposal.block_hash, True))
    actions: list = []
    for index in (1, 2, 3):
        actions = machine.step(
            MessageReceived(sign_vote(key_of(index), CHAIN, PRECOMMIT, 1, 0, proposal.block_hash))
        )
    commits = [a for a in actions if isinstance(a, CommitBlock)]
    assert len(commits) == 1 and commits[0].block == proposal.block
    assert len(commits[0].certificate.signatures) == 3


def test_two_thirds_exactly_is_not_a_quorum() -> None:
    machine = started(key_of(0))
    proposal = sign_proposal(key_of(1), CHAIN, 1, 0, block(), -1)
    machine.step(MessageReceived(proposal))
    machine.step(BlockValidated(proposal.block_hash, True))
    for index in (1, 2):
        actions = machine.step(
            MessageReceived(sign_vote(key_of(index), CHAIN, PRECOMMIT, 1, 0, proposal.block_hash))
        )
        assert not [a for a in actions if isinstance(a, CommitBlock)]


def test_restarted_validator_never_signs_a_different_value_at_the_same_step() -> None:
    machine = started(key_of(0))
    proposal = sign_proposal(key_of(1), CHAIN, 1, 0, block(), -1)
    machine.step(MessageReceived(proposal))
    actions = machine.step(BlockValidated(proposal.block_hash, True))
    record = next(a.record for a in actions if isinstance(a, PersistSigning))
    restarted = Consensus(
        CHAIN, key_of(0), restored=decode_signing_record(encode_signing_record(record))
    )
    restarted.step(StartHeight(1, VSET))
    # The proposal is lost; the propose timeout would prevote nil, a different value.
    actions = restarted.step(TimeoutFired("propose", 1, 0))
    assert not [m for m in broadcasts(actions) if m.vote_type == PREVOTE]
    # Its own prevote survived in the record, ready to be re-sent.
    assert any(m.validator == key_of(0).public_key for m in restarted.gossip_set())


def test_timeouts_move_a_silent_round_forward() -> None:
    machine = started(key_of(0))
    (vote,) = broadcasts(machine.step(TimeoutFired("propose", 1, 0)))
    assert vote.vote_type == PREVOTE and vote.block_hash is None
    for index in (1, 2):
        machine.step(MessageReceived(sign_vote(key_of(index), CHAIN, PREVOTE, 1, 0, None)))
    assert machine.step_ == 2  # a nil quorum of prevotes: precommit nil
    for index in (1, 2):
        actions = machine.step(
            MessageReceived(sign_vote(key_of(index), CHAIN, PRECOMMIT, 1, 0, None))
        )
    assert any(isinstance(a, ScheduleTimeout) and a.kind == "precommit" for a in actions)
    machine.step(TimeoutFired("precommit", 1, 0))
    assert machine.round == 1


def test_a_height_waits_for_transactions_unless_peers_start_it() -> None:
    machine = Consensus(CHAIN, key_of(0))
    assert not machine.step(StartHeight(1, VSET, txs_available=False))
    actions = machine.step(TxsAvailable())
    assert any(isinstance(a, ScheduleTimeout) for a in actions)


def test_certified_block_from_sync_is_committed_only_with_a_valid_certificate() -> None:
    machine = started(key_of(0))
    decided = block(salt=3)
    votes = [sign_vote(key_of(i), CHAIN, PRECOMMIT, 1, 0, decided.hash) for i in (0, 1, 2)]
    weak = make_certificate(votes[:2])
    assert not [
        a for a in machine.step(CertifiedBlockReceived(decided, weak)) if isinstance(a, CommitBlock)
    ]
    actions = machine.step(CertifiedBlockReceived(decided, make_certificate(votes)))
    assert [a for a in actions if isinstance(a, CommitBlock)]


def test_messages_round_trip_and_garbage_is_refused() -> None:
    proposal = sign_proposal(key_of(1), CHAIN, 1, 0, block(), -1)
    vote = sign_vote(key_of(2), CHAIN, PRECOMMIT, 1, 0, None)
    assert decode_message(encode_message(proposal)) == proposal
    assert decode_message(encode_message(vote)) == vote
    with pytest.raises(DecodeError):
        decode_message(b"\x93\xa4vote\x01\x02")


def test_a_fresh_proposal_timed_ahead_of_this_clock_gets_a_nil_prevote() -> None:
    machine = started(key_of(0))
    proposal = sign_proposal(key_of(1), CHAIN, 1, 0, block(), -1)
    machine.step(MessageReceived(proposal))
    (vote,) = broadcasts(machine.step(BlockValidated(proposal.block_hash, True, timely=False)))
    assert vote.block_hash is None


def test_an_untimely_block_is_still_followed_once_others_vouch_for_it() -> None:
    machine = started(key_of(0))
    proposal = sign_proposal(key_of(1), CHAIN, 1, 0, block(), -1)
    machine.step(MessageReceived(proposal))
    (nil,) = broadcasts(machine.step(BlockValidated(proposal.block_hash, True, timely=False)))
    assert nil.block_hash is None
    # More than 2/3 prevoted it: this node locks on it and precommits it after all.
    sent: list = []
    for index in (1, 2, 3):
        sent += broadcasts(
            machine.step(
                MessageReceived(sign_vote(key_of(index), CHAIN, PREVOTE, 1, 0, proposal.block_hash))
            )
        )
    assert [(v.vote_type, v.block_hash) for v in sent] == [(PRECOMMIT, proposal.block_hash)]
    # And a quorum of precommits (its own among them) decides it, whatever its clock said.
    actions: list = []
    for index in (1, 2, 3):
        actions += machine.step(
            MessageReceived(sign_vote(key_of(index), CHAIN, PRECOMMIT, 1, 0, proposal.block_hash))
        )
    assert [a.block for a in actions if isinstance(a, CommitBlock)] == [proposal.block]
