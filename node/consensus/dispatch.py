"""The one dispatch of the consensus machine's actions, shared by the node's driver and
the seeded simulation, so every simulated seed runs the code the nodes run.

A host carries out each kind of action; `carry_out` routes an action to it (exhaustively:
mypy refuses a new action kind that is not handled), and `run_until_quiet` feeds the
machine one event and then every event its actions lead to, in order.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol, assert_never

from danangchain.consensus import (
    Action,
    Broadcast,
    CommitBlock,
    Consensus,
    Event,
    EvidenceFound,
    MessageDropped,
    PeerAhead,
    PersistSigning,
    RequestProposalBlock,
    ScheduleTimeout,
    ValidateBlock,
)


class ConsensusHost(Protocol):
    """What carries out the machine's actions: the node's driver, or a simulated node."""

    def persist_signing(self, action: PersistSigning) -> None:
        """Make what is about to be signed durable, before the message leaves."""
        ...

    def broadcast(self, action: Broadcast) -> None:
        """Send a signed proposal or vote to the other validators."""
        ...

    def schedule_timeout(self, action: ScheduleTimeout) -> None:
        """Arrange for a TimeoutFired event after the action's delay."""
        ...

    def propose_block(self, action: RequestProposalBlock) -> Event | None:
        """Build this validator's block; return ProposalBlockReady (None: none yet)."""
        ...

    def validate_block(self, action: ValidateBlock) -> Event:
        """Validate a proposed or synced block; return BlockValidated."""
        ...

    def commit_block(self, action: CommitBlock) -> Event | None:
        """Commit a certified block; return the StartHeight of the next height."""
        ...

    def keep_evidence(self, action: EvidenceFound) -> None:
        """Keep two conflicting signed messages of one validator."""
        ...

    def note_dropped(self, action: MessageDropped) -> None:
        """Count a message the machine refused, by reason."""
        ...

    def note_peer_ahead(self, action: PeerAhead) -> None:
        """Take note that some peer is at a later height (start syncing)."""
        ...


def carry_out(host: ConsensusHost, action: Action) -> Event | None:
    """Carry out one action; return the event it leads to, if any."""
    match action:
        case PersistSigning():
            host.persist_signing(action)
        case Broadcast():
            host.broadcast(action)
        case ScheduleTimeout():
            host.schedule_timeout(action)
        case RequestProposalBlock():
            return host.propose_block(action)
        case ValidateBlock():
            return host.validate_block(action)
        case CommitBlock():
            return host.commit_block(action)
        case EvidenceFound():
            host.keep_evidence(action)
        case MessageDropped():
            host.note_dropped(action)
        case PeerAhead():
            host.note_peer_ahead(action)
        case _:
            assert_never(action)
    return None


def run_until_quiet(machine: Consensus, host: ConsensusHost, event: Event) -> None:
    """Step the machine with an event and with every event its actions lead to."""
    pending: deque[Event] = deque([event])
    while pending:
        for action in machine.step(pending.popleft()):
            follow_up = carry_out(host, action)
            if follow_up is not None:
                pending.append(follow_up)
