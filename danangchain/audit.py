"""The auditor: replay a chain from its genesis with the validators' own functions.

`ChainAuditor` takes blocks one at a time, as their stored bytes, with each block's own
certificate, and keeps only the replayed state (a DictState, which also holds the
validator sets of the last, current and next heights), the tip and one pending
certificate: memory does not grow with the number of blocks. Every block goes through
`apply_block`, the function validators run, which checks the link, time order,
proposer, transaction root, every transaction's signature (once) and rule, validator
changes, the next validator set, the state root and the certificate the block carries
for its parent against the parent height's validator set. A block's
own certificate is checked when the next block arrives (if it is the one that block
carries, `apply_block` has checked it), and the tip's by `finish`, which also compares
the tip with the one the source claims.
"""

from __future__ import annotations

from dataclasses import dataclass

from danangchain.block import Block, decode_block
from danangchain.errors import DanangChainError, InvalidBlock
from danangchain.genesis import Genesis, compute_genesis_writes
from danangchain.ledger import (
    BlockResult,
    ChainTip,
    IsVerified,
    apply_block,
    get_genesis_tip,
    get_tip_after,
    get_validator_set,
)
from danangchain.state import KEY_VALIDATORS, DictState
from danangchain.validators import (
    CommitCertificate,
    ValidatorSet,
    decode_certificate,
    verify_certificate,
)

# apply_block names a failing transaction as "transaction INDEX (TX_ID): reason".


class AuditFailure(DanangChainError):
    """The first point where a chain is not what its validators could have produced."""

    code = "invalid_chain"

    def __init__(self, height: int, reason: str, tx_id: bytes | None = None) -> None:
        super().__init__(f"height {height}: {reason}")
        self.height = height
        self.reason = reason
        self.tx_id = tx_id


@dataclass(frozen=True, slots=True)
class CheckedBlock:
    """A block that passed every check but its own certificate's (checked one block later)."""

    result: BlockResult
    certificate: CommitCertificate
    tip: ChainTip


@dataclass(frozen=True, slots=True)
class AuditSummary:
    """What a successful audit checked."""

    genesis_hash: bytes
    chain_id: str
    tip: ChainTip
    transactions_checked: int
    validators_seen: int

    @property
    def heights_checked(self) -> int:
        """Return the number of blocks replayed."""
        return self.tip.height


def check_genesis_hash(genesis: Genesis, pinned_hash: bytes | None) -> None:
    """Refuse a genesis whose hash is not the pinned one."""
    if pinned_hash is not None and genesis.hash != pinned_hash:
        raise AuditFailure(
            0, f"genesis hash {genesis.hash.hex()} is not the pinned {pinned_hash.hex()}"
        )


