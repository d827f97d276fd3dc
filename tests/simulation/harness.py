"""A seeded, simulated network of validators that run the node's own consensus code.

Many validators run in one process, each with the node's ledger (NodeLedger) over the
store's in-memory twin, the consensus machine, and the node's action dispatch and ledger
host (node/consensus/dispatch.py, node/consensus/host.py): blocks are built, validated
and committed as a node does. Only the network and the timers are simulated. The network
delays, drops, duplicates and reorders messages, partitions and heals; validators crash
and restart keeping only what their store holds (the signing record, committed blocks);
up to f of them are Byzantine. Everything random comes from one seed, so a failing run is
reproduced from its seed alone.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from danangchain import ed25519
from danangchain.address import compute_address
from danangchain.block import Block
from danangchain.consensus import (
    BlockValidated,
    Broadcast,
    CertifiedBlockReceived,
    CommitBlock,
    Consensus,
    Event,
    EvidenceFound,
    Message,
    MessageDropped,
    MessageReceived,
    PeerAhead,
    Proposal,
    ScheduleTimeout,
    StartHeight,
    TimeoutFired,
    Timeouts,
    TxsAvailable,
    ValidateBlock,
    decode_signing_record,
    sign_proposal,
)
from danangchain.genesis import Genesis, make_genesis
from danangchain.validators import (
    PRECOMMIT,
    PREVOTE,
    Validator,
    Vote,
    sign_vote,
)
from node.chain.ledger import Limits, NodeLedger
from node.consensus.dispatch import run_until_quiet
from node.consensus.host import CertifiedInvalidBlock, LedgerHost
from node.storage.store import Store

CHAIN_ID = "sim"
GENESIS_TIME_MS = 1_700_000_000_000
INVALID_MARK = b"\xff" * 32
BLOCK_INTERVAL_MS = 200
SYNC_INTERVAL_MS = 700
REBROADCAST_INTERVAL_MS = 1000


@dataclass(frozen=True)
class Scenario:
    """How hostile a run is; every choice inside a run still comes from its seed."""

    validators: int = 4
    byzantine: int = 0
    chaos_ms: int = 10_000
    stable_ms: int = 90_000
    drop: float = 0.1
    duplicate: float = 0.05
    max_delay_ms: int = 80
    partitions: bool = True
    crashes: bool = True
    heights_after_stable: int = 3
    # Chance that a node finds a block's time ahead of its clock (during the chaos only):
    # clocks that disagree, or a proposer stamping the future.
    untimely: float = 0.0


class CachedVerifier:
    """Strict Ed25519 verification, each distinct (key, message, signature) checked once."""

    def __init__(self) -> None:
        self.results: dict[tuple[bytes, bytes, bytes], bool] = {}

    def __call__(self, key: bytes, message: bytes, signature: bytes) -> bool:
        triple = (key, message, signature)
        if triple not in self.results:
            self.results[triple] = ed25519.is_valid_signature(key, message, signature)
        return self.results[triple]


@dataclass
class SimNode:
    """One validator: its store (which survives a crash) and, while up, its ledger, host
    and machine."""

    index: int
    key: ed25519.SigningKey
    byzantine: bool
    store: Store = field(default_factory=Store.in_memory)
    ledger: NodeLedger | None = None
    host: SimHost | None = None
    machine: Consensus | None = None
    sent: list[Message] = field(default_factory=list)
    incarnation: int = 0

    @property
    def height(self) -> int:
        """Return the height of the last block this node committed."""
        return self.store.get_tip().height

    @property
    def next_height(self) -> int:
        return self.height + 1

    def committed_hashes(self) -> list[bytes]:
        """Return the hashes of the blocks this node committed, in height order."""
        blocks = [self.store.get_block(h) for h in range(1, self.height + 1)]
        return [block.hash for block in blocks if block is not None]


class SimHost(LedgerHost):
    """The node's ledger host, with the simulated network and timers around it."""

    def __init__(self, simulation: Simulation, node: SimNode, ledger: NodeLedger) -> None:
        super().__init__(ledger, node.key)
        self.simulation = simulation
        self.node = node

    def broadcast(self, action: Broadcast) -> None:
        self.simulation.on_broadcast(self.node, action.message)

    def schedule_timeout(self, action: ScheduleTimeout) -> None:
        event = TimeoutFired(action.kind, action.height, action.round)
        self.simulation.at_node(action.delay_ms, self.node, event)

    def validate_block(self, action: ValidateBlock) -> Event:
        event = super().validate_block(action)
        assert isinstance(event, BlockValidated)
        if not event.valid:
            self.simulation.count("invalid block")
        return BlockValidated(event.block_hash, event.valid, self.simulation.is_timely())

    def commit_block(self, action: CommitBlock) -> Event | None:
        self.simulation.check_decision(self.node, action.block)
        try:
            event = super().commit_block(action)
        except CertifiedInvalidBlock as exc:
            raise SafetyViolation(self.simulation.report(f"v{self.node.index}: {exc}")) from None
        self.simulation.on_commit(self.node, action.block)
        return event

    def start_next_height(self) -> StartHeight:
        return self.simulation.start_event(self.node)

    def keep_evidence(self, action: EvidenceFound) -> None:
        super().keep_evidence(action)
        self.simulation.count("evidence")

    def note_dropped(self, action: MessageDropped) -> None:
        super().note_dropped(action)
        self.simulation.count(f"dropped: {action.reason}")

    def note_peer_ahead(self, action: PeerAhead) -> None:
        self.simulation.count("peer ahead")


