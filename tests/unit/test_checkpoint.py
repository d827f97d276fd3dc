"""Witness checkpoints: cosigning, never two for one height, the on-chain rule, and the
auditor's checks of a chain and of a proved block against pinned witnesses."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from danangchain.audit import AuditFailure, ChainAuditor
from danangchain.block import encode_block
from danangchain.checkpoint import (
    Checkpoint,
    CheckpointBook,
    ConflictingCheckpoint,
    InvalidCosignature,
    check_conflicting_block,
    decode_checkpoints_file,
    decode_cosignature_json,
    encode_checkpoints_file,
    encode_cosignature_json,
    is_valid_cosignature,
    make_checkpoint_body,
    sign_checkpoint,
)
from danangchain.errors import DecodeError, InvalidBlock, InvalidTransaction
from danangchain.ledger import ChainTip
from danangchain.transaction import (
    CheckpointBody,
    RecordBody,
    decode_transaction,
    encode_transaction,
)
from danangchain.validators import encode_certificate
from danangchain.witness_check import (
    ChainWitnessCheck,
    ProofWitnesses,
    WitnessCheckFailed,
    WitnessRequirement,
    attach_proof_witnesses,
    check_witnessed_block,
    decode_proof_witnesses,
)
from tests.unit.ledger_fixtures import (
    CHAIN_ID,
    HOUSEHOLD_SEED,
    LocalChain,
    make_key,
    make_local_chain,
    sign_next,
)

witness = make_key(21)
other_witness = make_key(22)
alice = make_key(HOUSEHOLD_SEED)
MEMBERS = [(witness, "witness"), (other_witness, "witness"), (alice, "household")]


def record(text: str) -> RecordBody:
    return RecordBody("invoice", hashlib.sha256(text.encode()).digest(), memo=text)


def grow(chain: LocalChain, blocks: int, label: str) -> None:
    for height in range(blocks):
        chain.commit([sign_next(chain.state, alice, record(f"{label} {height}"))])


def checkpoint_of(tip: ChainTip) -> Checkpoint:
    return Checkpoint(CHAIN_ID, tip.height, tip.block_hash, tip.state_root)


def tips_of(chain: LocalChain) -> list[ChainTip]:
    auditor = ChainAuditor(chain.genesis)
    tips = []
    for block, certificate in zip(chain.blocks, chain.certificates, strict=True):
        tips.append(auditor.check_block(encode_block(block), encode_certificate(certificate)).tip)
    return tips


def replay(chain: LocalChain, check: ChainWitnessCheck) -> None:
    for tip in tips_of(chain):
        check.observe(tip)
    check.finish(chain.tip)


def forked_chains() -> tuple[LocalChain, LocalChain]:
    """Two chains from one genesis and one validator key: equal for 2 blocks, then not."""
    first, second = make_local_chain(members=MEMBERS), make_local_chain(members=MEMBERS)
    for chain in (first, second):
        grow(chain, 2, "shared")
    grow(first, 4, "first")
    grow(second, 4, "second")
    return first, second


# Cosigning


@given(
    height=st.integers(min_value=1, max_value=2**40),
    block_hash=st.binary(min_size=32, max_size=32),
    state_root=st.binary(min_size=32, max_size=32),
)
def test_a_cosignature_verifies_only_for_its_exact_checkpoint_and_chain(
    height: int, block_hash: bytes, state_root: bytes
) -> None:
    checkpoint = Checkpoint(CHAIN_ID, height, block_hash, state_root)
    cosignature = sign_checkpoint(witness, checkpoint)
    assert is_valid_cosignature(cosignature)
    assert decode_cosignature_json(encode_cosignature_json(cosignature)) == cosignature
    for changed in (
        Checkpoint("another-chain", height, block_hash, state_root),
        Checkpoint(CHAIN_ID, height + 1, block_hash, state_root),
        Checkpoint(CHAIN_ID, height, bytes(a ^ 1 for a in block_hash), state_root),
    ):
        moved = type(cosignature)(changed, cosignature.witness, cosignature.signature)
        assert not is_valid_cosignature(moved)


@given(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 2)), max_size=30))
def test_a_witness_never_signs_two_different_checkpoints_for_one_height(
    attempts: list[tuple[int, int]],
) -> None:
    book = CheckpointBook(witness.public_key, CHAIN_ID)
    signed: dict[int, bytes] = {}
    for height, variant in attempts:
        checkpoint = Checkpoint(CHAIN_ID, height, bytes([variant]) * 32, bytes(32))
        if height in signed and signed[height] != checkpoint.block_hash:
            with pytest.raises(ConflictingCheckpoint):
                book.sign(witness, checkpoint)
            assert book.find_contradiction(height, checkpoint.block_hash) is not None
        else:
            cosignature, new = book.sign(witness, checkpoint)
            assert new == (height not in signed)
            signed[height] = checkpoint.block_hash
            assert cosignature.checkpoint == checkpoint
    for height, block_hash in signed.items():
        cosigned = book.get(height)
        assert cosigned is not None and cosigned.checkpoint.block_hash == block_hash


def test_checkpoints_files_round_trip_and_refuse_what_is_not_one() -> None:
    cosignatures = [
        sign_checkpoint(witness, Checkpoint(CHAIN_ID, h, bytes([h]) * 32, bytes(32)))
        for h in (1, 5)
    ]
    assert decode_checkpoints_file(encode_checkpoints_file(cosignatures)) == cosignatures
    for text in ("[]", '{"format": "x"}', "not json", '{"format": "danangchain/checkpoints"}'):
        with pytest.raises(DecodeError):
            decode_checkpoints_file(text)
    broken = encode_cosignature_json(cosignatures[0]) | {"block_hash": "AB" * 32}
    with pytest.raises(DecodeError, match="lowercase hex"):
        decode_cosignature_json(broken)


def test_a_certified_block_that_contradicts_a_cosigned_one_is_evidence() -> None:
    first, second = forked_chains()
    height = 4
    cosignature = sign_checkpoint(witness, checkpoint_of(tips_of(first)[height - 1]))
    block, certificate = second.blocks[height - 1], second.certificates[height - 1]
    validator_set = first.genesis.validator_set
    check_conflicting_block(cosignature, block.header, certificate, validator_set)
    same = first.blocks[height - 1]
    with pytest.raises(DecodeError, match="cosigned one"):
        check_conflicting_block(cosignature, same.header, first.certificates[3], validator_set)
    with pytest.raises(InvalidBlock):  # a certificate of another block is no evidence
        check_conflicting_block(cosignature, block.header, first.certificates[3], validator_set)


# On chain


def submit_checkpoint(chain: LocalChain, key: object, body: CheckpointBody) -> list[object]:
    tx = sign_next(chain.state, key, body)  # type: ignore[arg-type]
    assert decode_transaction(encode_transaction(tx)) == tx
    result, rejected = chain.build([tx])
    if not rejected:
        chain.commit([tx])
    return [reason for _, reason in rejected]


def test_a_witness_puts_its_checkpoints_on_chain_one_per_height_going_up() -> None:
    chain = make_local_chain(members=MEMBERS)
    grow(chain, 3, "block")
    tips = tips_of(chain)
    body = make_checkpoint_body(sign_checkpoint(witness, checkpoint_of(tips[1])))
    assert submit_checkpoint(chain, witness, body) == []
    [again] = submit_checkpoint(chain, witness, body)
    assert isinstance(again, InvalidTransaction) and again.code == "checkpoint_not_newer"
    later = make_checkpoint_body(sign_checkpoint(witness, checkpoint_of(tips[2])))
    assert submit_checkpoint(chain, witness, later) == []


def test_checkpoints_of_non_witnesses_bad_signatures_and_future_heights_are_refused() -> None:
    chain = make_local_chain(members=MEMBERS)
    grow(chain, 2, "block")
    tip = tips_of(chain)[0]
    by_alice = make_checkpoint_body(sign_checkpoint(alice, checkpoint_of(tip)))
    [refused] = submit_checkpoint(chain, alice, by_alice)
    assert refused.code == "not_witness"  # type: ignore[attr-defined]
    assert "only a member with the role witness" in str(refused)
    forged = make_checkpoint_body(sign_checkpoint(other_witness, checkpoint_of(tip)))
    [refused] = submit_checkpoint(chain, witness, forged)
    assert "signature does not verify" in str(refused)
    future = Checkpoint(CHAIN_ID, chain.tip.height + 1, bytes(32), bytes(32))
    [refused] = submit_checkpoint(
        chain, witness, make_checkpoint_body(sign_checkpoint(witness, future))
    )
    assert refused.code == "bad_checkpoint"  # type: ignore[attr-defined]


# The auditor: a chain


def requirement(minimum: int = 1) -> WitnessRequirement:
    return WitnessRequirement(frozenset({witness.public_key, other_witness.public_key}), minimum)


def test_the_witnessed_chain_passes_and_its_fork_fails_at_the_first_cosigned_difference() -> None:
    first, second = forked_chains()
    cosignatures = [sign_checkpoint(witness, checkpoint_of(tip)) for tip in tips_of(first)]
    agreement = ChainWitnessCheck(CHAIN_ID, requirement(), cosignatures)
    replay(first, agreement)
    with pytest.raises(AuditFailure) as failed:
        replay(second, ChainWitnessCheck(CHAIN_ID, requirement(), cosignatures))
    assert failed.value.height == 3  # the first block the fork changed
    assert "not the block witness" in failed.value.reason
    assert "agreed with that witness's checkpoint at height 2" in failed.value.reason


def test_a_chain_needs_k_agreeing_witnesses() -> None:
    first, _ = forked_chains()
    tips = tips_of(first)
    one = [sign_checkpoint(witness, checkpoint_of(tips[2]))]
    with pytest.raises(AuditFailure, match="1 of the pinned witnesses"):
        replay(first, ChainWitnessCheck(CHAIN_ID, requirement(2), one))
    both = [*one, sign_checkpoint(other_witness, checkpoint_of(tips[4]))]
    check = ChainWitnessCheck(CHAIN_ID, requirement(2), both)
    for tip in tips:
        check.observe(tip)
    assert check.finish(first.tip).witnessed_height == 3


def test_cosignatures_of_unpinned_keys_other_chains_or_bad_signatures_are_refused() -> None:
    tip = ChainTip(1, bytes(32), 0, bytes(32))
    unpinned = sign_checkpoint(alice, checkpoint_of(tip))
    with pytest.raises(InvalidCosignature, match="not a pinned witness"):
        ChainWitnessCheck(CHAIN_ID, requirement(), [unpinned])
    other = sign_checkpoint(witness, Checkpoint("other", 1, bytes(32), bytes(32)))
    with pytest.raises(InvalidCosignature, match="of chain 'other'"):
        ChainWitnessCheck(CHAIN_ID, requirement(), [other])
    good = sign_checkpoint(witness, checkpoint_of(tip))
    forged = type(good)(good.checkpoint, other_witness.public_key, good.signature)
    with pytest.raises(InvalidCosignature, match="does not verify"):
        ChainWitnessCheck(CHAIN_ID, requirement(), [forged])
    with pytest.raises(DecodeError, match="min-witnesses 3"):
        requirement(3)


# The auditor: a proved block


def test_a_proved_block_links_to_checkpoints_above_it_by_its_headers() -> None:
    first, second = forked_chains()
    headers = [block.header for block in first.blocks]
    cosigned = sign_checkpoint(witness, checkpoint_of(tips_of(first)[5]))
    proved = headers[2]
    agreement = check_witnessed_block(proved, headers[3:6], [cosigned], requirement())
    assert agreement.agreeing == {witness.public_key: 6}
    with pytest.raises(WitnessCheckFailed, match="0 pinned witnesses"):
        check_witnessed_block(proved, headers[3:5], [cosigned], requirement())
    with pytest.raises(WitnessCheckFailed, match="does not follow block"):
        check_witnessed_block(
            proved, [second.blocks[3].header, *headers[4:6]], [cosigned], requirement()
        )
    fork_headers = [block.header for block in second.blocks]
    with pytest.raises(WitnessCheckFailed, match="cosigned another block at height 6"):
        check_witnessed_block(fork_headers[2], fork_headers[3:6], [cosigned], requirement())


def test_a_proof_files_witness_section_round_trips() -> None:
    first, _ = forked_chains()
    section = ProofWitnesses(
        tuple(block.header for block in first.blocks[1:3]),
        (sign_checkpoint(witness, checkpoint_of(tips_of(first)[2])),),
    )
    text = attach_proof_witnesses('{"format": "danangchain/inclusion-proof"}', section)
    assert decode_proof_witnesses(text) == section
    assert decode_proof_witnesses("{}") == ProofWitnesses((), ())
    with pytest.raises(DecodeError, match="proof witnesses"):
        decode_proof_witnesses('{"witnesses": {"headers": 3, "cosignatures": []}}')
