"""The read facade: every question the API, the explorer, the chain feed and peers ask of
the chain, each answered in one place. Handlers call these; none reads the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from danangchain.block import Block, Header, decode_header_fields
from danangchain.encoding import expect_list, unpack
from danangchain.errors import DanangChainError
from danangchain.ledger import get_last_validator_set, get_next_validator_set, get_validator_set
from danangchain.proof import Handover, InclusionProof, make_inclusion_proof
from danangchain.registry import NodeEntry, decode_node_entry
from danangchain.state import (
    KEY_NEXT_VALIDATORS,
    PREFIX_MEMBER,
    PREFIX_NODE,
    PREFIX_VALIDATOR_VOTE,
    Member,
    Record,
    StateView,
    decode_member,
)
from danangchain.transaction import Transaction, compute_tx_id
from danangchain.validators import (
    CommitCertificate,
    ValidatorSet,
    decode_validator_set,
    encode_certificate,
)
from node.storage.store import Store, StoreError

if TYPE_CHECKING:
    from node.chain.ledger import NodeLedger

__all__ = ["ChainReader", "CommittedTx", "StoreError", "TxStatus"]

TxState = Literal["committed", "pending", "rejected", "unknown"]


@dataclass(frozen=True, slots=True)
class CommittedTx:
    """A committed transaction with the block that holds it."""

    block: Block
    index: int
    certificate: CommitCertificate

    @property
    def height(self) -> int:
        """Return the height of the transaction's block."""
        return self.block.height

    @property
    def tx(self) -> Transaction:
        """Return the transaction itself."""
        return self.block.transactions[self.index]


@dataclass(frozen=True, slots=True)
class TxStatus:
    """Where a transaction stands on this node: the one answer `/txs/{id}`, `query tx`
    and the explorer's transaction page give."""

    tx_id: bytes
    state: TxState
    committed: CommittedTx | None = None
    reason: str | None = None


