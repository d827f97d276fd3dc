"""Inclusion proofs: made from a committed block, checked offline against a pinned genesis."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from danangchain.block import Block, compute_tx_root
from danangchain.errors import DecodeError
from danangchain.genesis import make_genesis
from danangchain.ledger import apply_block, get_genesis_tip, get_tip_after, get_validator_set
from danangchain.proof import (
    Handover,
    InclusionProof,
    InvalidProof,
    check_inclusion_proof,
    decode_proof_json,
    encode_proof_json,
    make_inclusion_proof,
)
from danangchain.transaction import compute_tx_id
from danangchain.validators import (
    CommitCertificate,
    Validator,
    ValidatorSet,
    compute_validator_set_hash,
)
from tests.unit.audit_fixtures import FOUR_VALIDATORS, MEMBERS, BuiltChain, build_chain
from tests.unit.ledger_fixtures import CHAIN_ID, certify, make_key, make_local_chain
from tests.unit.test_audit import build_governed_chain


@pytest.fixture(scope="module")
def chain() -> BuiltChain:
    """A four-validator chain: block 2 holds four transactions."""
    return build_chain(3, FOUR_VALIDATORS)


def proof_of(chain: BuiltChain, height: int = 2, index: int = 1) -> InclusionProof:
    """Return the proof of one transaction of the chain."""
    block = chain.blocks[height - 1]
    return make_inclusion_proof(chain.genesis, block, index, chain.certificates[height - 1])


def invalid_reason(proof: InclusionProof, pinned: bytes) -> str:
    """Return why a proof is refused."""
    with pytest.raises(InvalidProof) as caught:
        check_inclusion_proof(proof, pinned)
    return str(caught.value)


def test_proof_of_every_transaction_checks(chain: BuiltChain) -> None:
    for block in chain.blocks:
        for index, raw in enumerate(block.tx_bytes):
            proven = check_inclusion_proof(proof_of(chain, block.height, index), chain.genesis.hash)
            assert proven.tx_id == compute_tx_id(raw)
            assert (proven.height, proven.index, proven.block_hash) == (
                block.height,
                index,
                block.hash,
            )
            assert proven.signed_power == 4 and proven.total_power == 4


def test_proof_survives_its_json_file(chain: BuiltChain) -> None:
    proof = proof_of(chain)
    text = encode_proof_json(proof)
    assert decode_proof_json(text) == proof
    document = json.loads(text)
    assert document["tx_id"] == compute_tx_id(proof.tx_bytes).hex()
    assert document["header"]["height"] == 2 and document["genesis"]["chain_id"] == CHAIN_ID


def test_proof_against_another_pinned_genesis_is_invalid(chain: BuiltChain) -> None:
    assert "is not the pinned" in invalid_reason(proof_of(chain), bytes(32))


def test_other_transaction_at_the_index_is_invalid(chain: BuiltChain) -> None:
    proof = proof_of(chain)
    other = replace(proof, tx_bytes=chain.blocks[1].tx_bytes[2])
    assert "Merkle path does not lead" in invalid_reason(other, chain.genesis.hash)


def test_other_index_is_invalid(chain: BuiltChain) -> None:
    proof = replace(proof_of(chain), index=2)
    assert "Merkle path" in invalid_reason(proof, chain.genesis.hash)


def test_changed_merkle_path_is_invalid(chain: BuiltChain) -> None:
    proof = proof_of(chain)
    path = (bytes(32), *proof.merkle_path[1:])
    assert "Merkle path" in invalid_reason(replace(proof, merkle_path=path), chain.genesis.hash)


def test_header_changed_to_fit_another_transaction_is_invalid(chain: BuiltChain) -> None:
    # A forger puts a transaction of their own under a header they rebuilt around it.
    proof = proof_of(chain)
    forged = chain.blocks[0].tx_bytes[0]
    header = replace(proof.header, tx_root=compute_tx_root([forged]), tx_count=1)
    forged_proof = replace(proof, tx_bytes=forged, index=0, merkle_path=(), header=header)
    assert "certificate" in invalid_reason(forged_proof, chain.genesis.hash)


def test_certificate_without_a_quorum_is_invalid(chain: BuiltChain) -> None:
    proof = proof_of(chain)
    thin = certify(chain.blocks[1], FOUR_VALIDATORS[:2])
    reason = invalid_reason(replace(proof, certificate=thin), chain.genesis.hash)
    assert "power 2, needs 3" in reason


def test_header_of_another_validator_set_is_refused(chain: BuiltChain) -> None:
    proof = proof_of(chain)
    other = ValidatorSet.of([Validator(make_key(31).public_key, "other")])
    header = replace(proof.header, validators_hash=compute_validator_set_hash(other))
    reason = invalid_reason(replace(proof, header=header), chain.genesis.hash)
    assert "names a validator set other than the one trusted there" in reason


def test_forged_genesis_with_the_forgers_validators_is_invalid(chain: BuiltChain) -> None:
    forger = make_key(31)
    genesis = make_genesis(
        CHAIN_ID, chain.genesis.time_ms, [Validator(forger.public_key, "forger")], []
    )
    proof = replace(proof_of(chain), genesis=genesis)
    assert "is not the pinned" in invalid_reason(proof, chain.genesis.hash)


def test_header_of_another_chain_is_invalid(chain: BuiltChain) -> None:
    proof = proof_of(chain)
    header = replace(proof.header, chain_id="elsewhere")
    assert "chain 'elsewhere'" in invalid_reason(replace(proof, header=header), chain.genesis.hash)


# The JSON file, decoded strictly


def edited(proof: InclusionProof, **changes: object) -> str:
    """Return the proof's JSON with top-level fields changed."""
    document = json.loads(encode_proof_json(proof))
    document.update(changes)
    return json.dumps(document)


