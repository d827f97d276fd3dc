"""The witness: follow a chain from its sources, check each block once as the auditor does,
cosign checkpoints, and halt with evidence when the chain contradicts one it cosigned.

Every block goes through the core's `ChainAuditor` (the code of `audit verify`), which
carries the replayed state from block to block, with its own certificate checked before
it is applied (`settle`), so the witness never holds, let alone cosigns, a block its
validators did not sign. Each source has its own cursor: a block at the height the
witness needs next is checked and applied; a block at a height already checked is
compared with the checkpoint of that height, if any. A certified block that differs from
a cosigned one is evidence that the validators signed two blocks for one height: the
witness keeps both, durably, stops signing and says so. A source that serves a block that
does not check is set aside (its status says why) and never halts the witness: only
validators' signatures can make evidence.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from danangchain import ed25519
from danangchain.address import compute_address, encode_address
from danangchain.audit import AuditFailure, ChainAuditor, CheckedBlock
from danangchain.block import Block, Header, compute_header_hash, decode_block
from danangchain.checkpoint import (
    Checkpoint,
    CheckpointBook,
    Cosignature,
    check_conflicting_block,
    encode_cosignature_json,
)
from danangchain.errors import DanangChainError, DecodeError
from danangchain.export import BlockRecord, ExportReader
from danangchain.genesis import Genesis
from danangchain.proof import encode_certificate_json, encode_header_json
from danangchain.transaction import CheckpointBody
from danangchain.validators import CommitCertificate, ValidatorSet, decode_certificate
from node.witness.feed import FeedError, OpenFeed
from node.witness.journal import WitnessJournal, make_entry

log = logging.getLogger("danangchain.witness")

# Hands a new cosignature to the chain (when the witness is an admitted witness member);
# returns what happened, for the log.
Submit = Callable[[Cosignature], str]
Clock = Callable[[], float]


class SourceSetAside(Exception):
    """A source served something that does not check: stop reading it."""


@dataclass
class Source:
    """One node the witness follows, and how far it read it."""

    url: str
    next_height: int = 1
    height: int = 0
    status: str = "not read yet"
    set_aside: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "height": self.height,
            "next_height": self.next_height,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class SigningPolicy:
    """When to cosign: every `every_blocks` heights, or the tip after `every_seconds`."""

    every_blocks: int
    every_seconds: float


class Witness:
    """One witness's state: the replay, what it signed, its sources, and any evidence."""

    def __init__(
        self,
        key: ed25519.SigningKey,
        genesis: Genesis,
        journal: WitnessJournal,
        sources: list[str],
        policy: SigningPolicy,
        open_feed: OpenFeed,
        submit: Submit | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.key = key
        self.genesis = genesis
        self.journal = journal
        self.policy = policy
        self.sources = [Source(url) for url in sources]
        self._open_feed = open_feed
        self._submit = submit
        self._clock = clock
        self.auditor = ChainAuditor(genesis)
        self.book = CheckpointBook(key.public_key, genesis.chain_id)
        # The validator set hash each cosigned block names: a conflicting block must be
        # certified by that same set to be evidence.
        self._cosigned_sets: dict[int, bytes] = {}
        self._sets: dict[bytes, ValidatorSet] = {}
        for entry in journal.read_entries():
            self.book.add(entry.cosignature)
            self._cosigned_sets[entry.cosignature.height] = entry.header.validators_hash
        self.evidence = journal.read_evidence()
        self.lock = threading.Lock()
        self.stop_requested = threading.Event()
        self._last_signed_at = clock()
        self._last_checked: CheckedBlock | None = None
        self._unwitnessed = False  # a block worth cosigning came since the last checkpoint
        self.blocks_checked = 0
        self.transactions_checked = 0
        self.seconds_checking = 0.0

    @property
    def halted(self) -> bool:
        """Tell whether the chain contradicted a checkpoint: the witness signs no more."""
        return self.evidence is not None

    # Following

    def poll(self) -> None:
        """Read every source from its cursor to its tip, then cosign the tip if it is time."""
        for source in self.sources:
            if self.halted:
                return
            if not source.set_aside:
                self._poll_source(source)
        self._cosign_tip_if_due()

    def _poll_source(self, source: Source) -> None:
        """Read one source from its cursor; a fault sets it aside, a broken stream waits."""
        try:
            with self._open_feed(source.url, source.next_height) as reader:
                self._read_source(source, reader)
            source.status = "following"
        except FeedError as exc:
            source.status = f"unreachable: {exc}"
        except SourceSetAside as exc:
            source.set_aside = True
            source.status = f"set aside: {exc}"
            log.error("witness: source %s set aside: %s", source.url, exc)
        except DecodeError as exc:
            source.set_aside = True
            source.status = f"set aside: its stream is malformed: {exc}"
            log.error("witness: source %s set aside: %s", source.url, exc)

    def _read_source(self, source: Source, reader: ExportReader) -> None:
        """Check or compare each block the source sends, moving its cursor."""
        if reader.header.genesis.hash != self.genesis.hash:
            raise SourceSetAside(
                f"it serves the chain of genesis {reader.header.genesis.hash.hex()}, "
                f"not {self.genesis.hash.hex()}"
            )
        source.height = reader.header.height
        for record in reader:
            if record.height == self.auditor.next_height:
                self._check(record, source.url)
            elif record.height <= self.auditor.tip.height:
                self._compare(record, source.url)
            else:  # a gap: this source is ahead of what the witness checked; read it later
                return
            source.next_height = record.height + 1
            if self.halted or self.stop_requested.is_set():
                return

    def _check(self, record: BlockRecord, url: str) -> None:
        """Check the next block as the auditor does; cosign it when its height is due."""
        started = time.perf_counter()
        try:
            checked = self.auditor.check_block(
                record.block_bytes, record.certificate_bytes, settle=True
            )
        except AuditFailure as failure:
            raise SourceSetAside(
                f"block {failure.height} does not check: {failure.reason}"
            ) from None
        self.seconds_checking += time.perf_counter() - started
        self.blocks_checked += 1
        self.transactions_checked += len(checked.result.tx_ids)
        header = checked.result.block.header
        self._sets.setdefault(header.validators_hash, self.auditor.validator_set)
        self._last_checked = checked
        contradicted = self.book.find_contradiction(header.height, checked.tip.block_hash)
        if contradicted is not None:  # a restart replays a chain rewritten meanwhile
            self._halt(contradicted, header, checked.certificate, url)
            return
        # A block of nothing but this witness's own checkpoints is not worth a checkpoint:
        # cosigning it would make the next such block, and so on, for ever.
        if not self._is_own_checkpoints_only(checked.result.block):
            self._unwitnessed = True
            if self._is_due(header.height):
                self._cosign(checked)

    def _is_own_checkpoints_only(self, block: Block) -> bool:
        """Tell whether a block carries only checkpoints this witness submitted."""
        return bool(block.transactions) and all(
            isinstance(tx.body, CheckpointBody) and tx.sender == self.key.public_key
            for tx in block.transactions
        )

    def _is_due(self, height: int) -> bool:
        """Tell whether a newly checked height is one to cosign by the block count."""
        latest = self.book.latest
        return (latest is None or height > latest.height) and height % self.policy.every_blocks == 0

    def _cosign_tip_if_due(self) -> None:
        """Cosign the tip if the last cosignature is older than `every_seconds`."""
        checked, latest = self._last_checked, self.book.latest
        if checked is None or self.halted or not self._unwitnessed:
            return
        if latest is not None and checked.tip.height <= latest.height:
            return
        if self._clock() - self._last_signed_at >= self.policy.every_seconds:
            self._cosign(checked)

    def _cosign(self, checked: CheckedBlock) -> None:
        """Sign a checkpoint of a checked block, journal it (fsync), then show and submit it."""
        tip, header = checked.tip, checked.result.block.header
        checkpoint = Checkpoint(self.genesis.chain_id, tip.height, tip.block_hash, tip.state_root)

        def persist(cosignature: Cosignature) -> None:
            self.journal.append(make_entry(cosignature, header, checked.certificate))

        with self.lock:
            cosignature, new = self.book.sign(self.key, checkpoint, persist)
            self._cosigned_sets[tip.height] = header.validators_hash
        self._last_signed_at = self._clock()
        self._unwitnessed = False
        if new and self._submit is not None:
            try:
                outcome = self._submit(cosignature)
            except Exception as exc:  # the chain is only one place checkpoints are served
                outcome = f"not submitted: {exc}"
            log.info("witness: checkpoint %d: %s", tip.height, outcome)

    def _compare(self, record: BlockRecord, url: str) -> None:
        """Compare a block at a checked height with the checkpoint of that height, if any."""
        cosigned = self.book.get(record.height)
        if cosigned is None:
            return
        block = _decode(record.height, record.block_bytes, decode_block, "block")
        if block.hash == cosigned.checkpoint.block_hash:
            return
        certificate = _decode(
            record.height, record.certificate_bytes, decode_certificate, "certificate"
        )
        self._check_evidence(cosigned, block, certificate)
        self._halt(cosigned, block.header, certificate, url)

    def _check_evidence(
        self, cosigned: Cosignature, block: Block, certificate: CommitCertificate
    ) -> None:
        """Refuse, as a faulty source, a differing block its validators did not certify."""
        set_hash = self._cosigned_sets.get(cosigned.height)
        validator_set = self._sets.get(block.header.validators_hash)
        if validator_set is None or block.header.validators_hash != set_hash:
            raise SourceSetAside(
                f"block {block.height} differs from the cosigned one but names a validator set "
                "other than the one that signs that height"
            )
        try:
            check_conflicting_block(cosigned, block.header, certificate, validator_set)
        except DanangChainError as exc:
            raise SourceSetAside(
                f"block {block.height} differs from the cosigned one and is not certified: {exc}"
            ) from None

    def _halt(
        self, cosigned: Cosignature, header: Header, certificate: CommitCertificate, where: str
    ) -> None:
        """Keep both blocks as evidence, durably, then stop signing and say so loudly."""
        entry = self.journal.find_entry(cosigned.height)
        signers = {key for key, _ in certificate.signatures}
        both = sorted(signers & {bytes.fromhex(s["validator"]) for s in _signatures(entry)})
        evidence = {
            "height": cosigned.height,
            "detected_from": where,
            "reason": (
                f"the chain contradicts the checkpoint this witness cosigned at height "
                f"{cosigned.height}: two blocks for one height, each certified by its validators"
            ),
            "cosigned": {
                "checkpoint": encode_cosignature_json(cosigned),
                "header": None if entry is None else encode_header_json(entry.header),
                "certificate": None if entry is None else entry.certificate,
            },
            "conflicting": {
                "block_hash": _hash_of(header),
                "header": encode_header_json(header),
                "certificate": encode_certificate_json(certificate),
            },
            "validators_who_signed_both": [
                {"public_key": key.hex(), "address": encode_address(compute_address(key))}
                for key in both
            ],
        }
        path = self.journal.write_evidence(evidence)
        with self.lock:
            self.evidence = evidence
        log.critical(
            "WITNESS HALTED: %s (block %s from %s); it signs nothing more. Evidence: %s",
            evidence["reason"],
            _hash_of(header),
            where,
            path,
        )

    # What the server shows

    def status(self) -> dict[str, Any]:
        """Return the witness's status: its height, halted or not, evidence, sources."""
        with self.lock:
            latest = self.book.latest
            tip = self.auditor.tip
            rate = self.blocks_checked / self.seconds_checking if self.seconds_checking else 0.0
            return {
                "witness": self.key.public_key.hex(),
                "chain_id": self.genesis.chain_id,
                "genesis_hash": self.genesis.hash.hex(),
                "height": tip.height,
                "block_hash": tip.block_hash.hex(),
                "halted": self.halted,
                "evidence": self.evidence,
                "latest_checkpoint": None if latest is None else encode_cosignature_json(latest),
                "checkpoints": len(self.book),
                "every_blocks": self.policy.every_blocks,
                "every_seconds": self.policy.every_seconds,
                "submitting": self._submit is not None,
                "blocks_checked": self.blocks_checked,
                "transactions_checked": self.transactions_checked,
                "seconds_checking": round(self.seconds_checking, 3),
                "blocks_per_second": round(rate, 1),
                "sources": [source.to_json() for source in self.sources],
            }

    def checkpoint_at(self, height: int) -> Cosignature | None:
        with self.lock:
            return self.book.get(height)

    def latest_checkpoint(self) -> Cosignature | None:
        with self.lock:
            return self.book.latest

    def checkpoints_from(self, height: int, limit: int) -> list[Cosignature]:
        with self.lock:
            return self.book.list_from(height, limit)


def _decode(height: int, data: bytes, decode: Callable[[bytes], Any], what: str) -> Any:
    try:
        return decode(data)
    except DanangChainError as exc:
        raise SourceSetAside(f"the {what} at height {height} does not decode: {exc}") from None


def _signatures(entry: Any) -> list[dict[str, str]]:
    return [] if entry is None else list(entry.certificate.get("signatures", []))


def _hash_of(header: Header) -> str:
    return compute_header_hash(header).hex()