class ChainReader:
    """Answers about the committed chain and the pending transactions of one node."""

    def __init__(self, ledger: NodeLedger, store: Store) -> None:
        self._ledger = ledger
        self._store = store

    # Transactions

    def is_known_tx(self, tx_id: bytes) -> bool:
        """Tell whether a transaction is committed, pending or was rejected here."""
        ledger = self._ledger
        return (
            self._store.get_tx_location(tx_id) is not None
            or tx_id in ledger.mempool
            or tx_id in ledger.rejections
        )

    def is_committed(self, tx_id: bytes) -> bool:
        """Tell whether a transaction is in a committed block."""
        return self._store.get_tx_location(tx_id) is not None

    def tx_status(self, tx_id: bytes) -> TxStatus:
        """Return a transaction's status; raise StoreError if its indexed block is missing."""
        committed = self.committed_tx(tx_id)
        if committed is not None:
            return TxStatus(tx_id, "committed", committed)
        if tx_id in self._ledger.mempool:
            return TxStatus(tx_id, "pending")
        reason = self._ledger.rejections.get(tx_id)
        if reason is not None:
            return TxStatus(tx_id, "rejected", reason=reason)
        return TxStatus(tx_id, "unknown")

    def committed_tx(self, tx_id: bytes) -> CommittedTx | None:
        """Return a committed transaction with its block and certificate, or None."""
        location = self._store.get_tx_location(tx_id)
        if location is None:
            return None
        height, index = location
        block = self._store.get_block(height)
        certificate = self._store.get_certificate(height)
        if block is None or certificate is None or index >= len(block.tx_bytes):
            raise StoreError(f"the store lacks block {height} or its certificate")
        if compute_tx_id(block.tx_bytes[index]) != tx_id:
            raise StoreError(f"the transaction index disagrees with block {height}")
        return CommittedTx(block, index, certificate)

    def prove(self, committed: CommittedTx) -> InclusionProof:
        """Return the inclusion proof of a committed transaction, with the hand-over of
        every validator set change below its height."""
        handovers = []
        for starts, encoded in self._store.list_validator_set_changes(committed.height):
            handed = self._store.get_block(starts - 1)
            handed_certificate = self._store.get_certificate(starts - 1)
            if handed is None or handed_certificate is None:
                raise StoreError(f"the store lacks block {starts - 1} or its certificate")
            handovers.append(
                Handover(handed.header, handed_certificate, decode_validator_set(encoded))
            )
        return make_inclusion_proof(
            self._ledger.genesis,
            committed.block,
            committed.index,
            committed.certificate,
            tuple(handovers),
        )

    # Blocks

    def block(self, height: int) -> Block | None:
        """Return the committed block at a height, or None."""
        return self._store.get_block(height) if height > 0 else None

    def certificate(self, height: int) -> CommitCertificate | None:
        """Return the certificate of the committed block at a height, or None."""
        return self._store.get_certificate(height)

    def header(self, height: int) -> Header | None:
        """Return a committed block's header without decoding its transactions."""
        data = self._store.get_block_bytes(height)
        if data is None:
            return None
        try:
            fields = expect_list(unpack(data, max_size=len(data)), 3, "block")[0]
            return decode_header_fields(fields)
        except DanangChainError as exc:
            raise StoreError(f"stored block {height} is corrupt: {exc}") from None

    def certified_block_bytes(self, height: int) -> tuple[bytes, bytes] | None:
        """Return a committed block's bytes and its certificate's, for a peer that syncs."""
        block = self._store.get_block_bytes(height)
        certificate = self._store.get_certificate(height)
        if block is None or certificate is None:
            return None
        return block, encode_certificate(certificate)

    def export_record(self, height: int) -> tuple[bytes, bytes]:
        """Return a block's and its certificate's stored bytes, checksums verified."""
        block_bytes = self._store.read_block_bytes(height)
        certificate_bytes = self._store.read_certificate_bytes(height)
        if block_bytes is None or certificate_bytes is None:
            raise StoreError(f"the store lacks block {height} or its certificate")
        return block_bytes, certificate_bytes

    # Members, records and validators

    def records_of(self, address: bytes, limit: int = 1000) -> list[bytes]:
        """Return the ids of records made by or naming an address, oldest first."""
        return self._store.get_record_ids_of(address, limit)

    def amendments_of(self, record_id: bytes, record: Record) -> list[bytes]:
        """Return the ids of the records that amend a record, oldest first: only its
        creator may amend it, so they are among the creator's records."""
        view = StateView(self._store.state)
        found = []
        for other_id in self._store.get_record_ids_of(record.creator):
            other = view.get_record(other_id)
            if other and other.reference == record_id and other.reference_kind == "amends":
                found.append(other_id)
        return found

    def members(self) -> list[tuple[bytes, Member]]:
        """Return every member (address, entry), by address; skip unreadable entries."""
        found = []
        for key, value in self._store.scan_state(PREFIX_MEMBER):
            try:
                found.append((key[len(PREFIX_MEMBER) :], decode_member(value)))
            except DanangChainError:
                continue
        return found

    def validator_set_at(self, height: int) -> ValidatorSet:
        """Return the set that signs a height, from 1 to the tip + 2; raise ValueError."""
        tip = self._ledger.tip.height
        if height < 1 or height > tip + 2:
            raise ValueError(f"the set is known for heights 1..{tip + 2}")
        if height == tip + 2:
            data = self._store.state.get(KEY_NEXT_VALIDATORS)
        else:
            data = self._store.get_validator_set_bytes(height)
        if data is None:
            raise StoreError(f"the store lacks the validator set of height {height}")
        return decode_validator_set(data)

    def validator_sets_around_tip(self) -> tuple[ValidatorSet, ValidatorSet, ValidatorSet]:
        """Return the sets that signed the tip, sign the next height, and the one after."""
        state = self._store.state
        return (
            get_last_validator_set(state),
            get_validator_set(state),
            get_next_validator_set(state),
        )

    def nodes(self) -> list[tuple[bytes, NodeEntry]]:
        """Return the node registry at the tip: (public key, entry), by key."""
        found = []
        for key, value in self._store.scan_state(PREFIX_NODE):
            try:
                found.append((key[len(PREFIX_NODE) :], decode_node_entry(value)))
            except DanangChainError as exc:
                raise StoreError(f"a stored registry entry is corrupt: {exc}") from None
        return found

    def pending_validator_votes(self) -> list[bytes]:
        """Return the encoded validator votes that have not reached their quorum yet."""
        return [value for _, value in self._store.scan_state(PREFIX_VALIDATOR_VOTE)]

    def evidence(self, limit: int) -> list[bytes]:
        """Return up to `limit` pieces of kept evidence, oldest heights first."""
        return self._store.list_evidence(limit)