@pytest.mark.parametrize(
    "changes",
    [
        {"format": "something-else"},
        {"version": 3},
        {"handovers": {}},
        {"handovers": [{"header": {}}]},
        {"tx_id": "00" * 32},
        {"height": 3},
        {"block_hash": "11" * 32},
        {"index": -1},
        {"index": 1.0},
        {"tx": "zz"},
        {"merkle_path": ["AB" * 32]},
        {"merkle_path": ["ab cd"]},
    ],
)
def test_malformed_or_inconsistent_proof_document_is_refused(
    chain: BuiltChain, changes: dict[str, object]
) -> None:
    with pytest.raises(DecodeError):
        decode_proof_json(edited(proof_of(chain), **changes))


def test_proof_document_that_is_not_json_is_refused() -> None:
    for text in ("", "[]", "not json", '{"format": "danangchain/inclusion-proof"}'):
        with pytest.raises(DecodeError):
            decode_proof_json(text)


# After validator changes: the proof carries the hand-overs from the genesis set


def governed_proof(chain: BuiltChain, height: int, index: int = 0) -> InclusionProof:
    """Return the proof of a transaction of the governed chain, with its hand-overs."""
    handovers = tuple(
        Handover(block.header, certificate, next_set)
        for block, certificate, next_set in handovers_below(chain, height)
    )
    block = chain.blocks[height - 1]
    return make_inclusion_proof(
        chain.genesis, block, index, chain.certificates[height - 1], handovers
    )


def handovers_below(
    chain: BuiltChain, height: int
) -> list[tuple[Block, CommitCertificate, ValidatorSet]]:
    """Return the blocks below `height` after which another set signs, with that set."""
    state = make_local_chain(FOUR_VALIDATORS, MEMBERS).state
    found = []
    tip = get_genesis_tip(chain.genesis)
    for block, certificate in zip(chain.blocks[: height - 1], chain.certificates, strict=False):
        result = apply_block(state, tip, CHAIN_ID, block)
        state.apply(result.writes)
        tip = get_tip_after(result)
        if block.header.next_validators_hash != block.header.validators_hash:
            found.append((block, certificate, get_validator_set(state)))
    return found


@pytest.fixture(scope="module")
def governed() -> BuiltChain:
    """Five validators sign from height 4, four (another four) from height 7."""
    return build_governed_chain()


def test_a_proof_after_validator_changes_carries_its_hand_overs(governed: BuiltChain) -> None:
    last = len(governed.blocks)
    proof = governed_proof(governed, last)
    assert [h.header.height for h in proof.handovers] == [3, 6]
    proven = check_inclusion_proof(proof, governed.genesis.hash)
    assert (proven.height, proven.total_power) == (last, 4)
    again = decode_proof_json(encode_proof_json(proof))
    assert again == proof
    assert check_inclusion_proof(again, governed.genesis.hash) == proven
    # Heights before the first change need none.
    assert governed_proof(governed, 2).handovers == ()
    assert (
        check_inclusion_proof(governed_proof(governed, 5), governed.genesis.hash).total_power == 5
    )


def test_a_proof_missing_a_hand_over_is_invalid(governed: BuiltChain) -> None:
    proof = governed_proof(governed, len(governed.blocks))
    for kept in ((), proof.handovers[:1], proof.handovers[1:]):
        reason = invalid_reason(replace(proof, handovers=kept), governed.genesis.hash)
        assert "a hand-over is missing or forged" in reason


def test_a_hand_over_to_a_set_its_header_does_not_name_is_invalid(governed: BuiltChain) -> None:
    proof = governed_proof(governed, len(governed.blocks))
    forger = ValidatorSet.of([Validator(make_key(31).public_key, "forger")])
    first, second = proof.handovers
    forged = (replace(first, next_set=forger), second)
    reason = invalid_reason(replace(proof, handovers=forged), governed.genesis.hash)
    assert "the set handed over at height 3 is not the one its header names" in reason


def test_hand_overs_out_of_order_or_uncertified_are_invalid(governed: BuiltChain) -> None:
    proof = governed_proof(governed, len(governed.blocks))
    first, second = proof.handovers
    repeated = replace(proof, handovers=(first, first, second))
    assert "hand-over at height 3 is out of order" in invalid_reason(
        repeated, governed.genesis.hash
    )
    thin = replace(first, certificate=certify(governed.blocks[2], FOUR_VALIDATORS[:2]))
    reason = invalid_reason(replace(proof, handovers=(thin, second)), governed.genesis.hash)
    assert "hand-over certificate at height 3" in reason


def test_a_version_1_proof_still_checks(chain: BuiltChain) -> None:
    document = json.loads(encode_proof_json(proof_of(chain)))
    document["version"] = 1
    del document["handovers"]
    proof = decode_proof_json(json.dumps(document))
    assert check_inclusion_proof(proof, chain.genesis.hash).height == 2