class SafetyViolation(AssertionError):
    """Two correct validators committed different blocks at one height."""


class Simulation:
    """Run validators over a simulated network from a seed."""

    def __init__(self, seed: int, scenario: Scenario = Scenario(), quorum: Any = None) -> None:
        self.seed = seed
        self.scenario = scenario
        self.rng = random.Random(seed)
        self.now = 0
        self.queue: list[tuple[int, int, str, Any]] = []
        self.sequence = 0
        self.trace: deque[str] = deque(maxlen=400)
        self.verifier = CachedVerifier()
        self.quorum = quorum
        self.timeouts = Timeouts(
            propose_ms=300,
            propose_delta_ms=200,
            prevote_ms=200,
            prevote_delta_ms=100,
            precommit_ms=200,
            precommit_delta_ms=100,
            cap_ms=3000,
        )
        keys = [
            ed25519.signing_key_from_seed(hashlib.sha256(f"{seed}/{i}".encode()).digest())
            for i in range(scenario.validators)
        ]
        registrar = compute_address(hashlib.sha256(f"{seed}/registrar".encode()).digest())
        self.genesis: Genesis = make_genesis(
            CHAIN_ID,
            GENESIS_TIME_MS,
            [Validator(k.public_key, f"v{i}") for i, k in enumerate(keys)],
            [(registrar, "registrar")],
        )
        byzantine = set(self.rng.sample(range(scenario.validators), scenario.byzantine))
        self.nodes = [SimNode(i, k, i in byzantine) for i, k in enumerate(keys)]
        self.decisions: dict[int, bytes] = {}
        self.groups: list[set[int]] | None = None
        self.stable_heights: dict[int, int] = {}
        self.counts: dict[str, int] = {}

    # Scheduling

    def at(self, time_ms: int, kind: str, payload: Any) -> None:
        self.sequence += 1
        heapq.heappush(self.queue, (time_ms, self.sequence, kind, payload))

    def at_node(self, delay_ms: int, node: SimNode, event: Event) -> None:
        """Deliver an event to a node's current incarnation after a delay."""
        self.at(self.now + delay_ms, "event", (node.index, node.incarnation, event))

    def correct(self) -> list[SimNode]:
        return [node for node in self.nodes if not node.byzantine]

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # Running

    def run(self) -> Simulation:
        """Run the chaos phase, then the stable phase; raise on any violation."""
        for node in self.nodes:
            self.boot(node)
            self.at(self.rng.randrange(SYNC_INTERVAL_MS), "sync", node.index)
            self.at(self.rng.randrange(REBROADCAST_INTERVAL_MS), "rebroadcast", node.index)
        self.plan_chaos()
        stable_at = self.scenario.chaos_ms
        self.at(stable_at, "stabilise", None)
        end = stable_at + self.scenario.stable_ms
        while self.queue:
            time_ms, _, kind, payload = heapq.heappop(self.queue)
            if time_ms > end or self.done():
                break
            self.now = time_ms
            self.dispatch(kind, payload)
        return self

    def done(self) -> bool:
        if not self.stable_heights:
            return False
        target = self.scenario.heights_after_stable
        return all(n.height >= self.stable_heights[n.index] + target for n in self.correct())

    def dispatch(self, kind: str, payload: Any) -> None:
        if kind == "deliver":
            destination, message, incarnation = payload
            node = self.nodes[destination]
            if node.machine is not None and node.incarnation == incarnation:
                self.feed(node, MessageReceived(message))
        elif kind == "event":
            index, incarnation, event = payload
            node = self.nodes[index]
            if node.machine is not None and node.incarnation == incarnation:
                self.feed(node, event)
        elif kind == "sync":
            self.sync(self.nodes[payload])
            self.at(self.now + SYNC_INTERVAL_MS, "sync", payload)
        elif kind == "rebroadcast":
            node = self.nodes[payload]
            if node.machine is not None:
                for message in node.machine.gossip_set():
                    self.broadcast(node, message)
            self.at(self.now + REBROADCAST_INTERVAL_MS, "rebroadcast", payload)
        elif kind == "crash":
            self.crash(self.nodes[payload])
        elif kind == "restart":
            if self.nodes[payload].machine is None:
                self.boot(self.nodes[payload])
        elif kind == "partition":
            self.groups = payload
            self.trace.append(f"{self.now} partition {payload}")
        elif kind == "heal":
            self.groups = None
            self.trace.append(f"{self.now} heal")
        elif kind == "stabilise":
            self.stabilise()

    # Chaos

    def plan_chaos(self) -> None:
        scenario, n = self.scenario, self.scenario.validators
        if scenario.partitions and n > 1:
            for _ in range(self.rng.randint(0, 3)):
                start = self.rng.randrange(scenario.chaos_ms)
                members = list(range(n))
                self.rng.shuffle(members)
                cut = self.rng.randint(1, n - 1)
                self.at(start, "partition", [set(members[:cut]), set(members[cut:])])
                self.at(start + self.rng.randint(500, 4000), "heal", None)
        if scenario.crashes:
            for _ in range(self.rng.randint(0, 2)):
                victim = self.rng.randrange(n)
                start = self.rng.randrange(scenario.chaos_ms)
                self.at(start, "crash", victim)
                self.at(start + self.rng.randint(200, 5000), "restart", victim)

    def stabilise(self) -> None:
        """From now on: no loss, no partition, every validator up."""
        self.groups = None
        self.scenario = Scenario(
            **{
                **self.scenario.__dict__,
                "drop": 0.0,
                "duplicate": 0.0,
                "partitions": False,
                "crashes": False,
            }
        )
        for node in self.nodes:
            if node.machine is None:
                self.boot(node)
        self.stable_heights = {n.index: n.height for n in self.nodes}
        self.trace.append(f"{self.now} stabilise at heights {self.stable_heights}")

    def crash(self, node: SimNode) -> None:
        node.machine = node.host = node.ledger = None
        node.incarnation += 1
        node.sent = []
        self.trace.append(f"{self.now} crash v{node.index}")

    def boot(self, node: SimNode) -> None:
        """Start (or restart) a node from what its store holds, as a node process does."""
        node.incarnation += 1
        node.ledger = NodeLedger(
            self.genesis, node.store, Limits(), clock=lambda: GENESIS_TIME_MS + self.now
        )
        node.host = SimHost(self, node, node.ledger)
        restored = node.ledger.load_signing_record()
        node.machine = Consensus(
            CHAIN_ID,
            node.key,
            self.timeouts,
            restored=None if restored is None else decode_signing_record(restored),
            verify=self.verifier,
            quorum=self.quorum,
        )
        self.trace.append(f"{self.now} boot v{node.index} at height {node.next_height}")
        self.feed(node, self.start_event(node))

    def start_event(self, node: SimNode) -> StartHeight:
        """Return the StartHeight of a node's next height; its transactions come later."""
        assert node.ledger is not None
        node.sent = []
        self.at_node(BLOCK_INTERVAL_MS, node, TxsAvailable())
        return StartHeight(node.next_height, node.ledger.get_validator_set(), txs_available=False)

    # The network

    def connected(self, a: int, b: int) -> bool:
        return self.groups is None or any(a in g and b in g for g in self.groups)

    def send(self, source: SimNode, destination: int, message: Message) -> None:
        if not self.connected(source.index, destination):
            return
        if self.rng.random() < self.scenario.drop:
            return
        copies = 2 if self.rng.random() < self.scenario.duplicate else 1
        target = self.nodes[destination]
        for _ in range(copies):
            delay = self.rng.randint(1, self.scenario.max_delay_ms)
            self.at(self.now + delay, "deliver", (destination, message, target.incarnation))

    def broadcast(self, node: SimNode, message: Message) -> None:
        for other in self.nodes:
            if other.index != node.index:
                self.send(node, other.index, message)

    def sync(self, node: SimNode) -> None:
        """Block sync: fetch the decided block of our height from a peer that has it."""
        if node.machine is None:
            return
        ahead = [
            p
            for p in self.nodes
            if p.height >= node.next_height
            and self.connected(node.index, p.index)
            and p.machine is not None
        ]
        if not ahead:
            return
        peer = self.rng.choice(ahead)
        height = node.next_height
        block, certificate = peer.store.get_block(height), peer.store.get_certificate(height)
        assert block is not None and certificate is not None
        self.at_node(
            self.rng.randint(1, self.scenario.max_delay_ms),
            node,
            CertifiedBlockReceived(block, certificate),
        )

    # One node: the node's own dispatch and ledger host

    def feed(self, node: SimNode, event: Event) -> None:
        if node.machine is not None and node.host is not None:
            run_until_quiet(node.machine, node.host, event)

    def on_broadcast(self, node: SimNode, message: Message) -> None:
        node.sent.append(message)
        self.trace.append(f"{self.now} v{node.index} sends {describe(message)}")
        if node.byzantine:
            self.misbehave(node, message)
        else:
            self.broadcast(node, message)

    def is_timely(self) -> bool:
        """Tell whether a node finds a block timely: during the chaos, clocks may disagree."""
        disagree = self.now < self.scenario.chaos_ms and self.scenario.untimely > 0
        return not (disagree and self.rng.random() < self.scenario.untimely)

    def check_decision(self, node: SimNode, block: Block) -> None:
        """Refuse a commit at the wrong height, or one that differs from a correct node's."""
        height = node.next_height
        if block.height != height:
            raise SafetyViolation(
                self.report(f"v{node.index} committed height {block.height} while at {height}")
            )
        if node.byzantine:
            return
        decided = self.decisions.setdefault(height, block.hash)
        if decided != block.hash:
            raise SafetyViolation(
                self.report(
                    f"v{node.index} committed {block.hash.hex()[:12]} at height {height}, "
                    f"another correct validator committed {decided.hex()[:12]}"
                )
            )

    def on_commit(self, node: SimNode, block: Block) -> None:
        self.trace.append(f"{self.now} v{node.index} commits {block.height} {block.hash.hex()[:8]}")

    # Byzantine behaviour

    def misbehave(self, node: SimNode, message: Message) -> None:
        """Equivocate, propose invalid blocks, vote at random, stay silent, replay."""
        choice = self.rng.random()
        others = [o.index for o in self.nodes if o.index != node.index]
        if choice < 0.15:
            return  # silent
        if choice < 0.25 and node.sent:
            for _ in range(3):
                self.broadcast(node, self.rng.choice(node.sent))  # replays
        half = set(self.rng.sample(others, len(others) // 2))
        twin = self.conflicting(node, message)
        for destination in others:
            self.send(node, destination, twin if destination in half else message)

    def conflicting(self, node: SimNode, message: Message) -> Message:
        if isinstance(message, Proposal):
            block = self.twin_block(message.block, valid=self.rng.random() < 0.5)
            return sign_proposal(node.key, CHAIN_ID, message.height, message.round, block, -1)
        value = self.rng.choice([None, hashlib.sha256(self.rng.randbytes(8)).digest()])
        vote_type = self.rng.choice([PREVOTE, PRECOMMIT])
        return sign_vote(node.key, CHAIN_ID, vote_type, message.height, message.round, value)

    def twin_block(self, block: Block, valid: bool) -> Block:
        """Return another block for the same height: a later time (valid), or a wrong
        state root (invalid: every correct node's ledger refuses it)."""
        header = replace(block.header, time_ms=block.header.time_ms + self.rng.randint(1, 50))
        if not valid:
            header = replace(header, state_root=INVALID_MARK)
        return replace(block, header=header)

    # Reporting

    def report(self, problem: str) -> str:
        lines = [
            f"seed {self.seed}: {problem}",
            f"scenario {self.scenario}",
            "last messages and events:",
        ]
        return "\n".join(lines + list(self.trace))


def describe(message: Message) -> str:
    if isinstance(message, Proposal):
        return (
            f"proposal h{message.height} r{message.round} "
            f"{message.block_hash.hex()[:8]} vr{message.valid_round}"
        )
    assert isinstance(message, Vote)
    value = "nil" if message.block_hash is None else message.block_hash.hex()[:8]
    return f"{message.vote_type} h{message.height} r{message.round} {value}"
