"""The auditor replays a chain with the validators' functions and names the first fault.

Each test tampers one way with a valid chain, as a tamperer who recomputes every hash,
root and link would, and checks the failing height and the reason.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from danangchain import ed25519
from danangchain.audit import AuditFailure, AuditSummary, ChainAuditor
from danangchain.block import Block, compute_tx_root, encode_block
from danangchain.genesis import make_genesis
from danangchain.ledger import ChainTip, get_validator_set
from danangchain.transaction import (
    MemberAdmitBody,
    Transaction,
    ValidatorVoteBody,
    compute_tx_id,
    encode_transaction,
    sign_transaction,
)
from danangchain.validators import (
    PRECOMMIT,
    CommitCertificate,
    Validator,
    ValidatorSet,
    compute_certificate_hash,
    compute_validator_set_hash,
    encode_certificate,
    sign_vote,
)
from tests.unit.audit_fixtures import (
    FOUR_VALIDATORS,
    MEMBERS,
    BuiltChain,
    alice,
    audit_export,
    bob,
    build_chain,
    encode_export,
    export_of,
    forge_blocks,
    forged_tip,
    mallory,
    record,
    registrar,
    relink,
)
from tests.unit.ledger_fixtures import (
    CHAIN_ID,
    address_of,
    certify,
    make_key,
    make_local_chain,
    sign_next,
)

OUTSIDER_VALIDATOR = make_key(21)
NEWCOMER = make_key(15)


@pytest.fixture(scope="module")
def chain() -> BuiltChain:
    """A one-validator chain of six blocks: admissions, records, endorsements."""
    return build_chain(4)


@pytest.fixture(scope="module")
def bft_chain() -> BuiltChain:
    """A four-validator chain (quorum 3 of 4) of four blocks."""
    return build_chain(3, FOUR_VALIDATORS)


def audit_blocks(
    chain: BuiltChain,
    blocks: list[Block] | None = None,
    certificates: list[CommitCertificate] | None = None,
    tip: ChainTip | None = None,
) -> AuditSummary:
    """Audit the chain with some of its parts replaced."""
    blocks = chain.blocks if blocks is None else blocks
    certificates = chain.certificates if certificates is None else certificates
    tip = (forged_tip(blocks) if blocks is not chain.blocks else chain.tip) if tip is None else tip
    return audit_export(encode_export(chain.genesis, blocks, certificates, tip))


def failure_of(chain: BuiltChain, **parts: object) -> AuditFailure:
    """Return the failure the auditor reports for a tampered chain."""
    with pytest.raises(AuditFailure) as caught:
        audit_blocks(chain, **parts)  # type: ignore[arg-type]
    return caught.value


# A valid chain


def test_valid_chain_passes_with_its_counts(chain: BuiltChain) -> None:
    summary = audit_export(export_of(chain), chain.genesis.hash)
    assert summary.tip == chain.tip
    assert summary.heights_checked == len(chain.blocks) == 6
    assert summary.transactions_checked == sum(len(b.tx_bytes) for b in chain.blocks)
    assert summary.validators_seen == 1


def test_valid_four_validator_chain_passes(bft_chain: BuiltChain) -> None:
    summary = audit_export(export_of(bft_chain), bft_chain.genesis.hash)
    assert summary.validators_seen == 4 and summary.tip == bft_chain.tip


def test_chain_with_no_blocks_passes_at_the_genesis_tip(chain: BuiltChain) -> None:
    auditor = ChainAuditor(chain.genesis, chain.genesis.hash)
    summary = auditor.finish(auditor.tip)
    assert summary.heights_checked == 0 and summary.transactions_checked == 0


def count_signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Return the list that each of this process's signature checks appends its signature to."""
    calls: list[bytes] = []
    real = ed25519.is_valid_signature

    def counting(public_key: bytes, message: bytes, signature: bytes, *parts: Any) -> bool:
        calls.append(signature)
        return real(public_key, message, signature, *parts)

    monkeypatch.setattr(ed25519, "is_valid_signature", counting)
    return calls


