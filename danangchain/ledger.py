"""The state transition of a block: build one from candidates, or validate and apply one.

Both paths run the same rules in the same order, so what a proposer builds is exactly
what every validator and every auditor recomputes.

A node has usually run a transaction's rules already, when its mempool admitted it
(`prepare_transaction`). The rules read state through `get` alone, and what they do
depends on nothing else but the transaction, its id, the chain id and the height
stamped into what they write. So the effects prepared then are reused in a block,
instead of running the rules again, where every one of those is the same: the same
transaction at the same height and chain, and every key read sees the value it saw
then in the block's running view. Anything else runs the rules as before; the result
(writes, state root, the refusal and its index) is the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from danangchain.block import (
    MAX_BLOCK_SIZE,
    MAX_BLOCK_TXS,
    Block,
    Header,
    compute_header_hash,
    compute_tx_root,
)
from danangchain.errors import InvalidBlock, InvalidTransaction
from danangchain.genesis import Genesis, compute_genesis_state_root
from danangchain.rules import apply_transaction
from danangchain.state import (
    KEY_LAST_VALIDATORS,
    KEY_NEXT_VALIDATORS,
    KEY_VALIDATORS,
    StateReader,
    StateView,
    compute_state_root,
)
from danangchain.transaction import Transaction, compute_tx_id, verify_transaction_signature
from danangchain.validators import (
    CommitCertificate,
    ValidatorSet,
    compute_certificate_hash,
    compute_validator_set_hash,
    decode_validator_set,
    verify_certificate,
)

IsVerified = Callable[[bytes], bool]


@dataclass(frozen=True, slots=True)
class ChainTip:
    """The last committed block as the next block sees it."""

    height: int
    block_hash: bytes
    time_ms: int
    state_root: bytes


@dataclass(frozen=True, slots=True)
class Candidate:
    """A decoded transaction with its canonical bytes and id, as a mempool holds it."""

    tx: Transaction
    tx_bytes: bytes
    tx_id: bytes


@dataclass(frozen=True, slots=True)
class BlockResult:
    """A valid block with the state writes it makes and the ids of its transactions."""

    block: Block
    writes: dict[bytes, bytes | None]
    tx_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class PreparedEffects:
    """What a transaction's rules did when this node ran them (`prepare_transaction`):
    on what (the transaction, its id, the chain id, the height), every key they read
    with the value they saw, and what they wrote. Signatures are not part of it."""

    tx: Transaction
    tx_id: bytes
    chain_id: str
    height: int
    reads: Mapping[bytes, bytes | None]
    writes: Mapping[bytes, bytes | None]


# A node's own earlier computations, by transaction id (never a block's claim).
GetPrepared = Callable[[bytes], PreparedEffects | None]


def make_candidate(tx: Transaction, tx_bytes: bytes) -> Candidate:
    """Wrap a decoded transaction with its bytes and id."""
    return Candidate(tx, tx_bytes, compute_tx_id(tx_bytes))


def get_genesis_tip(genesis: Genesis) -> ChainTip:
    """Return the tip that block 1 builds on."""
    return ChainTip(0, genesis.hash, genesis.time_ms, compute_genesis_state_root(genesis))


def get_validator_set(state: StateReader) -> ValidatorSet:
    """Return the validator set recorded in state."""
    data = state.get(KEY_VALIDATORS)
    if data is None:
        raise InvalidBlock("state holds no validator set")
    return decode_validator_set(data)


class _ReadRecorder:
    """A state reader that notes each key read and the value it saw first."""

    __slots__ = ("base", "reads")

    def __init__(self, base: StateReader) -> None:
        self.base = base
        self.reads: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        value = self.base.get(key)
        self.reads.setdefault(key, value)
        return value


def prepare_transaction(
    state: StateReader, tx: Transaction, tx_id: bytes, chain_id: str, height: int
) -> PreparedEffects:
    """Run a transaction's rules (not its signature) over state, without changing it, and
    return what they read and wrote; raise InvalidTransaction."""
    recorder = _ReadRecorder(state)
    attempt = StateView(recorder)
    apply_transaction(attempt, tx, tx_id, chain_id, height, verify_signature=False)
    return PreparedEffects(tx, tx_id, chain_id, height, recorder.reads, attempt.writes)


def is_prepared_for(
    prepared: PreparedEffects,
    view: StateReader,
    tx: Transaction,
    tx_id: bytes,
    chain_id: str,
    height: int,
) -> bool:
    """Tell whether the rules run now would do exactly what they did when prepared: the
    same inputs, and every key they read holds the value it held then."""
    if prepared.height != height or prepared.tx_id != tx_id or prepared.chain_id != chain_id:
        return False
    if prepared.tx is not tx and prepared.tx != tx:
        return False
    get = view.get
    return all(get(key) == value for key, value in prepared.reads.items())


def apply_transaction_prepared(
    view: StateView,
    tx: Transaction,
    tx_id: bytes,
    chain_id: str,
    height: int,
    verify_signature: bool,
    prepared: PreparedEffects | None,
) -> None:
    """Apply a transaction to the view as `apply_transaction` does, or raise
    InvalidTransaction: with its prepared writes where they provably hold, else by its
    rules. The signature is checked in the rules' place: after the checks before it and
    before the checks after it, which all held when the effects were prepared."""
    if prepared is not None and is_prepared_for(prepared, view, tx, tx_id, chain_id, height):
        if verify_signature:
            verify_transaction_signature(tx)
        for key, value in prepared.writes.items():
            view.put(key, value)
        return
    apply_transaction(view, tx, tx_id, chain_id, height, verify_signature)


def no_prepared(tx_id: bytes) -> PreparedEffects | None:
    """Return no prepared effects: every transaction runs its rules."""
    return None


def build_block(
    state: StateReader,
    tip: ChainTip,
    chain_id: str,
    candidates: Sequence[Candidate],
    time_ms: int,
    proposer: bytes,
    last_commit: CommitCertificate | None,
    is_verified: IsVerified = lambda tx_id: False,
    prepared: GetPrepared = no_prepared,
) -> tuple[BlockResult, list[tuple[bytes, InvalidTransaction]]]:
    """Build the next block from candidates in order, leaving out (and returning) invalid ones.

    `prepared` gives this node's own earlier effects of a transaction, reused where they
    provably hold (module docstring)."""
    height = tip.height + 1
    view = StateView(state)
    included: list[Candidate] = []
    rejected: list[tuple[bytes, InvalidTransaction]] = []
    size = 0
    for candidate in candidates:
        if len(included) >= MAX_BLOCK_TXS or size + len(candidate.tx_bytes) > MAX_BLOCK_SIZE // 2:
            break
        attempt = view.fork()
        try:
            apply_transaction_prepared(
                attempt,
                candidate.tx,
                candidate.tx_id,
                chain_id,
                height,
                not is_verified(candidate.tx_id),
                prepared(candidate.tx_id),
            )
        except InvalidTransaction as exc:
            rejected.append((candidate.tx_id, exc))
            continue
        for key, value in attempt.writes.items():
            view.put(key, value)
        included.append(candidate)
        size += len(candidate.tx_bytes)
    rotate_validator_sets(state, view)
    validator_set = get_validator_set(view)
    tx_bytes = tuple(c.tx_bytes for c in included)
    header = Header(
        chain_id=chain_id,
        height=height,
        time_ms=max(time_ms, tip.time_ms + 1),
        previous_hash=tip.block_hash,
        tx_root=compute_tx_root(tx_bytes),
        tx_count=len(tx_bytes),
        state_root=compute_state_root(tip.state_root, view.writes),
        validators_hash=compute_validator_set_hash(get_validator_set(state)),
        next_validators_hash=compute_validator_set_hash(validator_set),
        proposer=proposer,
        last_commit_hash=compute_certificate_hash(last_commit),
    )
    block = Block(header, tx_bytes, last_commit, tuple(c.tx for c in included))
    return BlockResult(block, view.writes, tuple(c.tx_id for c in included)), rejected


def apply_block(
    state: StateReader,
    tip: ChainTip,
    chain_id: str,
    block: Block,
    is_verified: IsVerified = lambda tx_id: False,
    prepared: GetPrepared = no_prepared,
) -> BlockResult:
    """Validate a block against the tip and state, and return its writes; raise InvalidBlock.

    Every validator set used comes from the state: the set of this height signs the header,
    the set of the previous height signed the certificate the block carries. `prepared`
    gives this node's own earlier effects of a transaction (by the id of the bytes the
    block carries), reused where they provably hold (module docstring).
    """
    header = block.header
    validator_set = get_validator_set(state)
    check_header_links(header, tip, chain_id, validator_set)
    check_last_commit(block, tip, chain_id, get_last_validator_set(state))
    # Verify the transaction root and count cover exactly the transactions carried.
    if len(block.tx_bytes) != header.tx_count or len(block.transactions) != header.tx_count:
        raise InvalidBlock(
            f"header says {header.tx_count} transactions, block carries {len(block.tx_bytes)}"
        )
    if compute_tx_root(block.tx_bytes) != header.tx_root:
        raise InvalidBlock("transaction root does not match the block's transactions")
    view = StateView(state)
    tx_ids = tuple(compute_tx_id(raw) for raw in block.tx_bytes)
    if len(set(tx_ids)) != len(tx_ids):
        raise InvalidBlock("block carries the same transaction twice")
    for index, (tx, tx_id) in enumerate(zip(block.transactions, tx_ids, strict=True)):
        try:
            apply_transaction_prepared(
                view, tx, tx_id, chain_id, header.height, not is_verified(tx_id), prepared(tx_id)
            )
        except InvalidTransaction as exc:
            raise InvalidBlock(
                f"transaction {index} ({tx_id.hex()}): {exc}", index, tx_id, str(exc)
            ) from None
    rotate_validator_sets(state, view)
    # Verify the next validator set and the state root the proposer claims.
    if compute_validator_set_hash(get_validator_set(view)) != header.next_validators_hash:
        raise InvalidBlock("next validator set hash does not match the state")
    if compute_state_root(tip.state_root, view.writes) != header.state_root:
        raise InvalidBlock("state root does not match the result of the transactions")
    return BlockResult(block, view.writes, tx_ids)


def get_last_validator_set(state: StateReader) -> ValidatorSet:
    """Return the validator set that signed the last committed block."""
    data = state.get(KEY_LAST_VALIDATORS)
    if data is None:
        raise InvalidBlock("state holds no validator set of the last block")
    return decode_validator_set(data)


def get_next_validator_set(state: StateReader) -> ValidatorSet:
    """Return the validator set that will sign the block after the next one."""
    data = state.get(KEY_NEXT_VALIDATORS)
    if data is None:
        raise InvalidBlock("state holds no upcoming validator set")
    return decode_validator_set(data)


def rotate_validator_sets(state: StateReader, view: StateView) -> None:
    """After a block: its signers become the last set, the upcoming set signs next.

    Changes decided in this block went to the upcoming set (W) and sign from two
    heights on; the one read here is W as it was before the block.
    """
    for key, value in (
        (KEY_LAST_VALIDATORS, state.get(KEY_VALIDATORS)),
        (KEY_VALIDATORS, state.get(KEY_NEXT_VALIDATORS)),
    ):
        if view.get(key) != value:
            view.put(key, value)


def check_header_links(
    header: Header, tip: ChainTip, chain_id: str, validator_set: ValidatorSet
) -> None:
    """Check a header's chain id, height, link, time, validator set and proposer."""
    if header.chain_id != chain_id:
        raise InvalidBlock(f"chain id {header.chain_id!r} is not {chain_id!r}")
    if header.height != tip.height + 1:
        raise InvalidBlock(f"height {header.height} does not follow {tip.height}")
    if header.previous_hash != tip.block_hash:
        raise InvalidBlock("previous hash does not link to the last block")
    if header.time_ms <= tip.time_ms:
        raise InvalidBlock(f"time {header.time_ms} is not after the last block's {tip.time_ms}")
    if header.validators_hash != compute_validator_set_hash(validator_set):
        raise InvalidBlock("validator set hash does not match the set of this height")
    if validator_set.power_of(header.proposer) == 0:
        raise InvalidBlock("proposer is not a validator of this height")


def check_last_commit(
    block: Block, tip: ChainTip, chain_id: str, previous_validator_set: ValidatorSet
) -> None:
    """Check the certificate a block carries for its parent (none for block 1)."""
    if compute_certificate_hash(block.last_commit) != block.header.last_commit_hash:
        raise InvalidBlock("last commit hash does not match the certificate carried")
    if tip.height == 0:
        if block.last_commit is not None:
            raise InvalidBlock("block 1 cannot carry a certificate")
        return
    if block.last_commit is None:
        raise InvalidBlock(f"block {block.height} lacks the certificate of block {tip.height}")
    verify_certificate(
        block.last_commit, chain_id, tip.height, tip.block_hash, previous_validator_set
    )


def get_tip_after(result: BlockResult) -> ChainTip:
    """Return the tip that a committed block makes."""
    header = result.block.header
    return ChainTip(header.height, compute_header_hash(header), header.time_ms, header.state_root)
