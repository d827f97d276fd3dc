"""Chains for audit tests: grown in-process with the core, written as export bytes or into a
LevelDB store, and rebuilt as a tamperer would rebuild them."""

from __future__ import annotations

import atexit
import concurrent.futures
import hashlib
import io
import multiprocessing
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cli.signature_prefetch import SignaturePrefetch
from danangchain import ed25519
from danangchain.audit import AuditFailure, AuditSummary, ChainAuditor
from danangchain.block import Block, compute_tx_root, encode_block
from danangchain.errors import DanangChainError, InvalidTransaction
from danangchain.export import (
    ExportReader,
    encode_block_record,
    encode_end_record,
    encode_export_header,
)
from danangchain.genesis import Genesis, compute_genesis_writes
from danangchain.ledger import (
    ChainTip,
    apply_block,
    get_genesis_tip,
    get_tip_after,
)
from danangchain.rules import apply_transaction
from danangchain.state import DictState, StateView, compute_state_root
from danangchain.transaction import (
    EndorseBody,
    MemberAdmitBody,
    RecordBody,
    Transaction,
    compute_tx_id,
    decode_transaction,
    encode_transaction,
)
from danangchain.validators import CommitCertificate, encode_certificate
from tests.unit.ledger_fixtures import (
    AUDITOR_SEED,
    BUSINESS_SEED,
    CHAIN_ID,
    HOUSEHOLD_SEED,
    OUTSIDER_SEED,
    REGISTRAR_SEED,
    LocalChain,
    address_of,
    get_tx_id,
    make_key,
    make_local_chain,
    sign_next,
)

registrar = make_key(REGISTRAR_SEED)
alice = make_key(HOUSEHOLD_SEED)  # household
bob = make_key(BUSINESS_SEED)  # business
carol = make_key(AUDITOR_SEED)  # admitted as a household in block 1
mallory = make_key(OUTSIDER_SEED)  # never admitted
MEMBERS = [(alice, "household"), (bob, "business")]
FOUR_VALIDATORS = [make_key(seed) for seed in (1, 11, 12, 13)]


@dataclass
class BuiltChain:
    """A committed chain: genesis, blocks, each block's own certificate, and the tip."""

    genesis: Genesis
    blocks: list[Block]
    certificates: list[CommitCertificate]
    tip: ChainTip
    validator_keys: list[ed25519.SigningKey]


def record(memo: str, counterparty: bytes | None = None) -> RecordBody:
    """Return a small invoice record body."""
    return RecordBody("invoice", hashlib.sha256(memo.encode()).digest(), 1000, counterparty, memo)


def grow(chain: LocalChain, heights: int) -> None:
    """Commit `heights` blocks of admissions, records and an endorsement."""
    state = chain.state
    first = chain.tip.height + 1
    for height in range(first, first + heights):
        txs: list[Transaction] = []
        if height == 1:
            txs.append(sign_next(state, registrar, MemberAdmitBody(address_of(carol), "household")))
        invoice = sign_next(state, bob, record(f"invoice {height}", address_of(alice)))
        txs.append(invoice)
        txs.append(sign_next(state, alice, record(f"receipt {height}")))
        txs.append(sign_next(state, alice, record(f"note {height}"), skip=1))
        if height > 1:
            txs.append(sign_next(state, carol, record(f"carol {height}")))
        chain.commit(txs)
        if height % 2 == 0:
            # The household endorses the business's invoice of this height in the next block.
            chain.commit([sign_next(state, alice, EndorseBody(get_tx_id(invoice)))])


def build_chain(heights: int = 4, validator_keys: Sequence[ed25519.SigningKey] = ()) -> BuiltChain:
    """Return a valid chain of about `heights` blocks (more: endorsements add blocks)."""
    chain = make_local_chain(validator_keys, MEMBERS)
    grow(chain, heights)
    return BuiltChain(
        chain.genesis, chain.blocks, chain.certificates, chain.tip, chain.validator_keys
    )


def encode_export(
    genesis: Genesis,
    blocks: Sequence[Block],
    certificates: Sequence[CommitCertificate],
    tip: ChainTip,
) -> bytes:
    """Return the export bytes of blocks and certificates with the given end record."""
    parts = [encode_export_header(genesis, len(blocks))]
    for block, certificate in zip(blocks, certificates, strict=True):
        parts.append(encode_block_record(encode_block(block), encode_certificate(certificate)))
    parts.append(encode_end_record(tip))
    return b"".join(parts)


def export_of(chain: BuiltChain) -> bytes:
    """Return the export bytes of a built chain."""
    return encode_export(chain.genesis, chain.blocks, chain.certificates, chain.tip)


