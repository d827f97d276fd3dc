"""The bytes each signature covers are pinned: stored chains and test vectors depend on them.

A change to any expected value below invalidates every signature already made with it.
"""

from __future__ import annotations

from danangchain import ed25519
from danangchain.signing import (
    DOMAIN_PEER,
    DOMAIN_PROPOSAL,
    DOMAIN_TX,
    DOMAIN_VOTE,
    compute_peer_signing_bytes,
    compute_proposal_signing_bytes,
    compute_tx_signing_bytes,
    compute_vote_signing_bytes,
)
from danangchain.transaction import (
    KIND_ENDORSE,
    KIND_RECORD,
    EndorseBody,
    RecordBody,
    encode_body,
    sign_transaction,
    verify_transaction_signature,
)

CHAIN = "danang-1"
RECORD = RecordBody(
    "invoice", bytes(range(32)), amount=1_250_000, counterparty=bytes([7]) * 20, memo="hoá đơn"
)

# Computed with the definitions as they stood before they moved here (commit e3fd05b).
EXPECTED_ENDORSE = (
    "96b164616e616e67636861696e2f74782f7631a864616e616e672d31c42002020202020202020202"
    "0202020202020202020202020202020202020202020201a7656e646f72736591c420090909090909"
    "0909090909090909090909090909090909090909090909090909"
)
EXPECTED_PROPOSAL = (
    "96b764616e616e67636861696e2f70726f706f73616c2f7631a864616e616e672d310c03c4200606"
    "06060606060606060606060606060606060606060606060606060606060601"
)
EXPECTED_PROPOSAL_FRESH = (
    "96b764616e616e67636861696e2f70726f706f73616c2f7631a864616e616e672d310c00c4200606"
    "060606060606060606060606060606060606060606060606060606060606ff"
)
EXPECTED_TX = (
    "96b164616e616e67636861696e2f74782f7631a864616e616e672d31c42001010101010101010101"
    "0101010101010101010101010101010101010101010103a67265636f726497a7696e766f696365c4"
    "20000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1fce001312d0c414"
    "0707070707070707070707070707070707070707aa686fc3a120c491c6a16ec0c0"
)
EXPECTED_VOTE = (
    "96b364616e616e67636861696e2f766f74652f7631a864616e616e672d31a9707265636f6d6d6974"
    "0c02c4200505050505050505050505050505050505050505050505050505050505050505"
)
EXPECTED_VOTE_NIL = (
    "96b364616e616e67636861696e2f766f74652f7631a864616e616e672d31a7707265766f74650c00c0"
)
EXPECTED_PEER = (
    "96b364616e616e67636861696e2f706565722f7631a864616e616e672d31a4504f5354ae2f703270"
    "2f636f6e73656e737573cf0000018bcfe56800c420cdca8b98b1dc607bbdc15ba076869dc8b8d9f2"
    "6d207114ce1983bf74717f6401"
)


def test_domains_are_distinct_and_versioned() -> None:
    domains = [DOMAIN_TX, DOMAIN_VOTE, DOMAIN_PROPOSAL, DOMAIN_PEER]
    assert len(set(domains)) == 4 and all(d.endswith("/v1") for d in domains)


def test_transaction_signing_bytes_are_unchanged() -> None:
    signed = compute_tx_signing_bytes(CHAIN, bytes([1]) * 32, 3, KIND_RECORD, encode_body(RECORD))
    assert signed.hex() == EXPECTED_TX
    endorse = encode_body(EndorseBody(bytes([9]) * 32))
    signed = compute_tx_signing_bytes(CHAIN, bytes([2]) * 32, 1, KIND_ENDORSE, endorse)
    assert signed.hex() == EXPECTED_ENDORSE


def test_a_signed_transaction_signs_the_pinned_bytes() -> None:
    key = ed25519.signing_key_from_seed(bytes([5]) * 32)
    tx = sign_transaction(key, CHAIN, 3, RECORD)
    signed = compute_tx_signing_bytes(CHAIN, key.public_key, 3, KIND_RECORD, encode_body(RECORD))
    assert ed25519.is_valid_signature(key.public_key, signed, tx.signature)
    verify_transaction_signature(tx)


def test_vote_signing_bytes_are_unchanged() -> None:
    signed = compute_vote_signing_bytes(CHAIN, "precommit", 12, 2, bytes([5]) * 32)
    assert signed.hex() == EXPECTED_VOTE
    assert compute_vote_signing_bytes(CHAIN, "prevote", 12, 0, None).hex() == EXPECTED_VOTE_NIL


def test_proposal_signing_bytes_are_unchanged() -> None:
    signed = compute_proposal_signing_bytes(CHAIN, 12, 3, bytes([6]) * 32, 1)
    assert signed.hex() == EXPECTED_PROPOSAL
    fresh = compute_proposal_signing_bytes(CHAIN, 12, 0, bytes([6]) * 32, -1)
    assert fresh.hex() == EXPECTED_PROPOSAL_FRESH


def test_peer_request_signing_bytes_are_unchanged() -> None:
    signed = compute_peer_signing_bytes(
        CHAIN, "POST", "/p2p/consensus", 1_700_000_000_000, b"\x91\x01"
    )
    assert signed.hex() == EXPECTED_PEER
