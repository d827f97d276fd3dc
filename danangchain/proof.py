"""Inclusion proofs: a transaction is in a block that more than 2/3 of its validators signed.

A proof carries the transaction's bytes, its index and Merkle path in the block, the
block's header, the block's own commit certificate and the genesis. Checked against a
pinned genesis hash, it needs nothing else and no node: the genesis gives the validator
set, the header must commit to that set, the certificate must carry signatures of more
than 2/3 of its power for the header's hash, and the path must lead from the transaction
to the header's transaction root.

While the validator set never changes (until validator governance exists), the set of
every height is the genesis set. Once it can change, a proof of a later height will
also need the chain of certified headers that carried each change from the genesis;
version 1 refuses a header whose validator set is not the genesis one.
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
    compute_validator_set_hash,
    decode_certificate_fields,
    verify_certificate,
)

PROOF_FORMAT = "danangchain/inclusion-proof"
PROOF_VERSION = 1
MAX_PROOF_SIZE = 1024 * 1024
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


class InvalidProof(DanangChainError):
    """A proof that does not show what it claims; the message says which check failed."""

    code = "invalid_proof"


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Everything needed to check one transaction's inclusion offline."""

    tx_bytes: bytes
    index: int
    merkle_path: tuple[bytes, ...]
    header: Header
    certificate: CommitCertificate
    genesis: Genesis


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
    genesis: Genesis, block: Block, index: int, certificate: CommitCertificate
) -> InclusionProof:
    """Return the proof of the transaction at `index` of a committed block."""
    return InclusionProof(
        block.tx_bytes[index],
        index,
        compute_inclusion_proof(block.tx_bytes, index),
        block.header,
        certificate,
        genesis,
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
    # Verify the header commits to the validator set that signs its height.
    validator_set = genesis.validator_set
    if header.validators_hash != compute_validator_set_hash(validator_set):
        raise InvalidProof(
            f"the validator set of height {header.height} is not the genesis set; a proof of "
            "a height after a validator change needs the change history, which version 1 lacks"
        )
    # Verify more than 2/3 of that set signed this header.
    block_hash = compute_block_hash(header)
    try:
        verify_certificate(
            proof.certificate, genesis.chain_id, header.height, block_hash, validator_set
        )
    except DanangChainError as exc:
        raise InvalidProof(f"the block's certificate: {exc}") from None
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
    header, cert = proof.header, proof.certificate
    document = {
        "format": PROOF_FORMAT,
        "version": PROOF_VERSION,
        "tx_id": compute_tx_id(proof.tx_bytes).hex(),
        "height": header.height,
        "block_hash": compute_block_hash(header).hex(),
        "tx": proof.tx_bytes.hex(),
        "index": proof.index,
        "merkle_path": [node.hex() for node in proof.merkle_path],
        "header": {
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
        },
        "certificate": {
            "height": cert.height,
            "round": cert.round,
            "block_hash": cert.block_hash.hex(),
            "signatures": [
                {"validator": key.hex(), "signature": sig.hex()} for key, sig in cert.signatures
            ],
        },
        "genesis": json.loads(encode_genesis_json(proof.genesis)),
    }
    return json.dumps(document, indent=2) + "\n"


def decode_proof_json(text: str) -> InclusionProof:
    """Parse a proof document; raise DecodeError if malformed or its summary fields disagree."""
    if len(text) > MAX_PROOF_SIZE:
        raise DecodeError(f"a proof is at most {MAX_PROOF_SIZE} bytes")
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("format") != PROOF_FORMAT:
            raise DecodeError("not a DanangChain inclusion proof")
        if document.get("version") != PROOF_VERSION:
            raise DecodeError(f"proof version {document.get('version')!r} is not supported")
        proof = InclusionProof(
            tx_bytes=_hex(document["tx"]),
            index=_integer(document["index"], "index"),
            merkle_path=tuple(_hex(node) for node in document["merkle_path"]),
            header=_decode_header(document["header"]),
            certificate=_decode_certificate(document["certificate"]),
            genesis=decode_genesis_json(json.dumps(document["genesis"])),
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
