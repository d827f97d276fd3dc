"""The actions of the consensus machine that touch only the ledger: persisting what is
signed, building, validating and committing blocks, keeping evidence. The node's driver
adds the network and the timers; the seeded simulation adds a simulated network over the
same class and an in-memory store, so every seed runs this code."""

from __future__ import annotations

import logging

from danangchain import ed25519
from danangchain.block import Block
from danangchain.consensus import (
    BlockValidated,
    CommitBlock,
    Event,
    EvidenceFound,
    MessageDropped,
    PersistSigning,
    ProposalBlockReady,
    RequestProposalBlock,
    StartHeight,
    ValidateBlock,
    encode_message,
    encode_signing_record,
)
from danangchain.encoding import pack
from danangchain.errors import DanangChainError, InvalidBlock
from danangchain.ledger import BlockResult
from node.chain.ledger import NodeLedger

log = logging.getLogger("danangchain.consensus")

# How far ahead of this node's clock a fresh proposal's time may be for a prevote.
MAX_CLOCK_AHEAD_MS = 10_000


class CertifiedInvalidBlock(RuntimeError):
    """More than 1/3 of the validators certified a block this node finds invalid."""


class LedgerHost:
    """Carry out the ledger's part of the machine's actions for one node."""

    def __init__(self, ledger: NodeLedger, key: ed25519.SigningKey) -> None:
        self.ledger = ledger
        self.key = key
        # Blocks of this height already built or validated, by hash.
        self.results: dict[bytes, BlockResult] = {}

    def persist_signing(self, action: PersistSigning) -> None:
        """Sync the signing record before the message leaves."""
        self.ledger.save_signing_record(encode_signing_record(action.record))

    def propose_block(self, action: RequestProposalBlock) -> Event | None:
        """Build this validator's block from the mempool."""
        result = self.ledger.propose_block(self.key.public_key)
        self.results[result.block.hash] = result
        return ProposalBlockReady(action.height, action.round, result.block)

    def validate_block(self, action: ValidateBlock) -> Event:
        """Validate a block against the tip's state, and tell whether it is timely."""
        valid = self.validate(action.block) is not None
        return BlockValidated(action.block.hash, valid, self.is_timely(action.block))

    def commit_block(self, action: CommitBlock) -> Event | None:
        """Commit a certified block and start the next height."""
        result = self.validate(action.block)
        if result is None:
            raise CertifiedInvalidBlock(f"certified block {action.block.hash.hex()} is invalid")
        self.ledger.commit(result, action.certificate)
        self.results.clear()
        log.info("committed block %d (%d transactions)", action.block.height, len(result.tx_ids))
        return self.start_next_height()

    def start_next_height(self) -> StartHeight:
        """Return the event that starts the height after the tip."""
        return StartHeight(
            self.ledger.tip.height + 1,
            self.ledger.get_validator_set(),
            txs_available=len(self.ledger.mempool) > 0,
        )

    def keep_evidence(self, action: EvidenceFound) -> None:
        """Keep two conflicting votes of one validator and log who signed them."""
        encoded = pack([encode_message(action.first), encode_message(action.second)])
        self.ledger.keep_evidence(action.first.height, encoded)
        self.ledger.count("evidence")
        log.warning(
            "validator %s signed two %ss at height %d round %d",
            action.first.validator.hex()[:12],
            action.first.vote_type,
            action.first.height,
            action.first.round,
        )

    def note_dropped(self, action: MessageDropped) -> None:
        """Count a refused message by its reason."""
        self.ledger.count(f"refused: {action.reason}")

    def validate(self, block: Block) -> BlockResult | None:
        """Return a block's result if it is valid on the tip (once per block), else None."""
        result = self.results.get(block.hash)
        if result is None:
            try:
                result = self.ledger.validate_block(block)
            except (InvalidBlock, DanangChainError) as exc:
                log.warning(
                    "invalid block %s at height %d: %s", block.hash.hex()[:12], block.height, exc
                )
                return None
            self.results[block.hash] = result
        return result

    def is_timely(self, block: Block) -> bool:
        """Tell whether a block's time is at most MAX_CLOCK_AHEAD_MS ahead of this node's
        clock: a fresh proposal from the future gets a nil prevote, so no proposer with a
        fast (or lying) clock can push the chain's time ahead of the validators' own."""
        ahead = block.header.time_ms - self.ledger.clock()
        if ahead <= MAX_CLOCK_AHEAD_MS:
            return True
        self.ledger.count("refused: block time ahead of this node's clock")
        log.warning(
            "block %s at height %d is timed %.1fs ahead of this node's clock",
            block.hash.hex()[:12],
            block.height,
            ahead / 1000,
        )
        return False
