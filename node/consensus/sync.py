"""Block sync: a node that is behind fetches certified blocks from a peer that is ahead,
in ranges, and hands them to its consensus machine, which checks each certificate
against the validator set of its height before anything is applied."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from danangchain.block import Block, decode_block
from danangchain.consensus import CertifiedBlockReceived, Event
from danangchain.errors import DanangChainError
from danangchain.validators import CommitCertificate, decode_certificate
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
        """Fetch, check and apply blocks up to a peer's height. The next range is asked
        for and decoded while this one is applied, so the peer prepares it meanwhile;
        each block's signatures are checked ahead on the pool's workers (if the node has
        them) and the block goes to the machine as soon as they are, so the machine
        applies one block while the workers check the next ones."""
        start = self.ledger.tip.height + 1
        fetching = asyncio.ensure_future(self._fetch_range(peer, start))
        checks: list[asyncio.Task[None]] = []
        try:
            while True:
                blocks, complete = await fetching
                if not blocks:
                    return
                target = start + len(blocks) - 1
                if complete and target < their_height:
                    fetching = asyncio.ensure_future(self._fetch_range(peer, target + 1))
                checks = [
                    asyncio.create_task(self.ledger.preverify(block.tx_bytes))
                    for block, _ in blocks
                ]
                for (block, certificate), check in zip(blocks, checks, strict=True):
                    await check
                    self.post(CertifiedBlockReceived(block, certificate))
                if not complete or not await self._wait_for_tip(target):
                    return
                if target >= their_height:
                    return
                start = target + 1
        finally:
            fetching.cancel()
            for check in checks:
                check.cancel()

    async def _fetch_range(
        self, peer: PeerLink, start: int
    ) -> tuple[list[tuple[Block, CommitCertificate]], bool]:
        """Fetch [block, certificate] pairs from a height and decode them; return the
        pairs decoded and whether all were (the blocks before a bad one still apply)."""
        pairs = await peer.get(f"/p2p/blocks/{start}")
        if not isinstance(pairs, list):
            return [], False
        blocks = []
        for pair in pairs:
            try:
                blocks.append((decode_block(pair[0]), decode_certificate(pair[1])))
            except (DanangChainError, TypeError, IndexError):
                self.ledger.count("refused: bad synced block")
                return blocks, False
        return blocks, True

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
