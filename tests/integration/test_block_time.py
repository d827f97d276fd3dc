"""A validator prevotes nil on a fresh proposal timed ahead of its clock (but validates it)."""

from __future__ import annotations

from pathlib import Path

from danangchain.consensus import BlockValidated, ValidateBlock
from danangchain.transaction import MemberAdmitBody
from node.chain.ledger import Limits, NodeLedger
from node.consensus.dispatch import carry_out
from node.consensus.driver import ConsensusDriver
from node.consensus.host import MAX_CLOCK_AHEAD_MS
from node.storage.store import Store

from .conftest import (
    GENESIS_TIME_MS,
    HOUSEHOLD,
    REGISTRAR,
    VALIDATOR,
    address_of,
    encode_signed,
    make_test_genesis,
)

NOW_MS = GENESIS_TIME_MS + 60_000


def test_a_block_timed_ahead_of_this_clock_is_valid_but_not_timely(tmp_path: Path) -> None:
    genesis = make_test_genesis()
    stores = [Store.open(str(tmp_path / name)) for name in ("proposer", "validator")]
    try:
        proposer_clock = [NOW_MS]
        proposer = NodeLedger(genesis, stores[0], Limits(), clock=lambda: proposer_clock[0])
        validator = NodeLedger(genesis, stores[1], Limits(), clock=lambda: NOW_MS)
        driver = ConsensusDriver(validator, VALIDATOR, [])
        admit = encode_signed(REGISTRAR, 1, MemberAdmitBody(address_of(HOUSEHOLD), "household"))
        proposer.submit(admit)
        for ahead, timely in ((MAX_CLOCK_AHEAD_MS, True), (MAX_CLOCK_AHEAD_MS + 1, False)):
            proposer_clock[0] = NOW_MS + ahead
            block = proposer.propose_block(VALIDATOR.public_key).block
            answer = carry_out(driver, ValidateBlock(block))
            assert answer == BlockValidated(block.hash, True, timely)
        assert validator.counters["refused: block time ahead of this node's clock"] == 1
    finally:
        for store in stores:
            store.close()
