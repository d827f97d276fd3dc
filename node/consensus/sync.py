"""Block sync: a node that is behind fetches certified blocks from a peer that is ahead,
in ranges, and hands them to its consensus machine, which checks each certificate
against the validator set of its height before anything is applied."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from danangchain.block import decode_block
from danangchain.consensus import CertifiedBlockReceived, Event
from danangchain.errors import DanangChainError
from danangchain.validators import decode_certificate
from node.chain.ledger import NodeLedger
from node.p2p.transport import PeerLink

SYNC_POLL_S = 1.0
SYNC_PATIENCE_S = 2.0
SYNC_STALL_S = 2.0


class BlockSync:
    """Ask peers their height every SYNC_POLL_S (or when woken) and catch up with them."""

    def __init__(
        self,
        ledger: NodeLedger,
        peers: Callable[[], Sequence[PeerLink]],
        post: Callable[[Event], bool],
        signs_next: Callable[[], bool] = lambda: True,
    ) -> None:
        self.ledger = ledger
        self.peers = peers
        self.post = post
        self.signs_next = signs_next
        self.wanted = asyncio.Event()
        # Set by every commit, so waiting for the tip needs no polling.
        self.tip_moved = asyncio.Event()
        self.unsubscribe = ledger.committed.subscribe(lambda event: self.tip_moved.set())

    async def run(self) -> None:
        """Fetch certified blocks from a peer that is ahead, until cancelled.

        A peer one block ahead has usually just committed the block this node is about
        to commit through consensus: a validator of the next height fetches that block
        only when its tip has not moved for SYNC_PATIENCE_S (a lagging node, or a network
        gone quiet). A node that does not sign the next height (a full node, or one just
        voted in) gains nothing by waiting and fetches it at once.
        """
        stuck_at, stuck_since = -1, 0.0
        loop = asyncio.get_running_loop()
        first = True
        while True:
            if not first:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wanted.wait(), SYNC_POLL_S)
            first = False
            self.wanted.clear()
            if self.ledger.tip.height != stuck_at:
                stuck_at, stuck_since = self.ledger.tip.height, loop.time()
            patient = loop.time() - stuck_since < SYNC_PATIENCE_S and self.signs_next()
            for peer in self.peers():
                status = await peer.get("/p2p/status")
                if not isinstance(status, dict) or not isinstance(status.get("height"), int):
                    continue
                if status["height"] > self.ledger.tip.height + int(patient):
                    await self._fetch_from(peer, status["height"])

    async def _fetch_from(self, peer: PeerLink, their_height: int) -> None:
        """Fetch, check and apply blocks up to a peer's height; the next range is asked
        for while this one is applied, so the peer prepares it in the meantime."""
        start = self.ledger.tip.height + 1
        fetching = asyncio.ensure_future(peer.get(f"/p2p/blocks/{start}"))
        try:
            while True:
                pairs = await fetching
                if not isinstance(pairs, list) or not pairs:
                    return
                target = start + len(pairs) - 1
                if target < their_height:
                    fetching = asyncio.ensure_future(peer.get(f"/p2p/blocks/{target + 1}"))
                if not self._post_synced(pairs) or not await self._wait_for_tip(target):
                    return
                if target >= their_height:
                    return
                start = target + 1
        finally:
            fetching.cancel()

    def _post_synced(self, pairs: list[Any]) -> bool:
        """Decode [block, certificate] pairs and hand them to the machine; False if bad."""
        for pair in pairs:
            try:
                block = decode_block(pair[0])
                certificate = decode_certificate(pair[1])
            except (DanangChainError, TypeError, IndexError):
                self.ledger.count("refused: bad synced block")
                return False
            self.post(CertifiedBlockReceived(block, certificate))
        return True

    async def _wait_for_tip(self, target: int) -> bool:
        """Wait until the tip reaches a height; False if it stops moving for SYNC_STALL_S."""
        while True:
            self.tip_moved.clear()
            if self.ledger.tip.height >= target:
                return True
            try:
                await asyncio.wait_for(self.tip_moved.wait(), SYNC_STALL_S)
            except TimeoutError:
                return self.ledger.tip.height >= target
