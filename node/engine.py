"""Block production for a network of one validator (dev mode).

With a single validator its own precommit is already more than 2/3 of the power, so
propose, validate, precommit and commit collapse into one step. The BFT driver of a
multi-validator network replaces this class and calls the same three NodeLedger methods.
"""

from __future__ import annotations

import asyncio
import logging

from danangchain import ed25519
from danangchain.validators import PRECOMMIT, make_certificate, sign_vote
from node.chain.ledger import NodeLedger
from node.p2p.service import PeerAccess, create_peer_server
from node.p2p.transport import PeerServer

log = logging.getLogger("danangchain.engine")


class SoloEngine:
    """Make a block whenever transactions wait, at most one per `min_interval_s`; serve
    followers (full nodes) the chain and take the transactions they pass on."""

    def __init__(
        self,
        ledger: NodeLedger,
        key: ed25519.SigningKey,
        min_interval_s: float,
        allowed_peers: frozenset[bytes] = frozenset(),
    ) -> None:
        validator_set = ledger.get_validator_set()
        if len(validator_set.validators) != 1 or validator_set.power_of(key.public_key) == 0:
            raise ValueError(
                "this node's key is not the network's only validator; "
                "multi-validator consensus is not available in this version"
            )
        self.ledger = ledger
        self.key = key
        self.min_interval_s = min_interval_s
        self.access = PeerAccess(ledger, allowed_peers)
        ledger.commit_listeners.append(lambda result, certificate: self.access.refresh())

    def peer_server(self) -> PeerServer:
        """Return the peer routes: sync and gossiped transactions; consensus messages are
        refused (and counted), a single validator needs none."""
        return create_peer_server(self.ledger, self.access, self._refuse_messages)

    def _refuse_messages(self, batch: list[bytes]) -> None:
        counters = self.ledger.counters
        what = "refused: consensus message to a single validator"
        counters[what] = counters.get(what, 0) + len(batch)

    async def run(self) -> None:
        """Produce blocks until cancelled."""
        while True:
            await self.ledger.tx_arrived.wait()
            self.produce_one()
            await asyncio.sleep(self.min_interval_s)

    def produce_one(self) -> None:
        """Build, self-certify and commit one block from the mempool."""
        ledger = self.ledger
        if len(ledger.get_validator_set().validators) != 1:
            raise RuntimeError(
                "the validator set grew beyond this node: restart it to run consensus"
            )
        result = ledger.propose_block(self.key.public_key)
        if not result.tx_ids:
            if not len(ledger.mempool):
                ledger.tx_arrived.clear()
            return
        vote = sign_vote(
            self.key, ledger.chain_id, PRECOMMIT, result.block.height, 0, result.block.hash
        )
        ledger.commit(result, make_certificate([vote]))
        log.info("committed block %d with %d transactions", result.block.height, len(result.tx_ids))
