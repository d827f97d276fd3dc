"""NodeLedger builds and validates blocks with the effects its mempool prepared: each
transaction is prepared for the height it is expected in (a backlog fills blocks in
order; what arrives while a block is in flight goes into the next), and every block
comes out as the rules alone make it, also when the block in flight fails."""

from __future__ import annotations

import pytest

from danangchain.block import Block
from danangchain.errors import InvalidTransaction
from danangchain.ledger import apply_block, build_block
from danangchain.transaction import (
    RecordBody,
    compute_tx_id,
    encode_transaction,
    sign_transaction,
)
from danangchain.validators import PRECOMMIT, CommitCertificate, make_certificate, sign_vote
from node.chain.ledger import Limits, NodeLedger
from node.storage import schema
from node.storage.store import Store
from tests.unit.ledger_fixtures import (
    CHAIN_ID,
    GENESIS_TIME_MS,
    VALIDATOR_SEED,
    address_of,
    make_key,
    make_test_genesis,
)

VALIDATOR = make_key(VALIDATOR_SEED)
SENDERS = [make_key(seed) for seed in range(20, 26)]
GENESIS = make_test_genesis(members=[(key, "business") for key in SENDERS])


def make_ledger(limits: Limits | None = None) -> NodeLedger:
    """Return a ledger at genesis over a store in memory, with a fixed clock."""
    return NodeLedger(
        GENESIS, Store.in_memory(), limits or Limits(), clock=lambda: GENESIS_TIME_MS + 1
    )


def sign_records(first_nonce: int, count: int) -> list[bytes]:
    """Sign `count` records per sender, nonces from `first_nonce`, the last naming the
    next sender as counterparty (so one transaction reads another member's entry)."""
    txs = []
    for nonce in range(first_nonce, first_nonce + count):
        for index, key in enumerate(SENDERS):
            counterparty = address_of(SENDERS[(index + 1) % len(SENDERS)])
            body = RecordBody("invoice", bytes([nonce, index]) * 16, counterparty=counterparty)
            txs.append(encode_transaction(sign_transaction(key, CHAIN_ID, nonce, body)))
    return txs


def submit_all(ledgers: list[NodeLedger], txs: list[bytes]) -> list[bytes]:
    """Submit every transaction to every ledger; return their ids."""
    ids = []
    for ledger in ledgers:
        ids = [ledger.submit(tx) for tx in txs]
    return ids


def rules_alone_apply(ledger: NodeLedger, block: Block) -> list[object]:
    """Return what apply_block gives for a block with no prepared effects."""
    result = apply_block(ledger.get_committed_view(), ledger.tip, CHAIN_ID, block)
    return [list(result.writes.items()), result.tx_ids]


def rules_alone_build(ledger: NodeLedger, last_commit: CommitCertificate | None) -> Block:
    """Return the block build_block makes from the mempool with no prepared effects."""
    result, _ = build_block(
        ledger.get_committed_view(),
        ledger.tip,
        CHAIN_ID,
        ledger.mempool.candidates(ledger.limits.block_max_txs),
        ledger.clock(),
        VALIDATOR.public_key,
        last_commit,
    )
    return result.block


def certify(block: Block) -> CommitCertificate:
    """Return the one validator's certificate of a block."""
    vote = sign_vote(VALIDATOR, CHAIN_ID, PRECOMMIT, block.height, 0, block.hash)
    return make_certificate([vote])


def test_transactions_admitted_during_a_block_are_prepared_for_the_next_one() -> None:
    proposer, follower = make_ledger(), make_ledger()
    submit_all([proposer, follower], sign_records(1, 2))
    expected = rules_alone_build(proposer, None)
    first = proposer.propose_block(VALIDATOR.public_key)
    assert first.block == expected
    validated = follower.validate_block(first.block)
    assert [list(validated.writes.items()), validated.tx_ids] == rules_alone_apply(
        follower, first.block
    )
    # Block 1 is in flight on both: what arrives now goes into block 2.
    later = submit_all([proposer, follower], sign_records(3, 2))
    for ledger in (proposer, follower):
        heights = {ledger.mempool.get_prepared(tx_id).height for tx_id in later}  # type: ignore[union-attr]
        assert heights == {2}
    certificate = certify(first.block)
    proposer.commit(first, certificate)
    follower.commit(validated, certificate)
    expected = rules_alone_build(proposer, certificate)
    second = proposer.propose_block(VALIDATOR.public_key)
    assert second.block == expected and set(second.tx_ids) == set(later)
    validated = follower.validate_block(second.block)
    assert [list(validated.writes.items()), validated.tx_ids] == rules_alone_apply(
        follower, second.block
    )


def test_a_block_replacing_the_one_in_flight_runs_the_rules_again() -> None:
    """The block in flight fails; the next round's block at the same height carries the
    transactions prepared for the height after it, and comes out as the rules make it."""
    proposer, other, follower = make_ledger(), make_ledger(), make_ledger()
    first_batch = sign_records(1, 1)
    submit_all([proposer, follower], first_batch)
    follower.validate_block(proposer.propose_block(VALIDATOR.public_key).block)
    later = submit_all([follower], sign_records(2, 1))
    assert {follower.mempool.get_prepared(tx_id).height for tx_id in later} == {2}  # type: ignore[union-attr]
    # Another proposer of height 1 had everything: its block carries both batches.
    submit_all([other], first_batch + sign_records(2, 1))
    replacement = other.propose_block(VALIDATOR.public_key).block
    assert len(replacement.tx_bytes) == 2 * len(SENDERS)
    expected = rules_alone_apply(follower, replacement)
    result = follower.validate_block(replacement)
    assert [list(result.writes.items()), result.tx_ids] == expected
    assert result.block.header.state_root == replacement.header.state_root