class ChainAuditor:
    """Replay a chain block by block from its genesis; raise AuditFailure at the first fault."""

    def __init__(
        self,
        genesis: Genesis,
        pinned_hash: bytes | None = None,
        is_verified: IsVerified = lambda tx_id: False,
    ) -> None:
        """`is_verified` names transactions whose signatures were already found valid
        (checked ahead on other cores by the same strict verifier); every other
        transaction's signature is checked here."""
        check_genesis_hash(genesis, pinned_hash)
        self.is_verified = is_verified
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.state = DictState()
        self.state.apply(compute_genesis_writes(genesis))
        self.tip = get_genesis_tip(genesis)
        self.transactions_checked = 0
        self._validator_set = genesis.validator_set
        self._validator_set_bytes = self.state.get(KEY_VALIDATORS)
        self._validators_seen = {v.public_key for v in genesis.validator_set.validators}
        # The tip's own certificate, not verified yet, and the validator set of its height.
        self._pending: tuple[CommitCertificate, ValidatorSet] | None = None

    @property
    def validators_seen(self) -> int:
        """Return how many distinct validators the heights checked so far had."""
        return len(self._validators_seen)

    @property
    def next_height(self) -> int:
        """Return the height the next block must have."""
        return self.tip.height + 1

    @property
    def validator_set(self) -> ValidatorSet:
        """Return the validator set that signed the tip (genesis's before block 1)."""
        return self._validator_set

    def check_block(
        self, block: bytes | Block, certificate_bytes: bytes | None, settle: bool = False
    ) -> CheckedBlock:
        """Check the next block, and the previous block's own certificate; apply the block.

        `block`: its stored bytes, or the block `decode_block` made of them (decoded ahead,
        beside the signature checks). With `settle`, the block's own certificate is checked
        too, before the block is applied: a follower that acts on each block at once (a
        witness cosigning it) must never hold a block its validators did not sign, even
        for one block."""
        try:
            return self._check_next_block(block, certificate_bytes, settle)
        except AuditFailure:
            # The fault may lie in the previous block, which only its certificate betrays.
            self.verify_pending_certificate()
            raise

    def verify_pending_certificate(self) -> None:
        """Check the tip's own certificate now, unless a later block already carried it."""
        if self._pending is not None:
            certificate, validator_set = self._pending
            self._pending = None
            if certificate.block_hash != self.tip.block_hash:
                raise AuditFailure(
                    self.tip.height,
                    f"the certificate of block {self.tip.height} is for block "
                    f"{certificate.block_hash.hex()}, not this one ({self.tip.block_hash.hex()}): "
                    "the block differs from what its validators signed",
                )
            try:
                verify_certificate(
                    certificate, self.chain_id, self.tip.height, self.tip.block_hash, validator_set
                )
            except DanangChainError as exc:
                raise AuditFailure(
                    self.tip.height, f"the certificate of block {self.tip.height}: {exc}"
                ) from None

    def finish(self, claimed_tip: ChainTip) -> AuditSummary:
        """Check the tip's own certificate and the tip the source claims; return the summary."""
        self.verify_pending_certificate()
        check_claimed_tip(self.tip, claimed_tip)
        return AuditSummary(
            self.genesis.hash,
            self.chain_id,
            self.tip,
            self.transactions_checked,
            self.validators_seen,
        )

    def _check_next_block(
        self, data: bytes | Block, certificate_bytes: bytes | None, settle: bool = False
    ) -> CheckedBlock:
        """Decode and apply the next block; keep its certificate for the next block to settle."""
        height = self.next_height
        block = data if isinstance(data, Block) else _decode_block(height, data)
        # A certificate the block carries as its last commit is verified by apply_block;
        # BFT may carry another quorum of the same votes, so a different one is checked here.
        if self._pending is not None and self._pending[0] != block.last_commit:
            self.verify_pending_certificate()
        validator_set = self._get_validator_set(height)
        result = self._apply(block)
        if certificate_bytes is None:
            raise AuditFailure(height, f"the certificate of block {height} is missing")
        certificate = _decode_certificate(height, certificate_bytes)
        if settle:
            _verify_own_certificate(certificate, self.chain_id, result.block, validator_set)
        self.state.apply(result.writes)
        self.tip = get_tip_after(result)
        self.transactions_checked += len(result.tx_ids)
        self._pending = None if settle else (certificate, validator_set)
        return CheckedBlock(result, certificate, self.tip)

    def _apply(self, block: Block) -> BlockResult:
        """Run apply_block (signatures verified once, here) and name the faulty transaction."""
        try:
            return apply_block(self.state, self.tip, self.chain_id, block, self.is_verified)
        except DanangChainError as exc:
            raise _describe_block_failure(self.next_height, exc) from None

    def _get_validator_set(self, height: int) -> ValidatorSet:
        """Return the validator set of this height from state, decoding it only when it changed."""
        data = self.state.get(KEY_VALIDATORS)
        if data != self._validator_set_bytes:
            try:
                self._validator_set = get_validator_set(self.state)
            except DanangChainError as exc:
                raise AuditFailure(height, f"the validator set in state: {exc}") from None
            self._validator_set_bytes = data
            self._validators_seen.update(v.public_key for v in self._validator_set.validators)
        return self._validator_set


def check_claimed_tip(tip: ChainTip, claimed: ChainTip) -> None:
    """Refuse a source whose claimed tip is not the replayed one."""
    if claimed.height != tip.height:
        raise AuditFailure(
            min(claimed.height, tip.height) + 1,
            f"the source claims its tip at height {claimed.height}, "
            f"the chain it holds ends at height {tip.height}",
        )
    for name in ("block_hash", "time_ms", "state_root"):
        if getattr(claimed, name) != getattr(tip, name):
            raise AuditFailure(
                tip.height,
                f"the tip's {name.replace('_', ' ')} the source claims is not the replayed one",
            )


def _verify_own_certificate(
    certificate: CommitCertificate, chain_id: str, block: Block, validator_set: ValidatorSet
) -> None:
    """Check a block's own certificate against the validator set of its height."""
    try:
        verify_certificate(certificate, chain_id, block.height, block.hash, validator_set)
    except DanangChainError as exc:
        raise AuditFailure(
            block.height, f"the certificate of block {block.height}: {exc}"
        ) from None


def _decode_block(height: int, data: bytes) -> Block:
    """Decode a stored block, turning a decode error into a failure at its height."""
    try:
        return decode_block(data)
    except DanangChainError as exc:
        raise AuditFailure(height, f"block {height} does not decode: {exc}") from None


def _decode_certificate(height: int, data: bytes) -> CommitCertificate:
    """Decode a block's own stored certificate."""
    try:
        return decode_certificate(data)
    except DanangChainError as exc:
        raise AuditFailure(
            height, f"the certificate of block {height} does not decode: {exc}"
        ) from None


def _describe_block_failure(height: int, error: DanangChainError) -> AuditFailure:
    """Turn apply_block's error into a failure, with the faulty transaction's id if any."""
    if isinstance(error, InvalidBlock) and error.tx_index is not None:
        return AuditFailure(height, f"transaction {error.tx_index}: {error.reason}", error.tx_id)
    return AuditFailure(height, str(error))
