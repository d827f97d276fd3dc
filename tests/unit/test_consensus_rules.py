"""One test per consensus rule (CONSENSUS.md): locking, the proof of lock, round skips.

Each test drives `Consensus.step` of validator 0 of four (so f = 1, a quorum is 3 and a
skip needs 2) with messages signed by the others, and checks what it broadcasts.
Proposers by round at height 1: 0 → v1, 1 → v2, 2 → v3, 3 → v0 (the node under test).
"""

from __future__ import annotations

from danangchain.block import Block
from danangchain.consensus import (
    Action,
    BlockValidated,
    Consensus,
    MessageReceived,
    PersistSigning,
    Proposal,
    RequestProposalBlock,
    ScheduleTimeout,
    TimeoutFired,
    sign_proposal,
)
from danangchain.validators import PRECOMMIT, PREVOTE, Vote, sign_vote
from tests.unit.test_consensus import CHAIN, block, broadcasts, key_of, started

HEIGHT = 1
V = block(salt=1)
W = block(salt=2)


def proposal(round_: int, value: Block, valid_round: int = -1) -> Proposal:
    """Return the round's proposal of a value, signed by the round's proposer."""
    return sign_proposal(key_of((HEIGHT + round_) % 4), CHAIN, HEIGHT, round_, value, valid_round)


def vote(index: int, vote_type: str, round_: int, value: Block | None) -> Vote:
    """Return a vote of validator `index` for a value (None: nil)."""
    block_hash = None if value is None else value.hash
    return sign_vote(key_of(index), CHAIN, vote_type, HEIGHT, round_, block_hash)


def deliver(machine: Consensus, *messages: Proposal | Vote) -> list[Action]:
    """Feed messages one by one; return every action they caused."""
    actions: list[Action] = []
    for message in messages:
        actions += machine.step(MessageReceived(message))
    return actions


def deliver_valid(machine: Consensus, offer: Proposal) -> list[Action]:
    """Feed a proposal and the news that its block is valid (and timely)."""
    return deliver(machine, offer) + machine.step(BlockValidated(offer.block_hash, True))


def sent_votes(actions: list[Action]) -> list[tuple[str, int, bytes | None]]:
    """Return (type, round, value) of each vote the node broadcast."""
    return [
        (m.vote_type, m.round, m.block_hash) for m in broadcasts(actions) if isinstance(m, Vote)
    ]


def starts_round(actions: list[Action], round_: int) -> bool:
    """Return whether the actions start a round: every round starts with its propose timeout."""
    return any(
        isinstance(a, ScheduleTimeout)
        and (a.kind, a.height, a.round) == ("propose", HEIGHT, round_)
        for a in actions
    )


def locked_on_v_in_round_0() -> Consensus:
    """Return the node after it prevoted V in round 0, saw a quorum for it and precommitted."""
    machine = started(key_of(0))
    deliver_valid(machine, proposal(0, V))
    actions = deliver(machine, vote(1, PREVOTE, 0, V), vote(2, PREVOTE, 0, V))
    assert sent_votes(actions) == [(PRECOMMIT, 0, V.hash)]
    return machine


def move_to_next_round(machine: Consensus, round_: int) -> None:
    """Let round `round_` end: a quorum of precommits, then its precommit timeout."""
    deliver(machine, vote(1, PRECOMMIT, round_, None), vote(2, PRECOMMIT, round_, None))
    machine.step(TimeoutFired("precommit", HEIGHT, round_))
    assert machine.round == round_ + 1


# Rule 5: locking


def test_quorum_of_prevotes_for_a_value_locks_the_node_on_it() -> None:
    machine = started(key_of(0))
    assert sent_votes(deliver_valid(machine, proposal(0, V))) == [(PREVOTE, 0, V.hash)]
    assert not sent_votes(deliver(machine, vote(1, PREVOTE, 0, V)))  # 2 of 4: no quorum yet
    actions = deliver(machine, vote(2, PREVOTE, 0, V))
    assert sent_votes(actions) == [(PRECOMMIT, 0, V.hash)]
    # The lock is synced with the precommit, so a restart cannot forget it.
    (persist,) = [a for a in actions if isinstance(a, PersistSigning)]
    assert (persist.record.locked_round, persist.record.locked_block) == (0, V)


def test_locked_node_prevotes_nil_on_a_fresh_proposal_of_another_value() -> None:
    machine = locked_on_v_in_round_0()
    move_to_next_round(machine, 0)
    actions = deliver_valid(machine, proposal(1, W))
    assert sent_votes(actions) == [(PREVOTE, 1, None)]


def test_locked_node_prevotes_its_locked_value_when_it_is_proposed_afresh() -> None:
    machine = locked_on_v_in_round_0()
    move_to_next_round(machine, 0)
    actions = deliver_valid(machine, proposal(1, V))
    assert sent_votes(actions) == [(PREVOTE, 1, V.hash)]


def test_unlocked_node_prevotes_a_fresh_proposal_in_a_later_round() -> None:
    machine = started(key_of(0))
    machine.step(TimeoutFired("propose", HEIGHT, 0))  # prevotes nil, locks nothing
    move_to_next_round(machine, 0)
    assert sent_votes(deliver_valid(machine, proposal(1, W))) == [(PREVOTE, 1, W.hash)]


# Rule 3: a re-proposal with a proof of lock


