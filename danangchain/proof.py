"""Inclusion proofs: a transaction is in a block that more than 2/3 of its validators signed.

A proof carries the transaction's bytes, its index and Merkle path in the block, the
block's header, the block's own commit certificate and the genesis. Checked against a
pinned genesis hash, it needs nothing else and no node: the genesis gives the first
validator set, the header must commit to the set that signs its height, the certificate
must carry signatures of more than 2/3 of that set's power for the header's hash, and the
path must lead from the transaction to the header's transaction root.

When validators were added or removed before the proven height, the proof also carries
the hand-overs (version 2): for each height k whose next set differs, the header of k,
its certificate and the next set in full. Each is checked against the set trusted so far
(genesis first): k's header commits to it, more than 2/3 of it signed k, and k's
`next_validators_hash` is the hash of the set handed over, which is trusted from k + 1
on. A proof is thus exactly as trustworthy as the sets on its path: more than 2/3 of any
one of them, retired or not, could sign a block that never was (as on any chain whose
checkers pin only the genesis).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from danangchain.block import BLOCK_VERSION, Block, Header, decode_header_fields
from danangchain.block import compute_header_hash as compute_block_hash
from danangchain.errors import DanangChainError, DecodeError
from danangchain.genesis import Genesis, decode_genesis_json, encode_genesis_json
from danangchain.merkle import compute_inclusion_proof, is_valid_inclusion_proof
from danangchain.transaction import (
    Transaction,
    compute_tx_id,
    decode_transaction,
    verify_transaction_signature,
)
from danangchain.validators import (
    CommitCertificate,
    ValidatorSet,
    compute_validator_set_hash,
    decode_certificate_fields,
    decode_validator_set_fields,
    verify_certificate,
)

PROOF_FORMAT = "danangchain/inclusion-proof"
PROOF_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
MAX_HANDOVERS = 1000
MAX_PROOF_SIZE = 1024 * 1024
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


class InvalidProof(DanangChainError):
    """A proof that does not show what it claims; the message says which check failed."""

    code = "invalid_proof"


@dataclass(frozen=True, slots=True)
class Handover:
    """A certified header after which another validator set signs: the set it hands to."""

    header: Header
    certificate: CommitCertificate
    next_set: ValidatorSet


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Everything needed to check one transaction's inclusion offline."""

    tx_bytes: bytes
    index: int
    merkle_path: tuple[bytes, ...]
    header: Header
    certificate: CommitCertificate
    genesis: Genesis
    handovers: tuple[Handover, ...] = ()


@dataclass(frozen=True, slots=True)
class ProvenInclusion:
    """What a valid proof establishes."""

    tx_id: bytes
    transaction: Transaction
    height: int
    index: int
    block_hash: bytes
    time_ms: int
    signed_power: int
    total_power: int
    genesis_hash: bytes


def make_inclusion_proof(
    genesis: Genesis,
    block: Block,
    index: int,
    certificate: CommitCertificate,
    handovers: tuple[Handover, ...] = (),
) -> InclusionProof:
    """Return the proof of the transaction at `index` of a committed block; `handovers`
    are those of every validator set change below the block's height, in height order."""
    return InclusionProof(
        block.tx_bytes[index],
        index,
        compute_inclusion_proof(block.tx_bytes, index),
        block.header,
        certificate,
        genesis,
        handovers,
    )


def check_inclusion_proof(proof: InclusionProof, pinned_genesis_hash: bytes) -> ProvenInclusion:
    """Check a proof against a pinned genesis hash; raise InvalidProof naming the failed check."""
    genesis, header = proof.genesis, proof.header
    # Verify the proof is about the pinned chain, and the header is of that chain.
    if genesis.hash != pinned_genesis_hash:
        raise InvalidProof(
            f"the proof's genesis hash {genesis.hash.hex()} is not the pinned "
            f"{pinned_genesis_hash.hex()}"
        )
    if header.chain_id != genesis.chain_id:
        raise InvalidProof(f"the header is of chain {header.chain_id!r}, not {genesis.chain_id!r}")
    # Carry trust from the genesis set through each hand-over to the set of this height.
    validator_set = genesis.validator_set
    below = 0
    for handover in proof.handovers:
        if not below < handover.header.height < header.height:
            raise InvalidProof(
                f"the hand-over at height {handover.header.height} is out of order: hand-overs "
                f"go up from height 1 and stay below the proven height {header.height}"
            )
        below = handover.header.height
        _verify_certified_header(
            handover.header, handover.certificate, validator_set, genesis.chain_id, "hand-over"
        )
        if handover.header.next_validators_hash != compute_validator_set_hash(handover.next_set):
            raise InvalidProof(
                f"the set handed over at height {below} is not the one its header names"
            )
        validator_set = handover.next_set
    block_hash = _verify_certified_header(
        header, proof.certificate, validator_set, genesis.chain_id, "block"
    )
    transaction = _check_transaction(proof, genesis.chain_id)
    signed = sum(validator_set.power_of(key) for key, _ in proof.certificate.signatures)
    return ProvenInclusion(
        compute_tx_id(proof.tx_bytes),
        transaction,
        header.height,
        proof.index,
        block_hash,
        header.time_ms,
        signed,
        validator_set.total_power,
        genesis.hash,
    )


