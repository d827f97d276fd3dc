"""The auditor's side of witnesses: a chain, or a proved block, must agree with at least K
pinned witnesses' cosigned checkpoints.

Validators' signatures alone cannot tell a history rewritten by a colluding majority
from the real one: both are signed. A witness that followed the real chain cosigned its
blocks, so a rewritten chain differs from the witness's checkpoint at every cosigned
height from the rewrite on.

- A chain (`ChainWitnessCheck`): while the auditor replays it, every block at a height a
  pinned witness cosigned must be the cosigned one; at least K witnesses must have a
  checkpoint the chain reaches, and the chain is witnessed up to the K-th highest of them.
- A proved block at height h (`check_witnessed_block`): the proof carries the headers from
  h + 1 up to the cosigned heights, each linked to the one before by its
  `previous_hash`, so a checkpoint at H >= h fixes the block at h; at least K pinned
  witnesses must cosign one of those heights.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from danangchain.audit import AuditFailure
from danangchain.block import Header, compute_header_hash
from danangchain.checkpoint import (
    Cosignature,
    check_cosignatures,
    decode_cosignature_json,
    encode_cosignature_json,
)
from danangchain.errors import DanangChainError, DecodeError
from danangchain.ledger import ChainTip
from danangchain.proof import decode_header_json, encode_header_json

MAX_LINK_HEADERS = 1000


class WitnessCheckFailed(DanangChainError):
    """A proved block that fewer than K pinned witnesses vouch for, or that one contradicts."""

    code = "witness_check_failed"


@dataclass(frozen=True, slots=True)
class WitnessRequirement:
    """The witnesses an auditor pins (by public key) and how many must agree."""

    witnesses: frozenset[bytes]
    minimum: int

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= len(self.witnesses):
            raise DecodeError(
                f"--min-witnesses {self.minimum} needs between 1 and the {len(self.witnesses)} "
                "pinned witnesses"
            )


@dataclass(frozen=True, slots=True)
class WitnessAgreement:
    """Which witnesses agreed, each at its highest agreeing height, and up to where K did."""

    agreeing: dict[bytes, int]
    witnessed_height: int

    def to_json(self) -> dict[str, Any]:
        """Return the agreement for a report."""
        return {
            "witnessed_height": self.witnessed_height,
            "witnesses": {key.hex(): height for key, height in sorted(self.agreeing.items())},
        }


def _kth_highest(heights: Iterable[int], minimum: int) -> int:
    ordered = sorted(heights, reverse=True)
    return ordered[minimum - 1] if len(ordered) >= minimum else 0


def _short(key: bytes) -> str:
    return key.hex()[:16]


class ChainWitnessCheck:
    """Compare each replayed block with the pinned witnesses' checkpoints of its height."""

    def __init__(
        self, chain_id: str, requirement: WitnessRequirement, cosignatures: Iterable[Cosignature]
    ) -> None:
        cosignatures = list(cosignatures)
        check_cosignatures(cosignatures, chain_id, requirement.witnesses)
        self.requirement = requirement
        self._by_height: dict[int, list[Cosignature]] = {}
        for cosignature in cosignatures:
            self._by_height.setdefault(cosignature.height, []).append(cosignature)
        self._agreeing: dict[bytes, int] = {}

    def observe(self, tip: ChainTip) -> None:
        """Check a replayed block against the checkpoints of its height; raise AuditFailure."""
        for cosignature in self._by_height.get(tip.height, ()):
            checkpoint = cosignature.checkpoint
            if (checkpoint.block_hash, checkpoint.state_root) != (tip.block_hash, tip.state_root):
                raise AuditFailure(tip.height, self._describe_disagreement(cosignature, tip))
            self._agreeing[cosignature.witness] = tip.height

    def _describe_disagreement(self, cosignature: Cosignature, tip: ChainTip) -> str:
        """Say where the chain left what a witness cosigned."""
        earlier = self._agreeing.get(cosignature.witness)
        since = (
            f"it agreed with that witness's checkpoint at height {earlier}"
            if earlier is not None
            else "no earlier checkpoint of that witness to agree with"
        )
        return (
            f"block {tip.height} ({tip.block_hash.hex()}) is not the block witness "
            f"{_short(cosignature.witness)} cosigned at this height "
            f"({cosignature.checkpoint.block_hash.hex()}): this chain is not the one the "
            f"witness followed ({since})"
        )

    def finish(self, tip: ChainTip) -> WitnessAgreement:
        """Return the agreement; raise AuditFailure if fewer than K witnesses agreed."""
        minimum = self.requirement.minimum
        if len(self._agreeing) < minimum:
            raise AuditFailure(
                tip.height,
                f"{len(self._agreeing)} of the pinned witnesses cosigned a block of this chain, "
                f"--min-witnesses is {minimum} (a witness whose checkpoints are all above "
                f"height {tip.height} cannot vouch for it)",
            )
        return WitnessAgreement(
            dict(self._agreeing), _kth_highest(self._agreeing.values(), minimum)
        )