def audit_export(
    data: bytes, pinned: bytes | None = None, with_workers: bool = True
) -> AuditSummary:
    """Verify export bytes as `audit verify --file` does; raise AuditFailure or DecodeError.

    Every chain is verified twice: alone, and with its signatures checked ahead by worker
    processes (one block read ahead, tasks of two signatures, so that tasks span blocks
    and blocks span tasks); both must give the same summary or the same failure."""
    from cli.chain_sources import replay_export

    def verify(prefetch: SignaturePrefetch | None) -> AuditSummary:
        reader = ExportReader(io.BytesIO(data).read)
        is_verified = (lambda tx_id: False) if prefetch is None else prefetch.is_verified
        auditor = ChainAuditor(reader.header.genesis, pinned, is_verified)
        return replay_export(reader, auditor, lambda _: None, prefetch)

    if not with_workers:
        return verify(None)
    alone = _outcome(lambda: verify(None))
    prefetch = small_task_prefetch(2, pool=_shared_pool())
    assert _outcome(lambda: verify(prefetch)) == alone, "workers changed the audit's result"
    # Workers that start no task: the prefetch takes each one back and checks it itself.
    gate = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as stalled:
        stalled.submit(gate.wait)
        try:
            taken_back = _outcome(lambda: verify(small_task_prefetch(2, pool=stalled)))
        finally:
            gate.set()
    assert taken_back == alone, "tasks taken back from the workers changed the audit's result"
    return verify(None)


def small_task_prefetch(
    workers: int, pool: concurrent.futures.Executor | None = None
) -> SignaturePrefetch:
    """Return signature workers that read one block ahead and check two signatures a task."""
    return SignaturePrefetch(workers, chunk_bytes=1, serial_below_bytes=0, pool=pool, task_txs=2)


def _outcome(run: Callable[[], AuditSummary]) -> object:
    """Return a verification's summary, or its failure's type, height, reason and tx id."""
    try:
        return run()
    except AuditFailure as failure:
        return ("failure", failure.height, failure.reason, failure.tx_id)
    except DanangChainError as error:
        return (type(error).__name__, str(error))


_POOL: list[concurrent.futures.Executor] = []


def _shared_pool() -> concurrent.futures.Executor:
    """Return the signature workers every audit test shares (started once)."""
    if not _POOL:
        context = multiprocessing.get_context("spawn")
        _POOL.append(concurrent.futures.ProcessPoolExecutor(2, mp_context=context))
        atexit.register(_POOL[0].shutdown)
    return _POOL[0]


def write_store(chain: BuiltChain, folder: Path) -> None:
    """Write a chain into a new LevelDB store exactly as a node commits it."""
    from node.storage.store import Store

    store = Store.open(str(folder))
    try:
        genesis = chain.genesis
        state = DictState()
        state.apply(compute_genesis_writes(genesis))
        store.initialise(genesis.hash, compute_genesis_writes(genesis), get_genesis_tip(genesis))
        tip = get_genesis_tip(genesis)
        for block, certificate in zip(chain.blocks, chain.certificates, strict=True):
            result = apply_block(state, tip, CHAIN_ID, block)
            tip = get_tip_after(result)
            store.commit(result, certificate, tip)
            state.apply(result.writes)
    finally:
        store.close()


# A tamperer rebuilds the chain around a change: transaction roots, state roots, hashes and
# links are recomputed; the validators' signatures cannot be.

EditTransactions = Callable[[list[bytes]], list[bytes]]


def forge_blocks(chain: BuiltChain, height: int, edit: EditTransactions) -> list[Block]:
    """Return the chain's blocks with block `height`'s transactions edited and all relinked."""
    state = DictState()
    state.apply(compute_genesis_writes(chain.genesis))
    root, previous_hash = get_genesis_tip(chain.genesis).state_root, chain.genesis.hash
    forged = []
    for block in chain.blocks:
        tx_bytes = edit(list(block.tx_bytes)) if block.height == height else list(block.tx_bytes)
        view = StateView(state)
        for raw in tx_bytes:
            attempt = view.fork()
            try:
                tx = decode_transaction(raw)
                apply_transaction(attempt, tx, compute_tx_id(raw), CHAIN_ID, block.height, False)
            except InvalidTransaction:
                continue  # no state root can make an invalid transaction valid
            for key, value in attempt.writes.items():
                view.put(key, value)
        header = replace(
            block.header,
            previous_hash=previous_hash,
            tx_root=compute_tx_root(tx_bytes),
            tx_count=len(tx_bytes),
            state_root=compute_state_root(root, view.writes),
        )
        transactions = tuple(decode_transaction(raw) for raw in tx_bytes)
        forged.append(Block(header, tuple(tx_bytes), block.last_commit, transactions))
        state.apply(view.writes)
        root, previous_hash = header.state_root, forged[-1].hash
    return forged


def forged_tip(blocks: Sequence[Block]) -> ChainTip:
    """Return the tip a tamperer would claim for forged blocks."""
    header = blocks[-1].header
    return ChainTip(header.height, blocks[-1].hash, header.time_ms, header.state_root)


def relink(genesis: Genesis, blocks: Sequence[Block], start: int = 0) -> list[Block]:
    """Return blocks whose previous hashes are recomputed from index `start` on."""
    linked = list(blocks[:start])
    previous_hash = genesis.hash if start == 0 else linked[-1].hash
    for block in blocks[start:]:
        linked.append(replace(block, header=replace(block.header, previous_hash=previous_hash)))
        previous_hash = linked[-1].hash
    return linked


def encode_signed(key: ed25519.SigningKey, nonce: int, body: RecordBody) -> bytes:
    """Sign a record for the test chain and return its bytes."""
    from danangchain.transaction import sign_transaction

    return encode_transaction(sign_transaction(key, CHAIN_ID, nonce, body))