def _verify_certified_header(
    header: Header,
    certificate: CommitCertificate,
    validator_set: ValidatorSet,
    chain_id: str,
    what: str,
) -> bytes:
    """Check a header commits to the set trusted at its height and more than 2/3 of that
    set signed it; return its hash."""
    if header.chain_id != chain_id:
        raise InvalidProof(f"the {what} header is of chain {header.chain_id!r}, not {chain_id!r}")
    if header.validators_hash != compute_validator_set_hash(validator_set):
        raise InvalidProof(
            f"the {what} header at height {header.height} names a validator set other than "
            "the one trusted there (genesis, or the last set handed over): a hand-over is "
            "missing or forged"
        )
    block_hash = compute_block_hash(header)
    try:
        verify_certificate(certificate, chain_id, header.height, block_hash, validator_set)
    except DanangChainError as exc:
        raise InvalidProof(f"the {what} certificate at height {header.height}: {exc}") from None
    return block_hash


def _check_transaction(proof: InclusionProof, chain_id: str) -> Transaction:
    """Check the transaction decodes, is signed by its sender and sits under the tx root."""
    header = proof.header
    try:
        transaction = decode_transaction(proof.tx_bytes)
        verify_transaction_signature(transaction)
    except DanangChainError as exc:
        raise InvalidProof(f"the transaction: {exc}") from None
    if transaction.chain_id != chain_id:
        raise InvalidProof(f"the transaction is for chain {transaction.chain_id!r}")
    if not is_valid_inclusion_proof(
        proof.tx_bytes, proof.index, header.tx_count, proof.merkle_path, header.tx_root
    ):
        raise InvalidProof(
            f"the Merkle path does not lead from the transaction at index {proof.index} "
            f"to the transaction root of block {header.height}"
        )
    return transaction


# The proof file: JSON, bytes as hex, the header and certificate field by field.


