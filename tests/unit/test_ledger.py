"""Block transition: building and applying agree, and every chain rule refuses a bad block."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pytest

from danangchain import ed25519
from danangchain.block import Block, compute_tx_root, decode_block, encode_block
from danangchain.errors import DecodeError, InvalidBlock
from danangchain.genesis import compute_genesis_state_root
from danangchain.ledger import (
    apply_block,
    build_block,
    get_genesis_tip,
    get_tip_after,
    get_validator_set,
)
from danangchain.state import compute_state_root
from danangchain.transaction import (
    Body,
    EndorseBody,
    MemberAdmitBody,
    RecordBody,
    Transaction,
    decode_transaction,
    encode_transaction,
    sign_transaction,
)
from danangchain.validators import (
    PRECOMMIT,
    CommitCertificate,
    make_certificate,
    sign_vote,
    verify_certificate,
)
from tests.unit.ledger_fixtures import (
    AUDITOR_SEED,
    BUSINESS_SEED,
    CHAIN_ID,
    HOUSEHOLD_SEED,
    OUTSIDER_SEED,
    REGISTRAR_SEED,
    LocalChain,
    address_of,
    certify,
    get_tx_id,
    make_genesis_state,
    make_key,
    make_local_chain,
    sign_next,
)

registrar = make_key(REGISTRAR_SEED)
alice = make_key(HOUSEHOLD_SEED)  # household
bob = make_key(BUSINESS_SEED)  # business
carol = make_key(AUDITOR_SEED)  # auditor
mallory = make_key(OUTSIDER_SEED)  # never admitted
MEMBERS = [(alice, "household"), (bob, "business"), (carol, "auditor")]
FOUR_VALIDATORS = [make_key(seed) for seed in (1, 11, 12, 13)]


def record(memo: str, counterparty: bytes | None = None) -> RecordBody:
    """Return a small invoice record body."""
    return RecordBody("invoice", hashlib.sha256(memo.encode()).digest(), 10_000, counterparty, memo)


def sign(key: ed25519.SigningKey, nonce: int, body: Body) -> Transaction:
    """Sign a transaction for the test chain."""
    return sign_transaction(key, CHAIN_ID, nonce, body)


@pytest.fixture
def chain() -> LocalChain:
    """A one-validator chain with one committed block, so the next block carries a certificate."""
    chain = make_local_chain(members=MEMBERS)
    chain.commit([sign(alice, 1, record("first", address_of(bob)))])
    return chain


@pytest.fixture
def next_txs(chain: LocalChain) -> list[Transaction]:
    """Three valid transactions for block 2: two by alice (nonces 2, 3) and one by bob."""
    return [
        sign(alice, 2, record("second")),
        sign(alice, 3, record("third")),
        sign(bob, 1, record("from bob", address_of(alice))),
    ]


@pytest.fixture
def next_block(chain: LocalChain, next_txs: list[Transaction]) -> Block:
    """A valid, uncommitted block 2."""
    result, rejected = chain.build(next_txs)
    assert rejected == [] and len(result.block.tx_bytes) == 3
    return result.block


def with_header(block: Block, **changes: Any) -> Block:
    """Return the block with header fields replaced."""
    return replace(block, header=replace(block.header, **changes))


def with_transactions(block: Block, tx_bytes: list[bytes]) -> Block:
    """Return the block carrying other transactions, its tx root recomputed as a tamperer would."""
    header = replace(block.header, tx_root=compute_tx_root(tx_bytes), tx_count=len(tx_bytes))
    transactions = tuple(decode_transaction(raw) for raw in tx_bytes)
    return Block(header, tuple(tx_bytes), block.last_commit, transactions)


def build_with_commit(chain: LocalChain, last_commit: CommitCertificate | None) -> Block:
    """Build the next (empty) block carrying the given certificate, its header committing to it."""
    result, _ = replace(chain, last_commit=last_commit).build([])
    return result.block


def certificate_of_votes(
    height: int, block_hash: bytes, chain_id: str = CHAIN_ID, round_: int = 0
) -> CommitCertificate:
    """Return a one-validator certificate for arbitrary vote fields."""
    vote = sign_vote(make_key(1), chain_id, PRECOMMIT, height, round_, block_hash)
    return make_certificate([vote])


# Build and apply agree


def test_build_then_apply_on_the_same_state_gives_the_same_writes_and_state_root(
    chain: LocalChain, next_txs: list[Transaction]
) -> None:
    built, _ = chain.build(next_txs)
    applied = chain.apply(decode_block(encode_block(built.block)))
    assert applied.writes == built.writes
    assert applied.tx_ids == built.tx_ids == tuple(get_tx_id(tx) for tx in next_txs)
    expected_root = compute_state_root(chain.tip.state_root, applied.writes)
    assert built.block.header.state_root == expected_root
    assert get_tip_after(applied) == get_tip_after(built)


def test_build_block_is_deterministic(chain: LocalChain, next_txs: list[Transaction]) -> None:
    first, _ = chain.build(next_txs)
    second, _ = chain.build(next_txs)
    assert encode_block(first.block) == encode_block(second.block)
    assert first.writes == second.writes


def test_build_and_apply_leave_the_base_state_for_the_caller_to_commit(
    chain: LocalChain, next_txs: list[Transaction]
) -> None:
    before = dict(chain.state.items)
    built, _ = chain.build(next_txs)
    chain.apply(built.block)
    assert chain.state.items == before
    assert sign_next(chain.state, alice, record("after")).nonce == 2


def test_build_block_leaves_out_invalid_candidates_and_returns_them_as_rejected(
    chain: LocalChain,
) -> None:
    good = [sign(alice, 2, record("a2")), sign(bob, 1, record("b1")), sign(alice, 3, record("a3"))]
    unknown = sign(mallory, 1, record("m1"))
    gap = sign(alice, 4, record("a4 before a3"))
    auditor = sign(carol, 1, record("c1"))
    result, rejected = chain.build([good[0], unknown, gap, auditor, good[1], good[2]])
    assert result.tx_ids == tuple(get_tx_id(tx) for tx in good)
    assert result.block.tx_bytes == tuple(encode_transaction(tx) for tx in good)
    assert [(tx_id, error.code) for tx_id, error in rejected] == [
        (get_tx_id(unknown), "unknown_sender"),
        (get_tx_id(gap), "wrong_nonce"),
        (get_tx_id(auditor), "not_allowed"),
    ]
    # What the proposer left out does not stop the block from being valid.
    assert chain.apply(result.block).writes == result.writes


def test_build_block_rejects_a_candidate_made_invalid_by_an_earlier_one(
    chain: LocalChain,
) -> None:
    tx = sign(alice, 2, record("twice"))
    admit = sign(registrar, 1, MemberAdmitBody(address_of(mallory), "household"))
    admit_again = sign(registrar, 2, MemberAdmitBody(address_of(mallory), "business"))
    result, rejected = chain.build([tx, tx, admit, admit_again])
    assert result.tx_ids == (get_tx_id(tx), get_tx_id(admit))
    assert [error.code for _, error in rejected] == ["wrong_nonce", "already_member"]


def test_build_block_with_no_candidates_makes_a_valid_empty_block(chain: LocalChain) -> None:
    result, rejected = chain.build([])
    assert rejected == [] and result.block.tx_bytes == () and result.writes == {}
    assert chain.apply(result.block).writes == {}


def test_build_block_moves_time_past_the_previous_block(chain: LocalChain) -> None:
    result, _ = build_block(
        chain.state, chain.tip, CHAIN_ID, [], 0, chain.proposer, chain.last_commit
    )
    assert result.block.header.time_ms == chain.tip.time_ms + 1
    chain.apply(result.block)


# A chain of blocks


def test_each_block_carries_the_certificate_of_the_previous_block() -> None:
    chain = make_local_chain(members=MEMBERS)
    first = sign(alice, 1, record("r1", address_of(bob)))
    chain.commit([first])
    chain.commit([sign(bob, 1, EndorseBody(get_tx_id(first)))])
    chain.commit([])
    chain.commit([sign(registrar, 1, MemberAdmitBody(address_of(mallory), "business"))])
    assert chain.blocks[0].last_commit is None
    for previous, block, certificate in zip(
        chain.blocks, chain.blocks[1:], chain.certificates, strict=False
    ):
        assert block.last_commit == certificate
        assert certificate.block_hash == previous.hash == block.header.previous_hash
        assert block.height == previous.height + 1
    assert [block.height for block in chain.blocks] == [1, 2, 3, 4]
    assert chain.tip.height == 4 and chain.tip.block_hash == chain.blocks[-1].hash


def test_replaying_the_same_blocks_gives_the_same_state_root_and_state() -> None:
    chain = make_local_chain(members=MEMBERS)
    first = sign(alice, 1, record("r1", address_of(bob)))
    chain.commit([first, sign(bob, 1, record("r2", address_of(alice)))])
    chain.commit([sign(bob, 2, EndorseBody(get_tx_id(first)))])
    chain.commit([sign(registrar, 1, MemberAdmitBody(address_of(mallory), "household"))])
    chain.commit([sign(mallory, 1, record("m1", address_of(alice)))])
    exported = [encode_block(block) for block in chain.blocks]

    state = make_genesis_state(chain.genesis)
    tip = get_genesis_tip(chain.genesis)
    for data in exported:
        result = apply_block(state, tip, CHAIN_ID, decode_block(data))
        state.apply(result.writes)
        tip = get_tip_after(result)
    assert tip == chain.tip
    assert state.items == chain.state.items
    verify_certificate(
        chain.certificates[-1], CHAIN_ID, tip.height, tip.block_hash, get_validator_set(state)
    )


def test_genesis_tip_commits_to_the_genesis_state() -> None:
    chain = make_local_chain(members=MEMBERS)
    assert chain.tip.height == 0 and chain.tip.block_hash == chain.genesis.hash
    assert chain.tip.state_root == compute_genesis_state_root(chain.genesis)


def test_four_validators_commit_with_three_signatures() -> None:
    chain = make_local_chain(FOUR_VALIDATORS, MEMBERS)
    chain.commit([])
    cert = certify(chain.blocks[0], FOUR_VALIDATORS[:3])
    chain.apply(build_with_commit(chain, cert))


# Header links


def test_invalid_block_rejected_when_chain_id_differs(chain: LocalChain, next_block: Block) -> None:
    with pytest.raises(InvalidBlock, match="chain id"):
        chain.apply(with_header(next_block, chain_id="another-city"))


@pytest.mark.parametrize("height", [0, 1, 3, 100])
def test_invalid_block_rejected_when_height_does_not_follow_the_tip(
    chain: LocalChain, next_block: Block, height: int
) -> None:
    with pytest.raises(InvalidBlock, match="height"):
        chain.apply(with_header(next_block, height=height))


def test_invalid_block_rejected_when_previous_hash_does_not_link(
    chain: LocalChain, next_block: Block
) -> None:
    with pytest.raises(InvalidBlock, match="previous hash"):
        chain.apply(with_header(next_block, previous_hash=chain.genesis.hash))


@pytest.mark.parametrize("offset", [0, -1, -1_000_000])
def test_invalid_block_rejected_when_time_is_not_after_the_previous_block(
    chain: LocalChain, next_block: Block, offset: int
) -> None:
    with pytest.raises(InvalidBlock, match="time"):
        chain.apply(with_header(next_block, time_ms=chain.tip.time_ms + offset))


def test_invalid_block_rejected_when_validators_hash_is_wrong(
    chain: LocalChain, next_block: Block
) -> None:
    with pytest.raises(InvalidBlock, match="validator set hash"):
        chain.apply(with_header(next_block, validators_hash=bytes(32)))


def test_invalid_block_rejected_when_next_validators_hash_is_wrong(
    chain: LocalChain, next_block: Block
) -> None:
    with pytest.raises(InvalidBlock, match="next validator set"):
        chain.apply(with_header(next_block, next_validators_hash=bytes(32)))


@pytest.mark.parametrize("seed", [REGISTRAR_SEED, OUTSIDER_SEED])
def test_invalid_block_rejected_when_proposer_is_not_a_validator(
    chain: LocalChain, next_block: Block, seed: int
) -> None:
    with pytest.raises(InvalidBlock, match="proposer"):
        chain.apply(with_header(next_block, proposer=make_key(seed).public_key))


# Transactions and roots


def test_invalid_block_rejected_when_tx_root_is_wrong(chain: LocalChain, next_block: Block) -> None:
    with pytest.raises(InvalidBlock, match="transaction root"):
        chain.apply(with_header(next_block, tx_root=hashlib.sha256(b"other").digest()))


def test_invalid_block_rejected_when_transactions_do_not_match_the_tx_root(
    chain: LocalChain, next_block: Block
) -> None:
    tampered = replace(next_block, tx_bytes=tuple(reversed(next_block.tx_bytes)))
    with pytest.raises(InvalidBlock, match="transaction root"):
        chain.apply(tampered)


def test_invalid_block_rejected_when_transaction_count_differs_from_the_header(
    chain: LocalChain, next_block: Block
) -> None:
    tampered = replace(next_block, tx_bytes=next_block.tx_bytes[:2])
    with pytest.raises(InvalidBlock, match="header says 3 transactions"):
        chain.apply(tampered)


def test_invalid_block_rejected_when_state_root_is_wrong(
    chain: LocalChain, next_block: Block
) -> None:
    with pytest.raises(InvalidBlock, match="state root"):
        chain.apply(with_header(next_block, state_root=chain.tip.state_root))


def test_invalid_block_rejected_when_a_transaction_is_changed(
    chain: LocalChain, next_block: Block, next_txs: list[Transaction]
) -> None:
    body = next_txs[2].body
    assert isinstance(body, RecordBody)
    changed = replace(next_txs[2], body=replace(body, amount=1))
    tx_bytes = list(next_block.tx_bytes)
    tx_bytes[2] = encode_transaction(changed)
    with pytest.raises(InvalidBlock, match="transaction 2 .*signature does not verify"):
        chain.apply(with_transactions(next_block, tx_bytes))


def test_invalid_block_rejected_when_a_transaction_is_swapped_for_another_signed_one(
    chain: LocalChain, next_block: Block
) -> None:
    # Alice signed a second transaction with the same nonce; its signature is valid.
    conflicting = sign(alice, 3, record("third, rewritten"))
    tx_bytes = list(next_block.tx_bytes)
    tx_bytes[1] = encode_transaction(conflicting)
    with pytest.raises(InvalidBlock, match="state root"):
        chain.apply(with_transactions(next_block, tx_bytes))


def test_invalid_block_rejected_when_a_transaction_is_removed(
    chain: LocalChain, next_block: Block
) -> None:
    tampered = with_transactions(next_block, list(next_block.tx_bytes[:2]))
    with pytest.raises(InvalidBlock, match="state root"):
        chain.apply(tampered)


def test_invalid_block_rejected_when_a_dependency_is_removed(
    chain: LocalChain, next_block: Block
) -> None:
    tampered = with_transactions(next_block, list(next_block.tx_bytes[1:]))
    with pytest.raises(InvalidBlock, match="transaction 0 .*nonce 3, expected 2"):
        chain.apply(tampered)


def test_invalid_block_rejected_when_a_valid_transaction_is_added(
    chain: LocalChain, next_block: Block
) -> None:
    extra = sign(registrar, 1, MemberAdmitBody(address_of(mallory), "household"))
    tampered = with_transactions(next_block, [*next_block.tx_bytes, encode_transaction(extra)])
    with pytest.raises(InvalidBlock, match="state root"):
        chain.apply(tampered)


def test_invalid_block_rejected_when_one_senders_transactions_are_reordered(
    chain: LocalChain, next_block: Block
) -> None:
    first, second, third = next_block.tx_bytes
    with pytest.raises(InvalidBlock, match="transaction 0 .*nonce 3, expected 2"):
        chain.apply(with_transactions(next_block, [second, first, third]))


def test_reordering_independent_transactions_makes_another_block_the_certificate_does_not_cover(
    chain: LocalChain, next_block: Block
) -> None:
    first, second, third = next_block.tx_bytes
    reordered = with_transactions(next_block, [third, first, second])
    # The resulting state is the same, so the block is valid in itself, but it is another
    # block: the certificate of the original block cannot be presented for it.
    result = chain.apply(reordered)
    assert result.writes == chain.apply(next_block).writes
    assert reordered.hash != next_block.hash
    certificate = certify(next_block, chain.validator_keys)
    with pytest.raises(InvalidBlock, match="certificate is for"):
        verify_certificate(certificate, CHAIN_ID, 2, reordered.hash, get_validator_set(chain.state))


def test_invalid_block_rejected_when_it_carries_the_same_transaction_twice(
    chain: LocalChain, next_block: Block
) -> None:
    tampered = with_transactions(next_block, [*next_block.tx_bytes, next_block.tx_bytes[0]])
    with pytest.raises(InvalidBlock, match="same transaction twice"):
        chain.apply(tampered)


def test_invalid_block_rejected_when_a_transaction_breaks_a_rule(chain: LocalChain) -> None:
    auditor_record = sign(carol, 1, record("not allowed"))
    block = with_transactions(chain.build([])[0].block, [encode_transaction(auditor_record)])
    with pytest.raises(InvalidBlock, match="transaction 0 .*may not record"):
        chain.apply(block)


# Certificates


def test_invalid_block_rejected_when_certificate_is_missing_at_height_two(
    chain: LocalChain,
) -> None:
    with pytest.raises(InvalidBlock, match="lacks the certificate of block 1"):
        chain.apply(build_with_commit(chain, None))


def test_invalid_block_rejected_when_certificate_signature_is_invalid(chain: LocalChain) -> None:
    assert chain.last_commit is not None
    ((signer, signature),) = chain.last_commit.signatures
    flipped = signature[:-1] + bytes([signature[-1] ^ 0x01])
    cert = replace(chain.last_commit, signatures=((signer, flipped),))
    with pytest.raises(InvalidBlock, match="does not verify"):
        chain.apply(build_with_commit(chain, cert))


def test_invalid_block_rejected_when_certificate_is_signed_by_a_non_validator(
    chain: LocalChain,
) -> None:
    cert = certify(chain.blocks[0], [alice])
    with pytest.raises(InvalidBlock, match="not a validator"):
        chain.apply(build_with_commit(chain, cert))


def test_invalid_block_rejected_when_certificate_adds_a_non_validator_signer(
    chain: LocalChain,
) -> None:
    cert = certify(chain.blocks[0], [make_key(1), alice])
    with pytest.raises(InvalidBlock, match="not a validator"):
        chain.apply(build_with_commit(chain, cert))


def test_invalid_block_rejected_when_certificate_lists_a_signer_twice() -> None:
    chain = make_local_chain(FOUR_VALIDATORS, MEMBERS)
    chain.commit([])
    one = certify(chain.blocks[0], FOUR_VALIDATORS[:1])
    # Three copies of one signature would reach the quorum of 3 if they counted.
    cert = replace(one, signatures=one.signatures * 3)
    with pytest.raises(InvalidBlock, match="signer twice"):
        chain.apply(build_with_commit(chain, cert))


def test_invalid_block_rejected_when_certificate_signers_are_out_of_order() -> None:
    chain = make_local_chain(FOUR_VALIDATORS, MEMBERS)
    chain.commit([])
    sorted_cert = certify(chain.blocks[0], FOUR_VALIDATORS)
    cert = replace(sorted_cert, signatures=tuple(reversed(sorted_cert.signatures)))
    with pytest.raises(InvalidBlock, match="out of order"):
        chain.apply(build_with_commit(chain, cert))


def test_invalid_block_rejected_when_certificate_lacks_a_quorum() -> None:
    chain = make_local_chain(FOUR_VALIDATORS, MEMBERS)
    chain.commit([])
    cert = certify(chain.blocks[0], FOUR_VALIDATORS[:2])
    with pytest.raises(InvalidBlock, match="power 2, needs 3"):
        chain.apply(build_with_commit(chain, cert))


def test_invalid_block_rejected_when_certificate_has_no_signatures(chain: LocalChain) -> None:
    assert chain.last_commit is not None
    cert = replace(chain.last_commit, signatures=())
    with pytest.raises(InvalidBlock, match="power 0"):
        chain.apply(build_with_commit(chain, cert))


def test_invalid_block_rejected_when_certificate_is_for_another_block_hash(
    chain: LocalChain,
) -> None:
    cert = certificate_of_votes(1, hashlib.sha256(b"another block").digest())
    with pytest.raises(InvalidBlock, match="certificate is for"):
        chain.apply(build_with_commit(chain, cert))


def test_invalid_block_rejected_when_certificate_is_for_another_height(chain: LocalChain) -> None:
    cert = certificate_of_votes(2, chain.blocks[0].hash)
    with pytest.raises(InvalidBlock, match="certificate is for height 2"):
        chain.apply(build_with_commit(chain, cert))


def test_invalid_block_rejected_when_certificate_is_signed_for_another_chain(
    chain: LocalChain,
) -> None:
    cert = certificate_of_votes(1, chain.blocks[0].hash, chain_id="another-city")
    with pytest.raises(InvalidBlock, match="does not verify"):
        chain.apply(build_with_commit(chain, cert))


def test_invalid_block_rejected_when_certificate_round_is_changed(chain: LocalChain) -> None:
    assert chain.last_commit is not None
    cert = replace(chain.last_commit, round=1)
    with pytest.raises(InvalidBlock, match="does not verify"):
        chain.apply(build_with_commit(chain, cert))


def test_certificate_of_a_later_round_is_accepted(chain: LocalChain) -> None:
    cert = certificate_of_votes(1, chain.blocks[0].hash, round_=3)
    chain.apply(build_with_commit(chain, cert))


def test_invalid_block_rejected_when_carried_certificate_differs_from_the_header(
    chain: LocalChain, next_block: Block
) -> None:
    other = certificate_of_votes(1, chain.blocks[0].hash, round_=1)
    with pytest.raises(InvalidBlock, match="last commit hash"):
        chain.apply(replace(next_block, last_commit=other))


def test_invalid_block_rejected_when_block_one_carries_a_certificate() -> None:
    chain = make_local_chain(members=MEMBERS)
    cert = certificate_of_votes(0, chain.genesis.hash)
    with pytest.raises(InvalidBlock, match="block 1 cannot carry a certificate"):
        chain.apply(build_with_commit(chain, cert))


# Encoding


def test_block_encode_decode_round_trip(chain: LocalChain, next_block: Block) -> None:
    for block in (chain.blocks[0], next_block):
        decoded = decode_block(encode_block(block))
        assert decoded == block
        assert decoded.hash == block.hash
        assert decoded.transactions == block.transactions
        assert encode_block(decoded) == encode_block(block)


def test_decode_block_refuses_trailing_bytes(next_block: Block) -> None:
    with pytest.raises(DecodeError, match="trailing"):
        decode_block(encode_block(next_block) + b"\x00")


def test_decode_block_refuses_a_truncated_block(next_block: Block) -> None:
    with pytest.raises(DecodeError):
        decode_block(encode_block(next_block)[:-1])
