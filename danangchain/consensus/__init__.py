"""Tendermint BFT consensus as a pure, deterministic state machine.

The algorithm is Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on BFT
consensus" (2018); CONSENSUS.md restates its rules. `Consensus.step(event)` takes one
event (a message, a timeout, a validation result, ...) and returns the actions the
caller must carry out in order: persist the signing record (before the next broadcast
leaves), broadcast, schedule a timeout, validate a block, build a proposal, commit. No
clock, socket or disk is touched here.

- `messages`: proposals and votes on the wire, and the durable signing record;
- `events`: what the machine is told and what it asks for, and the round timeouts;
- `machine`: the state machine itself.

This module is the package's public API: import from `danangchain.consensus`.
"""

from danangchain.consensus.events import (
    TIMEOUT_PRECOMMIT,
    TIMEOUT_PREVOTE,
    TIMEOUT_PROPOSE,
    Action,
    BlockValidated,
    Broadcast,
    CertifiedBlockReceived,
    CommitBlock,
    Event,
    EvidenceFound,
    MessageDropped,
    MessageReceived,
    PeerAhead,
    PersistSigning,
    ProposalBlockReady,
    RequestProposalBlock,
    ScheduleTimeout,
    StartHeight,
    TimeoutFired,
    Timeouts,
    TxsAvailable,
    ValidateBlock,
)
from danangchain.consensus.machine import Consensus
from danangchain.consensus.messages import (
    MAX_ROUND,
    STEP_PRECOMMIT,
    STEP_PREVOTE,
    STEP_PROPOSE,
    Message,
    Proposal,
    SigningRecord,
    Verify,
    decode_message,
    decode_signing_record,
    encode_message,
    encode_signing_record,
    is_signed_by_sender,
    sign_proposal,
)

__all__ = [
    "MAX_ROUND",
    "STEP_PRECOMMIT",
    "STEP_PREVOTE",
    "STEP_PROPOSE",
    "TIMEOUT_PRECOMMIT",
    "TIMEOUT_PREVOTE",
    "TIMEOUT_PROPOSE",
    "Action",
    "BlockValidated",
    "Broadcast",
    "CertifiedBlockReceived",
    "CommitBlock",
    "Consensus",
    "Event",
    "EvidenceFound",
    "Message",
    "MessageDropped",
    "MessageReceived",
    "PeerAhead",
    "PersistSigning",
    "Proposal",
    "ProposalBlockReady",
    "RequestProposalBlock",
    "ScheduleTimeout",
    "SigningRecord",
    "StartHeight",
    "TimeoutFired",
    "Timeouts",
    "TxsAvailable",
    "ValidateBlock",
    "Verify",
    "decode_message",
    "decode_signing_record",
    "encode_message",
    "encode_signing_record",
    "is_signed_by_sender",
    "sign_proposal",
]