def test_every_signature_is_verified_exactly_once(
    chain: BuiltChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_signature_checks(monkeypatch)
    summary = audit_export(export_of(chain), with_workers=False)
    # Every transaction once, every block's certificate once (as the next block's last
    # commit, or the tip's own).
    assert len(calls) == summary.transactions_checked + len(chain.blocks)
    assert len(set(calls)) == len(calls)


def test_a_different_valid_certificate_than_the_last_commit_is_accepted(
    bft_chain: BuiltChain,
) -> None:
    # BFT may store one quorum of precommits and carry another in the next block.
    certificates = list(bft_chain.certificates)
    certificates[1] = certify(bft_chain.blocks[1], FOUR_VALIDATORS[1:])
    assert certificates[1] != bft_chain.blocks[2].last_commit
    assert audit_blocks(bft_chain, certificates=certificates).tip == bft_chain.tip


# The genesis


def test_wrong_pinned_genesis_fails_at_height_zero(chain: BuiltChain) -> None:
    with pytest.raises(AuditFailure) as caught:
        audit_export(export_of(chain), bytes(32))
    assert caught.value.height == 0 and "is not the pinned" in caught.value.reason


def test_export_of_another_genesis_fails_at_block_one(chain: BuiltChain) -> None:
    other = make_genesis(
        CHAIN_ID,
        chain.genesis.time_ms,
        list(chain.genesis.validator_set.validators),
        [(address_of(mallory), "registrar")],
    )
    with pytest.raises(AuditFailure) as caught:
        audit_export(encode_export(other, chain.blocks, chain.certificates, chain.tip))
    assert caught.value.height == 1 and "previous hash" in caught.value.reason


# Transactions changed, removed, added or reordered; everything else recomputed


def test_changed_transaction_fails_on_its_signature(chain: BuiltChain) -> None:
    original = chain.blocks[3].transactions[0]
    changed = replace(original, body=replace(original.body, amount=999_999))
    changed_bytes = encode_transaction(changed)
    blocks = forge_blocks(chain, 4, lambda txs: [changed_bytes, *txs[1:]])
    failure = failure_of(chain, blocks=blocks)
    assert failure.height == 4
    assert failure.tx_id == compute_tx_id(changed_bytes)
    assert "transaction 0" in failure.reason and "signature does not verify" in failure.reason


def test_removed_transaction_fails_on_the_certificate(chain: BuiltChain) -> None:
    blocks = forge_blocks(chain, 2, lambda txs: txs[:-1])
    assert blocks[1].header.tx_count == chain.blocks[1].header.tx_count - 1
    failure = failure_of(chain, blocks=blocks)
    assert failure.height == 2 and "certificate of block 2" in failure.reason


def test_removed_transaction_breaking_a_nonce_fails_on_the_nonce(chain: BuiltChain) -> None:
    # Block 2 holds alice's two records in a row; without the first the second skips a nonce.
    blocks = forge_blocks(chain, 2, lambda txs: [txs[0], *txs[2:]])
    failure = failure_of(chain, blocks=blocks)
    assert failure.height == 2 and "transaction 1: nonce" in failure.reason
    assert failure.tx_id == compute_tx_id(chain.blocks[1].tx_bytes[2])


def test_added_valid_transaction_fails_on_the_certificate(chain: BuiltChain) -> None:
    body = MemberAdmitBody(address_of(mallory), "business")
    admit = sign_transaction(registrar, CHAIN_ID, 2, body)
    blocks = forge_blocks(chain, 4, lambda txs: [*txs, encode_transaction(admit)])
    failure = failure_of(chain, blocks=blocks)
    assert failure.height == 4 and "certificate of block 4" in failure.reason


def test_added_replayed_transaction_fails_on_its_nonce(chain: BuiltChain) -> None:
    replayed = chain.blocks[0].tx_bytes[1]
    blocks = forge_blocks(chain, 2, lambda txs: [*txs, replayed])
    failure = failure_of(chain, blocks=blocks)
    assert failure.height == 2 and "nonce" in failure.reason
    assert failure.tx_id == compute_tx_id(replayed)


def test_reordered_transactions_fail_on_the_certificate(chain: BuiltChain) -> None:
    # Bob's invoice and alice's receipt touch different entries: same writes, same state root.
    blocks = forge_blocks(chain, 4, lambda txs: [txs[1], txs[0], *txs[2:]])
    assert blocks[3].header.state_root == chain.blocks[3].header.state_root
    failure = failure_of(chain, blocks=blocks)
    assert failure.height == 4 and "certificate of block 4" in failure.reason


def test_removed_transaction_of_the_tip_fails_on_the_tips_certificate(chain: BuiltChain) -> None:
    tip_height = len(chain.blocks)
    blocks = forge_blocks(chain, tip_height, lambda txs: [])
    failure = failure_of(chain, blocks=blocks)
    assert failure.height == tip_height and f"certificate of block {tip_height}" in failure.reason


# Blocks removed, duplicated or out of order


def test_removed_block_fails_at_its_height(chain: BuiltChain) -> None:
    blocks = relink(chain.genesis, [*chain.blocks[:2], *chain.blocks[3:]], 2)
    certificates = [*chain.certificates[:2], *chain.certificates[3:]]
    failure = failure_of(chain, blocks=blocks, certificates=certificates)
    assert failure.height == 3 and "height 4 does not follow 2" in failure.reason


def test_removed_last_block_fails_against_the_claimed_tip(chain: BuiltChain) -> None:
    failure = failure_of(
        chain, blocks=chain.blocks[:-1], certificates=chain.certificates[:-1], tip=chain.tip
    )
    assert failure.height == len(chain.blocks) and "claims its tip" in failure.reason


def test_duplicated_block_fails_at_the_height_after_it(chain: BuiltChain) -> None:
    blocks = [*chain.blocks[:3], chain.blocks[2], *chain.blocks[3:]]
    certificates = [*chain.certificates[:3], chain.certificates[2], *chain.certificates[3:]]
    failure = failure_of(chain, blocks=blocks, certificates=certificates, tip=chain.tip)
    assert failure.height == 4 and "height 3 does not follow 3" in failure.reason


def test_block_out_of_time_order_fails(chain: BuiltChain) -> None:
    early = chain.blocks[1].header.time_ms - 1
    blocks = list(chain.blocks)
    blocks[2] = replace(blocks[2], header=replace(blocks[2].header, time_ms=early))
    failure = failure_of(chain, blocks=relink(chain.genesis, blocks, 3))
    assert failure.height == 3 and "is not after" in failure.reason


# Certificates with too few, duplicated, foreign or invalid signatures


def tampered_certificates(chain: BuiltChain, index: int) -> dict[str, CommitCertificate]:
    """Return the certificate of block index+1, signed by all four, tampered in each way."""
    good = chain.certificates[index]
    signatures = good.signatures
    foreign = sign_vote(
        OUTSIDER_VALIDATOR, CHAIN_ID, PRECOMMIT, good.height, good.round, good.block_hash
    )
    broken = bytes([signatures[0][1][0] ^ 1]) + signatures[0][1][1:]
    return {
        "too few": replace(good, signatures=signatures[:2]),
        "duplicated": replace(good, signatures=(signatures[0], signatures[0], signatures[1])),
        "foreign": replace(
            good,
            signatures=tuple(sorted([*signatures[:2], (foreign.validator, foreign.signature)])),
        ),
        "invalid": replace(good, signatures=((signatures[0][0], broken), *signatures[1:])),
    }


CERTIFICATE_REASONS = {
    "too few": "has power 2, needs 3",
    "duplicated": "signer twice",
    "foreign": "not a validator",
    "invalid": "does not verify",
}


@pytest.mark.parametrize("kind", sorted(CERTIFICATE_REASONS))
def test_bad_own_certificate_fails_at_its_block(bft_chain: BuiltChain, kind: str) -> None:
    certificates = list(bft_chain.certificates)
    certificates[1] = tampered_certificates(bft_chain, 1)[kind]
    failure = failure_of(bft_chain, certificates=certificates)
    assert failure.height == 2 and CERTIFICATE_REASONS[kind] in failure.reason


@pytest.mark.parametrize("kind", sorted(CERTIFICATE_REASONS))
def test_bad_certificate_carried_by_the_next_block_fails_at_the_certified_block(
    bft_chain: BuiltChain, kind: str
) -> None:
    bad = tampered_certificates(bft_chain, 1)[kind]
    blocks = list(bft_chain.blocks)
    header = replace(blocks[2].header, last_commit_hash=compute_certificate_hash(bad))
    blocks[2] = replace(blocks[2], header=header, last_commit=bad)
    certificates = list(bft_chain.certificates)
    certificates[1] = bad
    failure = failure_of(
        bft_chain, blocks=relink(bft_chain.genesis, blocks, 3), certificates=certificates
    )
    assert failure.height == 2 and CERTIFICATE_REASONS[kind] in failure.reason


@pytest.mark.parametrize("kind", sorted(CERTIFICATE_REASONS))
def test_bad_certificate_of_the_tip_fails_at_the_tip(bft_chain: BuiltChain, kind: str) -> None:
    tip = len(bft_chain.blocks)
    certificates = [*bft_chain.certificates[:-1], tampered_certificates(bft_chain, tip - 1)[kind]]
    failure = failure_of(bft_chain, certificates=certificates)
    assert failure.height == tip and CERTIFICATE_REASONS[kind] in failure.reason


def test_certificate_of_another_block_fails(chain: BuiltChain) -> None:
    certificates = list(chain.certificates)
    certificates[2] = chain.certificates[3]
    failure = failure_of(chain, certificates=certificates)
    assert failure.height == 3 and "certificate" in failure.reason


# A validator set changed without the votes


def test_validator_set_swapped_by_a_tamperer_fails_at_the_swap(chain: BuiltChain) -> None:
    # The tamperer replaces the validators from block 3 on with keys they hold, and signs
    # every certificate from there with them: the state's validator set betrays it.
    foreign_keys = [make_key(31), make_key(32)]
    foreign_set = ValidatorSet.of(
        [Validator(k.public_key, f"f{i}") for i, k in enumerate(foreign_keys)]
    )
    foreign_hash = compute_validator_set_hash(foreign_set)
    blocks = list(chain.blocks[:2])
    certificates = list(chain.certificates[:2])
    for block in chain.blocks[2:]:
        last_commit = certificates[-1]
        header = replace(
            block.header,
            previous_hash=blocks[-1].hash,
            validators_hash=foreign_hash,
            next_validators_hash=foreign_hash,
            proposer=foreign_keys[0].public_key,
            last_commit_hash=compute_certificate_hash(last_commit),
        )
        blocks.append(replace(block, header=header, last_commit=last_commit))
        certificates.append(certify(blocks[-1], foreign_keys))
    failure = failure_of(chain, blocks=blocks, certificates=certificates)
    assert failure.height == 3 and "validator set hash" in failure.reason


def test_next_validator_set_changed_in_a_header_fails(chain: BuiltChain) -> None:
    other = ValidatorSet.of([Validator(make_key(31).public_key, "other")])
    blocks = list(chain.blocks)
    header = replace(blocks[1].header, next_validators_hash=compute_validator_set_hash(other))
    blocks[1] = replace(blocks[1], header=header)
    failure = failure_of(chain, blocks=relink(chain.genesis, blocks, 2))
    assert failure.height == 2 and "next validator set" in failure.reason


# The tip the source claims


@pytest.mark.parametrize("field", ["block_hash", "time_ms", "state_root"])
def test_claimed_tip_that_differs_fails_at_the_tip(chain: BuiltChain, field: str) -> None:
    value = 1 if field == "time_ms" else bytes(32)
    failure = failure_of(chain, tip=replace(chain.tip, **{field: value}))
    assert failure.height == len(chain.blocks) and field.replace("_", " ") in failure.reason


def test_claimed_tip_beyond_the_chain_fails_after_its_end(chain: BuiltChain) -> None:
    failure = failure_of(chain, tip=replace(chain.tip, height=chain.tip.height + 1))
    assert (
        failure.height == len(chain.blocks) + 1 and "claims its tip at height 7" in failure.reason
    )


# Stored bytes decoded strictly


def test_block_that_does_not_decode_fails_at_its_height(chain: BuiltChain) -> None:
    auditor = ChainAuditor(chain.genesis)
    auditor.check_block(encode_block(chain.blocks[0]), encode_certificate(chain.certificates[0]))
    with pytest.raises(AuditFailure) as caught:
        auditor.check_block(b"\xc1", encode_certificate(chain.certificates[1]))
    assert caught.value.height == 2 and "does not decode" in caught.value.reason


def test_missing_certificate_fails_at_its_block(chain: BuiltChain) -> None:
    auditor = ChainAuditor(chain.genesis)
    with pytest.raises(AuditFailure) as caught:
        auditor.check_block(encode_block(chain.blocks[0]), None)
    assert caught.value.height == 1 and "missing" in caught.value.reason


def test_transaction_root_of_other_transactions_fails(chain: BuiltChain) -> None:
    block = chain.blocks[1]
    header = replace(block.header, tx_root=compute_tx_root(block.tx_bytes[:1]))
    blocks = relink(
        chain.genesis, [*chain.blocks[:1], replace(block, header=header), *chain.blocks[2:]], 1
    )
    failure = failure_of(chain, blocks=blocks)
    assert failure.height == 2 and "transaction root" in failure.reason


# Validator sets changed by vote: each height's certificate is checked against its own set


def build_governed_chain() -> BuiltChain:
    """Four validators vote a fifth in (block 2) and one of the four out (block 5)."""
    pool = [*FOUR_VALIDATORS, NEWCOMER]
    chain = make_local_chain(FOUR_VALIDATORS, MEMBERS)

    def commit(txs: list[Transaction]) -> None:
        # Each block is certified by the validators of its own height.
        current = get_validator_set(chain.state)
        chain.validator_keys = [k for k in pool if current.power_of(k.public_key)]
        chain.commit(txs)

    def votes(action: str, key: bytes, voters: list[ed25519.SigningKey]) -> list[Transaction]:
        body = ValidatorVoteBody(action, key, "newcomer" if action == "add" else "")
        return [sign_next(chain.state, voter, body) for voter in voters]

    commit([sign_next(chain.state, alice, record("first"))])
    commit(votes("add", NEWCOMER.public_key, FOUR_VALIDATORS[:3]))
    for number in range(2):
        commit([sign_next(chain.state, bob, record(f"between {number}"))])
    commit(votes("remove", FOUR_VALIDATORS[3].public_key, [*FOUR_VALIDATORS[:3], NEWCOMER]))
    for number in range(3):
        commit([sign_next(chain.state, alice, record(f"after {number}"))])
    return BuiltChain(
        chain.genesis, chain.blocks, chain.certificates, chain.tip, chain.validator_keys
    )


@pytest.fixture(scope="module")
def governed_chain() -> BuiltChain:
    """A chain whose validator set grows to five at height 4 and shrinks to four at 7."""
    return build_governed_chain()


def test_chain_with_validator_changes_verifies(governed_chain: BuiltChain) -> None:
    summary = audit_blocks(governed_chain)
    assert summary.tip == governed_chain.tip and summary.validators_seen == 5
    signers = [len(c.signatures) for c in governed_chain.certificates]
    assert signers == [4, 4, 4, 5, 5, 5, 4, 4]


def test_certificate_enough_for_the_old_set_fails_after_a_change(
    governed_chain: BuiltChain,
) -> None:
    # Three signatures were a quorum of four, not of the five that sign height 5.
    certificates = list(governed_chain.certificates)
    certificates[4] = certify(governed_chain.blocks[4], FOUR_VALIDATORS[:3])
    failure = failure_of(governed_chain, certificates=certificates)
    assert failure.height == 5 and "has power 3, needs 4" in failure.reason


def test_removed_validator_cannot_sign_after_its_removal(governed_chain: BuiltChain) -> None:
    tip = len(governed_chain.blocks)
    certificates = list(governed_chain.certificates)
    certificates[-1] = certify(governed_chain.blocks[-1], FOUR_VALIDATORS)
    failure = failure_of(governed_chain, certificates=certificates)
    assert failure.height == tip and "not a validator" in failure.reason


def test_with_workers_the_auditor_checks_only_what_they_did_not_accept(
    chain: BuiltChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from cli.chain_sources import replay_export
    from cli.signature_prefetch import SignaturePrefetch
    from danangchain.export import ExportReader

    calls = count_signature_checks(monkeypatch)
    reader = ExportReader(io.BytesIO(export_of(chain)).read)
    with SignaturePrefetch(2, chunk_bytes=1, serial_below_bytes=0) as prefetch:
        auditor = ChainAuditor(reader.header.genesis, None, prefetch.is_verified)
        summary = replay_export(reader, auditor, lambda _: None, prefetch)
    # The workers (other processes) checked the transactions; here only certificates.
    assert summary.transactions_checked > 0
    assert len(calls) == len(chain.blocks)