def test_a_backlog_is_prepared_block_by_block() -> None:
    """With more pending than a block holds, each transaction is prepared for the block
    it is expected in, and those blocks are the rules' blocks."""
    limits = Limits(block_max_txs=4)
    proposer, follower = make_ledger(limits), make_ledger(limits)
    ids = submit_all([proposer, follower], sign_records(1, 2))  # 12: blocks 1, 2 and 3
    for ledger in (proposer, follower):
        heights = [ledger.mempool.get_prepared(tx_id).height for tx_id in ids]  # type: ignore[union-attr]
        assert heights == [1] * 4 + [2] * 4 + [3] * 4
    certificate = None
    for height in (1, 2, 3):
        expected = rules_alone_build(proposer, certificate)
        built = proposer.propose_block(VALIDATOR.public_key)
        assert built.block == expected and built.tx_ids == tuple(ids[(height - 1) * 4 :][:4])
        validated = follower.validate_block(built.block)
        assert [list(validated.writes.items()), validated.tx_ids] == rules_alone_apply(
            follower, built.block
        )
        certificate = certify(built.block)
        proposer.commit(built, certificate)
        follower.commit(validated, certificate)
    assert not len(proposer.mempool) and proposer.tip == follower.tip


def test_a_peer_s_copy_of_a_transaction_in_flight_is_admitted_without_a_second_check() -> None:
    """A follower validated a block it had not seen the transactions of (their gossip was
    late): the copies gossip brings before the commit are admitted (pending, should the
    block fail) without checking their signatures again; the commit takes them out, and a
    copy after it is refused as committed."""
    proposer, follower = make_ledger(), make_ledger()
    txs = sign_records(1, 1)
    submit_all([proposer], txs)
    block = proposer.propose_block(VALIDATOR.public_key)
    validated = follower.validate_block(block.block)
    assert follower.signatures.checked["transaction", "valid"] == len(txs)
    follower.submit(txs[0])
    for tx in txs[1:]:
        follower.submit(tx, from_peer=True)
    assert len(follower.mempool) == len(txs)
    assert follower.signatures.checked["transaction", "valid"] == len(txs)
    follower.commit(validated, certify(block.block))
    assert len(follower.mempool) == 0 and follower._store.list_pending() == []
    with pytest.raises(InvalidTransaction, match="already committed"):
        follower.submit(txs[1], from_peer=True)


def test_a_transaction_of_a_failed_block_in_flight_waits_for_the_next_block() -> None:
    """The block in flight fails and another of the same height commits without some of
    its transactions: the copies admitted meanwhile stay pending and go into the next
    block, and only signatures never checked are checked."""
    proposer, other, follower = make_ledger(), make_ledger(), make_ledger()
    first, second = sign_records(1, 1), sign_records(2, 1)
    submit_all([proposer], first + second)
    follower.validate_block(proposer.propose_block(VALIDATOR.public_key).block)
    for tx in first + second:
        follower.submit(tx, from_peer=True)
    checked = follower.signatures.checked["transaction", "valid"]
    submit_all([other], first)
    replacement = other.propose_block(VALIDATOR.public_key)
    result = follower.validate_block(replacement.block)
    follower.commit(result, certify(replacement.block))
    later = {compute_tx_id(tx) for tx in second}
    assert {tx_id for tx_id in later if tx_id in follower.mempool} == later
    certificate = certify(replacement.block)
    other.commit(replacement, certificate)
    built = follower.propose_block(VALIDATOR.public_key)
    assert set(built.tx_ids) == later
    assert follower.signatures.checked["transaction", "valid"] == checked


def test_a_commit_deletes_only_the_copies_the_node_kept() -> None:
    """A client's transaction is kept on disk until its block commits; a peer's never is,
    so the commit deletes no copy of it (a delete would still leave a tombstone)."""
    ledger = make_ledger()
    txs = sign_records(1, 1)
    client = [ledger.submit(tx) for tx in txs[:3]]
    for tx in txs[3:]:
        ledger.submit(tx, from_peer=True)
    deleted: list[bytes] = []
    backend = ledger._store._db
    apply = backend._apply  # type: ignore[attr-defined]

    def recording(writes: dict[bytes, bytes | None]) -> None:
        deleted.extend(key for key, value in writes.items() if value is None)
        apply(writes)

    backend._apply = recording  # type: ignore[attr-defined]
    result = ledger.propose_block(VALIDATOR.public_key)
    assert len(result.tx_ids) == len(txs)
    ledger.commit(result, certify(result.block))
    pending = [key for key in deleted if key.startswith(schema.TABLE_PENDING)]
    assert sorted(pending) == sorted(schema.pending_key(tx_id) for tx_id in client)
    assert ledger._store.list_pending() == []