# A proved block and the checkpoints above it


@dataclass(frozen=True, slots=True)
class ProofWitnesses:
    """What a proof file carries for witnesses: headers above the proved block and the
    cosignatures of some of them (or of the proved block itself)."""

    headers: tuple[Header, ...]
    cosignatures: tuple[Cosignature, ...]


def check_witnessed_block(
    header: Header,
    later_headers: Sequence[Header],
    cosignatures: Iterable[Cosignature],
    requirement: WitnessRequirement,
) -> WitnessAgreement:
    """Check that at least K pinned witnesses cosigned the block of `header`, or a block that
    the linked `later_headers` lead to from it; raise WitnessCheckFailed or InvalidCosignature.

    Cosignatures below the proved height, or above the last header carried, are not counted:
    nothing links them to the proved block."""
    cosignatures = list(cosignatures)
    check_cosignatures(cosignatures, header.chain_id, requirement.witnesses)
    linked = _link_headers(header, later_headers)
    agreeing: dict[bytes, int] = {}
    for cosignature in cosignatures:
        checkpoint = cosignature.checkpoint
        known = linked.get(checkpoint.height)
        if known is None:
            continue
        if (checkpoint.block_hash, checkpoint.state_root) != known:
            raise WitnessCheckFailed(
                f"witness {_short(cosignature.witness)} cosigned another block at height "
                f"{checkpoint.height} ({checkpoint.block_hash.hex()}): the proved block is not "
                "on the chain that witness followed"
            )
        agreeing[cosignature.witness] = max(agreeing.get(cosignature.witness, 0), checkpoint.height)
    if len(agreeing) < requirement.minimum:
        top = header.height + len(later_headers)
        raise WitnessCheckFailed(
            f"{len(agreeing)} pinned witnesses cosigned block {header.height} or a block linked "
            f"to it (heights {header.height}..{top}), --min-witnesses is {requirement.minimum}"
        )
    return WitnessAgreement(agreeing, _kth_highest(agreeing.values(), requirement.minimum))


def _link_headers(
    header: Header, later_headers: Sequence[Header]
) -> dict[int, tuple[bytes, bytes]]:
    """Return, by height, the block hash and state root each header fixes; refuse a gap."""
    if len(later_headers) > MAX_LINK_HEADERS:
        raise WitnessCheckFailed(f"a proof carries at most {MAX_LINK_HEADERS} linked headers")
    previous = header
    block_hash = compute_header_hash(header)
    linked = {header.height: (block_hash, header.state_root)}
    for later in later_headers:
        if later.chain_id != header.chain_id or later.height != previous.height + 1:
            raise WitnessCheckFailed(
                f"the linked header after height {previous.height} is of height {later.height} "
                f"of chain {later.chain_id!r}: the headers must follow the proved block in order"
            )
        if later.previous_hash != block_hash:
            raise WitnessCheckFailed(
                f"the linked header at height {later.height} does not follow block "
                f"{previous.height}: its previous hash is not that block's hash"
            )
        block_hash = compute_header_hash(later)
        linked[later.height] = (block_hash, later.state_root)
        previous = later
    return linked


def encode_proof_witnesses(witnesses: ProofWitnesses) -> dict[str, Any]:
    """Return the `witnesses` section of a proof file."""
    return {
        "headers": [encode_header_json(header) for header in witnesses.headers],
        "cosignatures": [encode_cosignature_json(c) for c in witnesses.cosignatures],
    }


def attach_proof_witnesses(proof_text: str, witnesses: ProofWitnesses) -> str:
    """Return a proof file's text with its `witnesses` section set."""
    document = json.loads(proof_text)
    document["witnesses"] = encode_proof_witnesses(witnesses)
    return json.dumps(document, indent=2) + "\n"


def decode_proof_witnesses(proof_text: str) -> ProofWitnesses:
    """Return the `witnesses` section of a proof file (empty if it has none)."""
    try:
        document = json.loads(proof_text)
        section = document.get("witnesses") if isinstance(document, dict) else None
        if section is None:
            return ProofWitnesses((), ())
        headers, cosignatures = section["headers"], section["cosignatures"]
        if not isinstance(headers, list) or not isinstance(cosignatures, list):
            raise DecodeError("witnesses: headers and cosignatures must be lists")
        if len(headers) > MAX_LINK_HEADERS:
            raise DecodeError(f"witnesses: at most {MAX_LINK_HEADERS} headers")
        return ProofWitnesses(
            tuple(decode_header_json(fields) for fields in headers),
            tuple(decode_cosignature_json(fields) for fields in cosignatures),
        )
    except DanangChainError as exc:
        raise DecodeError(f"proof witnesses: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise DecodeError(f"proof witnesses: malformed section ({exc!r})") from None
