"""Inclusion proofs: made from a committed block, checked offline against a pinned genesis."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from danangchain.block import compute_tx_root
from danangchain.errors import DecodeError
from danangchain.genesis import make_genesis
from danangchain.proof import (
    InclusionProof,
    InvalidProof,
    check_inclusion_proof,
    decode_proof_json,
    encode_proof_json,
    make_inclusion_proof,
)
from danangchain.transaction import compute_tx_id
from danangchain.validators import Validator, ValidatorSet, compute_validator_set_hash
from tests.unit.audit_fixtures import FOUR_VALIDATORS, BuiltChain, build_chain
from tests.unit.ledger_fixtures import CHAIN_ID, certify, make_key


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
    assert "not the genesis set" in reason and "change history" in reason


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
        {"version": 2},
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