def encode_proof_json(proof: InclusionProof) -> str:
    """Return the JSON document of a proof."""
    header = proof.header
    document = {
        "format": PROOF_FORMAT,
        "version": PROOF_VERSION,
        "tx_id": compute_tx_id(proof.tx_bytes).hex(),
        "height": header.height,
        "block_hash": compute_block_hash(header).hex(),
        "tx": proof.tx_bytes.hex(),
        "index": proof.index,
        "merkle_path": [node.hex() for node in proof.merkle_path],
        "header": encode_header_json(header),
        "certificate": encode_certificate_json(proof.certificate),
        "genesis": json.loads(encode_genesis_json(proof.genesis)),
        "handovers": [
            {
                "header": encode_header_json(handover.header),
                "certificate": encode_certificate_json(handover.certificate),
                "next_validators": [
                    {"public_key": v.public_key.hex(), "name": v.name, "power": v.power}
                    for v in handover.next_set.validators
                ],
            }
            for handover in proof.handovers
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def encode_header_json(header: Header) -> dict[str, Any]:
    """Return a header's JSON fields, bytes as hex (proof files and the node's API)."""
    return {
        "chain_id": header.chain_id,
        "height": header.height,
        "time_ms": header.time_ms,
        "previous_hash": header.previous_hash.hex(),
        "tx_root": header.tx_root.hex(),
        "tx_count": header.tx_count,
        "state_root": header.state_root.hex(),
        "validators_hash": header.validators_hash.hex(),
        "next_validators_hash": header.next_validators_hash.hex(),
        "proposer": header.proposer.hex(),
        "last_commit_hash": header.last_commit_hash.hex(),
    }


def encode_certificate_json(cert: CommitCertificate) -> dict[str, Any]:
    """Return a certificate's JSON fields, bytes as hex (proof files and the node's API)."""
    return {
        "height": cert.height,
        "round": cert.round,
        "block_hash": cert.block_hash.hex(),
        "signatures": [
            {"validator": key.hex(), "signature": sig.hex()} for key, sig in cert.signatures
        ],
    }


def decode_proof_json(text: str) -> InclusionProof:
    """Parse a proof document; raise DecodeError if malformed or its summary fields disagree."""
    if len(text) > MAX_PROOF_SIZE:
        raise DecodeError(f"a proof is at most {MAX_PROOF_SIZE} bytes")
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("format") != PROOF_FORMAT:
            raise DecodeError("not a DanangChain inclusion proof")
        if document.get("version") not in SUPPORTED_VERSIONS:
            raise DecodeError(f"proof version {document.get('version')!r} is not supported")
        handovers = document.get("handovers", []) if document["version"] >= 2 else []
        if not isinstance(handovers, list) or len(handovers) > MAX_HANDOVERS:
            raise DecodeError(f"handovers: expected a list of at most {MAX_HANDOVERS}")
        proof = InclusionProof(
            tx_bytes=_hex(document["tx"]),
            index=_integer(document["index"], "index"),
            merkle_path=tuple(_hex(node) for node in document["merkle_path"]),
            header=_decode_header(document["header"]),
            certificate=_decode_certificate(document["certificate"]),
            genesis=decode_genesis_json(json.dumps(document["genesis"])),
            handovers=tuple(_decode_handover(item) for item in handovers),
        )
        _check_summary(document, proof)
        return proof
    except DanangChainError as exc:
        raise DecodeError(f"proof: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise DecodeError(f"proof: malformed document ({exc!r})") from None


def _check_summary(document: dict[str, Any], proof: InclusionProof) -> None:
    """Refuse summary fields that say something other than the data they summarise."""
    actual = {
        "tx_id": compute_tx_id(proof.tx_bytes).hex(),
        "height": proof.header.height,
        "block_hash": compute_block_hash(proof.header).hex(),
    }
    for name, value in actual.items():
        if document.get(name) != value:
            raise DecodeError(f"{name} {document.get(name)!r} does not match the proof's data")


def decode_header_json(fields: dict[str, Any]) -> Header:
    """Build a header from its JSON fields (as `encode_header_json` writes them)."""
    return _decode_header(fields)


def _decode_header(fields: dict[str, Any]) -> Header:
    """Build a header from its JSON fields, with the same checks as a stored header."""
    hashes = ("previous_hash", "tx_root", "state_root", "validators_hash", "next_validators_hash")
    return decode_header_fields(
        [
            BLOCK_VERSION,
            fields["chain_id"],
            fields["height"],
            fields["time_ms"],
            _hex(fields[hashes[0]]),
            _hex(fields[hashes[1]]),
            fields["tx_count"],
            _hex(fields[hashes[2]]),
            _hex(fields[hashes[3]]),
            _hex(fields[hashes[4]]),
            _hex(fields["proposer"]),
            _hex(fields["last_commit_hash"]),
        ]
    )


def _decode_handover(fields: dict[str, Any]) -> Handover:
    """Build a hand-over from its JSON fields."""
    validators = [[_hex(v["public_key"]), v["name"], v["power"]] for v in fields["next_validators"]]
    return Handover(
        _decode_header(fields["header"]),
        _decode_certificate(fields["certificate"]),
        decode_validator_set_fields(validators),
    )


def _decode_certificate(fields: dict[str, Any]) -> CommitCertificate:
    """Build a certificate from its JSON fields."""
    signatures = [[_hex(s["validator"]), _hex(s["signature"])] for s in fields["signatures"]]
    return decode_certificate_fields(
        [fields["height"], fields["round"], _hex(fields["block_hash"]), signatures]
    )


def _hex(value: Any) -> bytes:
    """Parse lowercase hex, nothing else (bytes.fromhex alone would skip spaces)."""
    if not isinstance(value, str) or _HEX.fullmatch(value) is None:
        raise DecodeError("expected lowercase hex with an even number of digits")
    return bytes.fromhex(value)


def _integer(value: Any, what: str) -> int:
    """Return a non-negative JSON integer (bool refused)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise DecodeError(f"{what}: expected a non-negative integer")
    return value
