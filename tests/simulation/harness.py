"""A seeded, simulated network for the pure consensus machine.

Many validators run in one process. The network delays, drops, duplicates and reorders
messages, partitions and heals; validators crash and restart keeping only what they
persisted (the signing record and their committed blocks); up to f of them are Byzantine.
Everything random comes from one seed, so a failing run is reproduced from its seed alone.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from danangchain import ed25519
from danangchain.block import Block, Header
from danangchain.consensus import (
    BlockValidated,
    Broadcast,
    CertifiedBlockReceived,
    CommitBlock,
    Consensus,
    EvidenceFound,
    Message,
    MessageDropped,
    MessageReceived,
    PeerAhead,
    PersistSigning,
    Proposal,
    ProposalBlockReady,
    RequestProposalBlock,
    ScheduleTimeout,
    SigningRecord,
    StartHeight,
    TimeoutFired,
    Timeouts,
    TxsAvailable,
    ValidateBlock,
    sign_proposal,
)
from danangchain.validators import (
    PRECOMMIT,
    PREVOTE,
    CommitCertificate,
    Validator,
    ValidatorSet,
    Vote,
    sign_vote,
)

CHAIN_ID = "sim"
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
    """One validator: its machine (None while crashed) and what survives a crash."""

    index: int
    key: ed25519.SigningKey
    byzantine: bool
    machine: Consensus | None = None
    persisted: SigningRecord | None = None
    committed: list[Block] = field(default_factory=list)
    certificates: list[CommitCertificate] = field(default_factory=list)
    sent: list[Message] = field(default_factory=list)
    incarnation: int = 0

    @property
    def next_height(self) -> int:
        return len(self.committed) + 1


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
        self.validator_set = ValidatorSet.of(
            [Validator(k.public_key, f"v{i}") for i, k in enumerate(keys)]
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
        return all(
            len(n.committed) >= self.stable_heights[n.index] + target for n in self.correct()
        )

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
        self.stable_heights = {n.index: len(n.committed) for n in self.nodes}
        self.trace.append(f"{self.now} stabilise at heights {self.stable_heights}")

    def crash(self, node: SimNode) -> None:
        node.machine = None
        node.incarnation += 1
        node.sent = []
        self.trace.append(f"{self.now} crash v{node.index}")

    def boot(self, node: SimNode) -> None:
        node.incarnation += 1
        node.machine = Consensus(
            CHAIN_ID,
            node.key,
            self.timeouts,
            restored=node.persisted,
            verify=self.verifier,
            quorum=self.quorum,
        )
        self.trace.append(f"{self.now} boot v{node.index} at height {node.next_height}")
        self.start_height(node)

    def start_height(self, node: SimNode) -> None:
        node.sent = []
        self.feed(node, StartHeight(node.next_height, self.validator_set, txs_available=False))
        self.at(
            self.now + BLOCK_INTERVAL_MS, "event", (node.index, node.incarnation, TxsAvailable())
        )

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
            if len(p.committed) >= node.next_height
            and self.connected(node.index, p.index)
            and p.machine is not None
        ]
        if not ahead:
            return
        peer = self.rng.choice(ahead)
        height = node.next_height
        event = CertifiedBlockReceived(peer.committed[height - 1], peer.certificates[height - 1])
        self.at(
            self.now + self.rng.randint(1, self.scenario.max_delay_ms),
            "event",
            (node.index, node.incarnation, event),
        )

    # One node's machine

    def feed(self, node: SimNode, first_event: Any) -> None:
        pending = deque([first_event])
        while pending and node.machine is not None:
            event = pending.popleft()
            for action in node.machine.step(event):
                follow_up = self.carry_out(node, action)
                if follow_up is not None:
                    pending.append(follow_up)

    def carry_out(self, node: SimNode, action: Any) -> Any:
        if isinstance(action, PersistSigning):
            node.persisted = action.record
        elif isinstance(action, Broadcast):
            node.sent.append(action.message)
            self.trace.append(f"{self.now} v{node.index} sends {describe(action.message)}")
            if node.byzantine:
                self.misbehave(node, action.message)
            else:
                self.broadcast(node, action.message)
        elif isinstance(action, ScheduleTimeout):
            event = TimeoutFired(action.kind, action.height, action.round)
            self.at(self.now + action.delay_ms, "event", (node.index, node.incarnation, event))
        elif isinstance(action, RequestProposalBlock):
            return ProposalBlockReady(
                action.height, action.round, self.make_block(node, action.height, action.round)
            )
        elif isinstance(action, ValidateBlock):
            disagree = self.now < self.scenario.chaos_ms and self.scenario.untimely > 0
            timely = not (disagree and self.rng.random() < self.scenario.untimely)
            return BlockValidated(action.block.hash, self.is_valid(node, action.block), timely)
        elif isinstance(action, CommitBlock):
            self.commit(node, action.block, action.certificate)
            return None
        elif isinstance(action, EvidenceFound):
            self.count("evidence")
        elif isinstance(action, MessageDropped):
            self.count(f"dropped: {action.reason}")
        elif isinstance(action, PeerAhead):
            self.count("peer ahead")
        return None

    def make_block(self, node: SimNode, height: int, round_: int, valid: bool = True) -> Block:
        previous = node.committed[-1].hash if node.committed else bytes(32)
        payload = hashlib.sha256(
            f"{self.seed}/{node.index}/{height}/{round_}/{self.rng.random()}".encode()
        ).digest()
        header = Header(
            CHAIN_ID,
            height,
            self.now + 1,
            previous,
            payload,
            0,
            bytes(32) if valid else INVALID_MARK,
            bytes(32),
            bytes(32),
            node.key.public_key,
            bytes(32),
        )
        return Block(header, (), None, ())

    def is_valid(self, node: SimNode, block: Block) -> bool:
        previous = node.committed[-1].hash if node.committed else bytes(32)
        return (
            block.header.state_root != INVALID_MARK
            and block.height == node.next_height
            and block.header.previous_hash == previous
        )

    def commit(self, node: SimNode, block: Block, certificate: CommitCertificate) -> None:
        height = node.next_height
        if block.height != height:
            raise SafetyViolation(
                self.report(f"v{node.index} committed height {block.height} while at {height}")
            )
        if not node.byzantine:
            decided = self.decisions.setdefault(height, block.hash)
            if decided != block.hash:
                raise SafetyViolation(
                    self.report(
                        f"v{node.index} committed {block.hash.hex()[:12]} at height {height}, "
                        f"another correct validator committed {decided.hex()[:12]}"
                    )
                )
            if not self.is_valid(node, block):
                raise SafetyViolation(self.report(f"v{node.index} committed an invalid block"))
        node.committed.append(block)
        node.certificates.append(certificate)
        self.trace.append(f"{self.now} v{node.index} commits {height} {block.hash.hex()[:8]}")
        self.start_height(node)

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
            block = self.make_block(
                node, message.height, message.round, valid=self.rng.random() < 0.5
            )
            return sign_proposal(node.key, CHAIN_ID, message.height, message.round, block, -1)
        value = self.rng.choice([None, hashlib.sha256(self.rng.randbytes(8)).digest()])
        vote_type = self.rng.choice([PREVOTE, PRECOMMIT])
        return sign_vote(node.key, CHAIN_ID, vote_type, message.height, message.round, value)

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
