"""The mempool's rebuild after a commit, reusing what unchanged reads allow, keeps exactly
the transactions and pending state that applying every pending transaction again gives."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from danangchain.errors import InvalidTransaction
from danangchain.ledger import make_candidate
from danangchain.rules import apply_transaction
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
from node.chain.mempool import Mempool
from tests.unit.ledger_fixtures import (
    CHAIN_ID,
    REGISTRAR_SEED,
    address_of,
    make_genesis_state,
    make_key,
    make_test_genesis,
)

MEMBERS = [make_key(seed) for seed in (3, 4, 5)]
REGISTRAR = make_key(REGISTRAR_SEED)
GENESIS = make_test_genesis(members=[(key, "business") for key in MEMBERS])

KINDS_RARE = ["revoke", "admit", "commit", "reject"]
# One step: (kind, actor, other, flag). Kinds: record, endorse, cancel, revoke, admit,
# commit (a random subset, maybe with a transaction the mempool never saw), reject.
steps = st.lists(
    st.tuples(
        st.sampled_from(["record"] * 4 + ["endorse", "cancel"] * 2 + KINDS_RARE),
        st.integers(0, 2),
        st.integers(0, 2),
        st.integers(0, 7),
    ),
    min_size=10,
    max_size=40,
)


class ReferenceMempool(Mempool):
    """The mempool as it was: every pending transaction applied again after a removal."""

    def remove(
        self, tx_ids: Sequence[bytes], state: StateReader, next_height: int
    ) -> list[tuple[bytes, InvalidTransaction]]:
        for tx_id in tx_ids:
            candidate = self._entries.pop(tx_id, None)
            if candidate is not None:
                self._forget(tx_id, candidate)
        self._pending = StateView(state)
        dropped: list[tuple[bytes, InvalidTransaction]] = []
        for tx_id, candidate in list(self._entries.items()):
            attempt = self._pending.fork()
            try:
                apply_transaction(attempt, candidate.tx, tx_id, CHAIN_ID, next_height, False)
            except InvalidTransaction as exc:
                del self._entries[tx_id]
                self._forget(tx_id, candidate)
                dropped.append((tx_id, exc))
                continue
            for key, value in attempt.writes.items():
                self._pending.put(key, value)
        return dropped


class Scenario:
    """A committed state, a mempool over it, and what each member created."""

    def __init__(self) -> None:
        self.state: DictState = make_genesis_state(GENESIS)
        self.height = 0
        self.mempool = Mempool(CHAIN_ID, 1000, 1 << 20)
        self.reference = ReferenceMempool(CHAIN_ID, 1000, 1 << 20)
        self.dropped: list[list[tuple[bytes, str]]] = []
        self.records: list[tuple[int, bytes]] = []  # (creator index, record id)
        self.nonces: dict[bytes, int] = {}

    def sign(self, key_index: int | None, body: object, skip_mempool: bool = False) -> Transaction:
        key = REGISTRAR if key_index is None else MEMBERS[key_index]
        pending = self.mempool.pending_view(self.state).get_member(address_of(key))
        committed = StateView(self.state).get_member(address_of(key))
        member = committed if skip_mempool else pending
        nonce = (member.nonce if member else 0) + 1
        return sign_transaction(key, CHAIN_ID, nonce, body)  # type: ignore[arg-type]

    def submit(self, tx: Transaction) -> None:
        candidate = make_candidate(tx, encode_transaction(tx))
        try:
            self.mempool.admit(candidate, self.state, self.height + 1)
        except InvalidTransaction:
            return
        self.reference.admit(candidate, self.state, self.height + 1)
        if isinstance(tx.body, RecordBody):
            self.records.append((MEMBERS.index(_key_of(tx)), candidate.tx_id))

    def commit(self, choose: int, outsider: Transaction | None) -> None:
        """Commit every `choose`-th pending transaction (in reverse order when odd)."""
        chosen = self.mempool.candidates(1000)[:: 1 + choose % 3]
        if choose % 2:
            chosen.reverse()
        if outsider is not None:
            chosen.insert(0, make_candidate(outsider, encode_transaction(outsider)))
        view, ids = StateView(self.state), []
        for candidate in chosen:
            attempt = view.fork()
            try:
                apply_transaction(attempt, candidate.tx, candidate.tx_id, CHAIN_ID, self.height + 1)
            except InvalidTransaction:
                continue
            for key, value in attempt.writes.items():
                view.put(key, value)
            ids.append(candidate.tx_id)
        self.state.apply(view.writes)
        self.height += 1
        self.remove(ids)

    def remove(self, ids: list[bytes]) -> None:
        """Remove transactions from both mempools, noting what each dropped and which rule
        it broke (the message can differ in a pending height: the reused mempool keeps
        the height a pending revocation was first applied at, as describe() allows)."""
        for mempool in (self.mempool, self.reference):
            dropped = mempool.remove(ids, self.state, self.height + 1)
            self.dropped.append([(tx_id, error.code) for tx_id, error in dropped])


def _key_of(tx: Transaction) -> object:
    return next(key for key in MEMBERS if key.public_key == tx.sender)


def describe(view: StateView, scenario: Scenario) -> list[object]:
    """Return what pending state means to clients: members and records, heights aside."""
    members = [view.get_member(address_of(key)) for key in [REGISTRAR, *MEMBERS]]
    records = [view.get_record(record_id) for _, record_id in scenario.records]
    return [
        *[(m.nonce, m.revoked, m.role) if m else None for m in members],
        *[(r.endorsed_height is None, r.cancelled_height is None) if r else None for r in records],
    ]


def run_step(scenario: Scenario, kind: str, actor: int, other: int, flag: int) -> None:
    """Carry out one step of a scenario."""
    target = address_of(MEMBERS[other])
    mine = [rid for creator, rid in scenario.records if creator == actor]
    theirs = [rid for creator, rid in scenario.records if creator == other and other != actor]
    if kind == "record":
        counterparty = target if flag % 2 and other != actor else None
        body = RecordBody("invoice", bytes([flag]) * 32, counterparty=counterparty)
        scenario.submit(scenario.sign(actor, body))
    elif kind == "endorse" and theirs:
        scenario.submit(scenario.sign(actor, EndorseBody(theirs[flag % len(theirs)])))
    elif kind == "cancel" and mine:
        body = RecordBody("invoice", bytes(32), reference=mine[flag % len(mine)])
        scenario.submit(
            scenario.sign(actor, RecordBody(**{**_fields(body), "reference_kind": "cancels"}))
        )
    elif kind == "revoke":
        scenario.submit(scenario.sign(None, MemberRevokeBody(target)))
    elif kind == "admit":
        scenario.submit(scenario.sign(None, MemberAdmitBody(target, "business")))
    elif kind == "commit":
        outsider = None
        if flag >= 6:  # a block with a revocation this node never saw
            outsider = scenario.sign(None, MemberRevokeBody(target), skip_mempool=True)
        scenario.commit(flag, outsider)
    elif kind == "reject":
        pending = scenario.mempool.candidates(1000)
        if pending:
            scenario.remove([pending[flag % len(pending)].tx_id])


def _fields(body: RecordBody) -> dict[str, object]:
    return {name: getattr(body, name) for name in RecordBody.__slots__}


@settings(max_examples=80, deadline=None)
@given(steps=steps)
def test_rebuild_after_commit_matches_applying_everything_again(
    steps: list[tuple[str, int, int, int]],
) -> None:
    scenario = Scenario()
    for kind, actor, other, flag in steps:
        run_step(scenario, kind, actor, other, flag)
        pending = [c.tx_id for c in scenario.mempool.candidates(1000)]
        assert pending == [c.tx_id for c in scenario.reference.candidates(1000)]
        if scenario.dropped:
            assert scenario.dropped[-2] == scenario.dropped[-1]
        actual = scenario.mempool.pending_view(scenario.state)
        expected = scenario.reference.pending_view(scenario.state)
        assert describe(actual, scenario) == describe(expected, scenario)
