"""build_block and apply_block give byte-for-byte the same result with prepared effects
as without: honest ones are reused, and stale or wrong ones (another height, another
pre-state, another transaction, another chain) are never taken for the rules."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from danangchain.block import Block, compute_tx_root
from danangchain.errors import InvalidBlock, InvalidTransaction
from danangchain.ledger import (
    BlockResult,
    Candidate,
    ChainTip,
    GetPrepared,
    PreparedEffects,
    apply_block,
    build_block,
    get_genesis_tip,
    get_tip_after,
    make_candidate,
    prepare_transaction,
)
from danangchain.state import DictState, StateReader, StateView
from danangchain.transaction import (
    EndorseBody,
    MemberAdmitBody,
    MemberRevokeBody,
    RecordBody,
    Transaction,
    encode_transaction,
    sign_transaction,
)
from danangchain.validators import CommitCertificate
from node.chain.mempool import Mempool
from tests.unit.ledger_fixtures import (
    BLOCK_INTERVAL_MS,
    CHAIN_ID,
    REGISTRAR_SEED,
    VALIDATOR_SEED,
    address_of,
    certify,
    make_genesis_state,
    make_key,
    make_test_genesis,
)

MEMBERS = [make_key(seed) for seed in (3, 4, 5)]
REGISTRAR = make_key(REGISTRAR_SEED)
VALIDATOR = make_key(VALIDATOR_SEED)
GENESIS = make_test_genesis(members=[(key, "business") for key in MEMBERS])

# One step: (kind, actor, other, flag). "dup" reuses the actor's last nonce (a conflicting
# transaction with the same reads), "badsig" carries another transaction's signature,
# "elsewhere" is signed for another chain with the actor's next nonce here.
KINDS = ["record"] * 4 + ["endorse", "cancel", "dup", "badsig", "revoke", "admit", "skip"]
KINDS += ["elsewhere"]
steps = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 2), st.integers(0, 2), st.integers(0, 7)),
    min_size=4,
    max_size=30,
)
# How each transaction's prepared effects are made (cycled over the transactions).
SOURCES = ["none", "honest", "honest", "height", "prestate", "other_tx", "chain", "forged"]
SOURCES += ["wrong_id"]
sources = st.lists(st.sampled_from(SOURCES), min_size=1, max_size=8)


def make_transactions(chosen: list[tuple[str, int, int, int]]) -> list[Transaction]:
    """Sign one transaction per step, nonces counted as if every one applied."""
    nonces: dict[bytes, int] = {}
    records: list[tuple[int, bytes]] = []
    txs: list[Transaction] = []

    def sign(key_index: int | None, body: object, nonce_change: int = 1) -> Transaction:
        key = REGISTRAR if key_index is None else MEMBERS[key_index]
        nonce = nonces.get(key.public_key, 0) + nonce_change
        nonces[key.public_key] = max(nonce, nonces.get(key.public_key, 0))
        return sign_transaction(key, CHAIN_ID, max(nonce, 1), body)  # type: ignore[arg-type]

    for kind, actor, other, flag in chosen:
        target = address_of(MEMBERS[other])
        mine = [rid for creator, rid in records if creator == actor]
        theirs = [rid for creator, rid in records if creator == other != actor]
        counterparty = target if flag % 2 and other != actor else None
        body: object = RecordBody(
            "invoice", bytes([flag, len(txs)]) * 16, counterparty=counterparty
        )
        tx: Transaction
        if kind == "endorse" and theirs:
            tx = sign(actor, EndorseBody(theirs[flag % len(theirs)]))
        elif kind == "cancel" and mine:
            reference = mine[flag % len(mine)]
            tx = sign(actor, RecordBody("invoice", None, None, None, "", reference, "cancels"))
        elif kind == "dup":
            tx = sign(actor, body, nonce_change=0)
        elif kind == "skip":
            tx = sign(actor, body, nonce_change=2)
        elif kind == "badsig" and txs:
            tx = replace(sign(actor, body), signature=txs[-1].signature)
        elif kind == "elsewhere":
            key = MEMBERS[actor]
            nonce = nonces.get(key.public_key, 0) + 1
            tx = sign_transaction(key, "danang-elsewhere", nonce, body)  # type: ignore[arg-type]
        elif kind == "revoke":
            tx = sign(None, MemberRevokeBody(target))
        elif kind == "admit":
            tx = sign(None, MemberAdmitBody(target, "business"))
        else:
            tx = sign(actor, body)
        txs.append(tx)
        if isinstance(tx.body, RecordBody) and tx.body.reference is None:
            records.append((actor, make_candidate(tx, encode_transaction(tx)).tx_id))
    return txs


def prepare_in_order(
    state: StateReader, candidates: Sequence[Candidate], height: int, own_chain: bool = False
) -> dict[bytes, PreparedEffects]:
    """Prepare each candidate over state plus the earlier ones that applied, as a mempool
    does; a refused one has no effects. With `own_chain`, each is prepared for the chain
    it was signed for (as a node of that other chain would), over the same view."""
    pending = StateView(state)
    prepared: dict[bytes, PreparedEffects] = {}
    for candidate in candidates:
        tx, tx_id = candidate.tx, candidate.tx_id
        with contextlib.suppress(InvalidTransaction):
            if own_chain and tx.chain_id != CHAIN_ID:
                prepared[tx_id] = prepare_transaction(pending, tx, tx_id, tx.chain_id, height)
        try:
            effects = prepare_transaction(pending, tx, tx_id, CHAIN_ID, height)
        except InvalidTransaction:
            continue
        for key, value in effects.writes.items():
            pending.put(key, value)
        prepared.setdefault(tx_id, effects)
    return prepared


def make_provider(
    state: StateReader, candidates: Sequence[Candidate], height: int, chosen: list[str]
) -> GetPrepared:
    """Return prepared effects per candidate, each from the source chosen for it."""
    honest = prepare_in_order(state, candidates, height)
    foreign = prepare_in_order(state, candidates, height, own_chain=True)
    stale_height = prepare_in_order(state, candidates, height + 1)
    # Another pre-state: each candidate prepared as if it were the only one.
    alone = {c.tx_id: prepare_in_order(state, [c], height).get(c.tx_id) for c in candidates}
    by_id: dict[bytes, PreparedEffects | None] = {}
    for index, candidate in enumerate(candidates):
        source = chosen[index % len(chosen)]
        neighbour = honest.get(candidates[(index + 1) % len(candidates)].tx_id)
        own = honest.get(candidate.tx_id)
        effects: PreparedEffects | None = None
        if source == "honest":
            effects = own
        elif source == "height":
            effects = stale_height.get(candidate.tx_id)
        elif source == "prestate":
            effects = alone[candidate.tx_id]
        elif source == "other_tx":
            effects = neighbour
        elif source == "chain":
            effects = foreign.get(candidate.tx_id)
        elif source == "wrong_id":  # this transaction, its rules run under another id
            renamed = replace(candidate, tx_id=bytes(32))
            effects = prepare_in_order(state, [renamed], height).get(renamed.tx_id)
        elif source == "forged" and neighbour is not None:
            effects = replace(neighbour, tx_id=candidate.tx_id)  # another tx's effects
        by_id[candidate.tx_id] = effects
    return lambda tx_id: by_id.get(tx_id)


def build_outcome(
    state: StateReader,
    tip: ChainTip,
    candidates: Sequence[Candidate],
    last_commit: CommitCertificate | None,
    prepared: GetPrepared | None,
) -> tuple[BlockResult, list[object]]:
    """Build a block; return it with everything a caller sees of it."""
    extra = {} if prepared is None else {"prepared": prepared}
    result, rejected = build_block(
        state,
        tip,
        CHAIN_ID,
        candidates,
        tip.time_ms + BLOCK_INTERVAL_MS,
        VALIDATOR.public_key,
        last_commit,
        **extra,  # type: ignore[arg-type]
    )
    seen = [
        result.block,
        list(result.writes.items()),
        result.tx_ids,
        [(tx_id, str(exc), exc.code) for tx_id, exc in rejected],
    ]
    return result, seen


def apply_outcome(
    state: StateReader, tip: ChainTip, block: Block, prepared: GetPrepared | None
) -> list[object]:
    """Apply a block; return its writes and ids, or everything its refusal says."""
    extra = {} if prepared is None else {"prepared": prepared}
    try:
        result = apply_block(state, tip, CHAIN_ID, block, **extra)  # type: ignore[arg-type]
    except InvalidBlock as exc:
        return ["refused", str(exc), exc.tx_index, exc.tx_id, exc.reason]
    return [list(result.writes.items()), result.tx_ids]


def carrying_every_candidate(block: Block, candidates: Sequence[Candidate]) -> Block:
    """Return the block carrying every candidate, refused ones too, as a faulty or
    malicious proposer might send it (its tx root recomputed, its state root kept)."""
    tx_bytes = tuple(c.tx_bytes for c in candidates)
    header = replace(block.header, tx_root=compute_tx_root(tx_bytes), tx_count=len(tx_bytes))
    return Block(header, tx_bytes, block.last_commit, tuple(c.tx for c in candidates))


def check_height(
    state: DictState,
    tip: ChainTip,
    candidates: list[Candidate],
    last_commit: CommitCertificate | None,
    chosen: list[str],
) -> BlockResult:
    """Check one height every way; return the block built without prepared effects."""
    provider = make_provider(state, candidates, tip.height + 1, chosen)
    plain, plain_seen = build_outcome(state, tip, candidates, last_commit, None)
    _, reused_seen = build_outcome(state, tip, candidates, last_commit, provider)
    assert reused_seen == plain_seen
    # The block as built, and a block carrying the refused transactions as well.
    for block in (plain.block, carrying_every_candidate(plain.block, candidates)):
        assert apply_outcome(state, tip, block, provider) == apply_outcome(state, tip, block, None)
    # The mempool itself as the provider (signatures aside, so "badsig" gets effects).
    mempool = Mempool(CHAIN_ID, 1000, 1 << 20, verify=lambda tx: None)
    for candidate in candidates:
        with contextlib.suppress(InvalidTransaction):
            mempool.admit(candidate, state, tip.height + 1)
    _, mempool_seen = build_outcome(state, tip, candidates, last_commit, mempool.get_prepared)
    assert mempool_seen == plain_seen
    block = plain.block
    assert apply_outcome(state, tip, block, mempool.get_prepared) == apply_outcome(
        state, tip, block, None
    )
    return plain


@settings(max_examples=150, deadline=None)
@given(steps=steps, split=st.integers(0, 30), chosen=sources)
def test_prepared_effects_never_change_a_block(
    steps: list[tuple[str, int, int, int]], split: int, chosen: list[str]
) -> None:
    state = make_genesis_state(GENESIS)
    tip = get_genesis_tip(GENESIS)
    txs = make_transactions(steps)
    candidates = [make_candidate(tx, encode_transaction(tx)) for tx in txs]
    first, second = candidates[:split], candidates[split:]
    result = check_height(state, tip, first, None, chosen)
    certificate = certify(result.block, [VALIDATOR])
    state.apply(result.writes)
    tip = get_tip_after(result)
    check_height(state, tip, second, certificate, chosen)


def test_a_reused_transaction_still_has_its_signature_checked() -> None:
    """Prepared effects skip the rules, never the signature of an unverified transaction."""
    state = make_genesis_state(GENESIS)
    tip = get_genesis_tip(GENESIS)
    good = sign_transaction(MEMBERS[0], CHAIN_ID, 1, RecordBody("invoice", bytes(32)))
    other = sign_transaction(MEMBERS[1], CHAIN_ID, 1, RecordBody("invoice", bytes(32)))
    forged = replace(good, signature=other.signature)
    candidate = make_candidate(forged, encode_transaction(forged))
    prepared = prepare_in_order(state, [candidate], 1)
    assert candidate.tx_id in prepared
    result, rejected = build_block(
        state,
        tip,
        CHAIN_ID,
        [candidate],
        tip.time_ms + 1,
        VALIDATOR.public_key,
        None,
        prepared=prepared.get,
    )
    assert result.tx_ids == () and [tx_id for tx_id, _ in rejected] == [candidate.tx_id]
    assert rejected[0][1].code == "bad_signature"