def in_round_2_unlocked() -> Consensus:
    """Return the node in round 2 (skipped to from round 0), never having prevoted."""
    machine = started(key_of(0))
    actions = deliver(machine, vote(1, PRECOMMIT, 2, None), vote(2, PRECOMMIT, 2, None))
    assert starts_round(actions, 2) and not sent_votes(actions)
    return machine


def test_re_proposal_with_a_quorum_of_prevotes_at_its_valid_round_gets_a_prevote() -> None:
    machine = in_round_2_unlocked()
    deliver(machine, *(vote(i, PREVOTE, 1, V) for i in (1, 2, 3)))
    actions = deliver_valid(machine, proposal(2, V, valid_round=1))
    assert sent_votes(actions) == [(PREVOTE, 2, V.hash)]


def test_re_proposal_without_a_quorum_of_prevotes_at_its_valid_round_gets_no_prevote() -> None:
    machine = in_round_2_unlocked()
    deliver(machine, vote(1, PREVOTE, 1, V), vote(2, PREVOTE, 1, V))  # 2 of 4: no proof
    actions = deliver_valid(machine, proposal(2, V, valid_round=1))
    assert not sent_votes(actions)
    # It waits for the proof; if the round times out first, it prevotes nil.
    assert sent_votes(machine.step(TimeoutFired("propose", HEIGHT, 2))) == [(PREVOTE, 2, None)]


def test_re_proposal_gets_its_prevote_once_the_proof_of_lock_completes() -> None:
    machine = in_round_2_unlocked()
    deliver(machine, vote(1, PREVOTE, 1, V), vote(2, PREVOTE, 1, V))
    assert not sent_votes(deliver_valid(machine, proposal(2, V, valid_round=1)))
    actions = deliver(machine, vote(3, PREVOTE, 1, V))
    assert sent_votes(actions) == [(PREVOTE, 2, V.hash)]


def locked_on_w_in_round_1() -> Consensus:
    """Return the node locked on W in round 1 (skipped to), its precommit sent."""
    machine = started(key_of(0))
    deliver(machine, vote(1, PRECOMMIT, 1, None), vote(3, PRECOMMIT, 1, None))
    assert machine.round == 1
    deliver_valid(machine, proposal(1, W))
    actions = deliver(machine, vote(1, PREVOTE, 1, W), vote(2, PREVOTE, 1, W))
    assert sent_votes(actions) == [(PRECOMMIT, 1, W.hash)]
    return machine


def test_node_locked_after_the_valid_round_prevotes_nil_on_a_re_proposal() -> None:
    machine = locked_on_w_in_round_1()
    machine.step(TimeoutFired("precommit", HEIGHT, 1))  # 3 precommits in round 1 timed it
    assert machine.round == 2
    deliver(machine, *(vote(i, PREVOTE, 0, V) for i in (1, 2, 3)))  # a proof at round 0
    actions = deliver_valid(machine, proposal(2, V, valid_round=0))
    assert sent_votes(actions) == [(PREVOTE, 2, None)]


def test_a_proof_of_lock_later_than_the_lock_overrides_it() -> None:
    machine = locked_on_w_in_round_1()
    # Round 4 (proposer v1) re-proposes V with a proof from round 2, after the lock.
    deliver(machine, proposal(4, V, valid_round=2), vote(2, PRECOMMIT, 4, None))
    assert machine.round == 4
    actions = deliver(machine, *(vote(i, PREVOTE, 2, V) for i in (1, 2, 3)))
    actions += machine.step(BlockValidated(V.hash, True))
    assert sent_votes(actions) == [(PREVOTE, 4, V.hash)]


# Rule 9: catching up a round


def test_messages_of_a_higher_round_from_f_plus_1_validators_start_that_round() -> None:
    machine = started(key_of(0))
    actions = deliver(machine, vote(1, PREVOTE, 2, None), vote(2, PRECOMMIT, 2, V))
    assert starts_round(actions, 2) and machine.round == 2


def test_messages_of_a_higher_round_from_f_validators_do_not_start_it() -> None:
    machine = started(key_of(0))
    actions = deliver(machine, vote(1, PREVOTE, 2, None), vote(1, PRECOMMIT, 2, None))
    assert not starts_round(actions, 2) and machine.round == 0


def test_one_validators_messages_of_a_higher_round_count_once() -> None:
    machine = started(key_of(0))
    # An equivocating validator: two prevotes and a precommit, all of round 2.
    messages = (vote(1, PREVOTE, 2, V), vote(1, PREVOTE, 2, W), vote(1, PRECOMMIT, 2, V))
    actions = deliver(machine, *messages)
    assert not starts_round(actions, 2) and machine.round == 0
    actions = deliver(machine, vote(3, PREVOTE, 2, None))
    assert starts_round(actions, 2) and machine.round == 2


def test_a_proposal_counts_towards_a_round_skip() -> None:
    machine = started(key_of(0))
    actions = deliver(machine, proposal(2, V), vote(1, PRECOMMIT, 2, None))
    assert starts_round(actions, 2)


def test_skipping_into_a_round_it_proposes_in_asks_for_a_block() -> None:
    machine = started(key_of(0))
    actions = deliver(machine, vote(1, PREVOTE, 3, None), vote(2, PREVOTE, 3, None))
    assert starts_round(actions, 3) and RequestProposalBlock(HEIGHT, 3) in actions


def test_messages_of_a_lower_round_do_not_move_the_node_back() -> None:
    machine = in_round_2_unlocked()
    actions = deliver(machine, *(vote(i, PRECOMMIT, 1, None) for i in (1, 2, 3)))
    assert not starts_round(actions, 1) and machine.round == 2
