"""A validator's proposal carries its own clients' transactions to every peer: those still
queued for gossip are not sent apart; those it did not propose, and a peer's, are."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from danangchain.consensus import ProposalBlockReady, RequestProposalBlock
from danangchain.transaction import compute_tx_id
from node.chain.ledger import Limits, NodeLedger
from node.consensus.dispatch import carry_out
from node.consensus.driver import ConsensusDriver
from node.p2p.transport import PeerIdentity, PeerLink
from node.storage.store import Store

from .conftest import VALIDATOR, make_test_genesis
from .test_signature_pool import admission


async def test_a_proposal_takes_its_transactions_out_of_the_gossip_queues(
    tmp_path: Path,
) -> None:
    genesis = make_test_genesis()
    store = Store.open(str(tmp_path / "data"))
    ledger = NodeLedger(genesis, store, Limits(block_max_txs=2), clock=lambda: genesis.time_ms + 1)
    driver = ConsensusDriver(ledger, VALIDATOR, [])
    try:
        async with aiohttp.ClientSession() as session:
            identity = PeerIdentity(VALIDATOR, genesis.chain_id)
            links = [PeerLink(f"http://127.0.0.{n}:9", session, {}, identity) for n in (2, 3)]
            driver.peers = list(links)
            txs = [admission(nonce) for nonce in (1, 2, 3)]
            for tx in txs:
                ledger.submit(tx)
            assert all(len(link.txs) == 3 for link in links)
            event = carry_out(driver, RequestProposalBlock(1, 0))
            assert isinstance(event, ProposalBlockReady) and len(event.block.tx_bytes) == 2
            # The third did not fit in the block: it is still gossiped, alone.
            for link in links:
                assert [tx_id for tx_id, _ in link.txs] == [compute_tx_id(txs[2])]
    finally:
        driver.unsubscribe()
        driver.unsubscribe_commits()
        store.close()
