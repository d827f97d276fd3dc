"""The committed state a store remembers is never stale: a commit updates it, absent
keys included, and a full cache starts again."""

from __future__ import annotations

from pathlib import Path

import pytest

from danangchain.state import StateView
from danangchain.transaction import MemberAdmitBody
from danangchain.validators import PRECOMMIT, make_certificate, sign_vote
from node.chain.ledger import Limits, NodeLedger
from node.storage import store as store_module
from node.storage.store import Store

from .conftest import HOUSEHOLD, REGISTRAR, VALIDATOR, address_of, encode_signed, make_test_genesis


def commit_next(ledger: NodeLedger) -> None:
    result = ledger.propose_block(VALIDATOR.public_key)
    vote = sign_vote(
        VALIDATOR, ledger.chain_id, PRECOMMIT, result.block.height, 0, result.block.hash
    )
    ledger.commit(result, make_certificate([vote]))


@pytest.mark.parametrize("entries", [store_module.STATE_CACHE_ENTRIES, 1])
def test_reads_after_a_commit_see_its_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entries: int
) -> None:
    monkeypatch.setattr(store_module, "STATE_CACHE_ENTRIES", entries)
    store = Store.open(str(tmp_path / "data"))
    try:
        ledger = NodeLedger(make_test_genesis(), store, Limits())
        household = address_of(HOUSEHOLD)
        assert StateView(store.state).get_member(household) is None  # remembered as absent
        ledger.submit(encode_signed(REGISTRAR, 1, MemberAdmitBody(household, "household")))
        commit_next(ledger)
        member = StateView(store.state).get_member(household)
        assert member is not None and member.role == "household"
        # The same as a fresh store reading the disk.
        store.close()
        store = Store.open(str(tmp_path / "data"))
        assert StateView(store.state).get_member(household) == member
    finally:
        store.close()
