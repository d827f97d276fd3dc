"""Witness checkpoints: a body outside the validator set cosigns a block it checked.

A checkpoint names one block of one chain: chain id, height, block hash and the state
root after it. A witness signs it in its own domain (`DOMAIN_CHECKPOINT`), so the
cosignature can be checked anywhere, on chain or off, with the witness's public key
alone. A witness never signs two different checkpoints for one height: `CheckpointBook`
holds what it signed and refuses a second one, and `find_contradiction` tells when a
certified block contradicts one it signed (evidence that the validators signed two
blocks for one height). On chain, a checkpoint is a transaction of a member with the
role `witness` (`process_checkpoint`), one per height and in increasing heights.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from danangchain import ed25519
from danangchain.block import Header, compute_header_hash
from danangchain.encoding import pack, unpack
from danangchain.errors import DanangChainError, DecodeError, InvalidTransaction
from danangchain.signing import compute_checkpoint_signing_bytes
from danangchain.state import Member, StateView, witness_checkpoint_key
from danangchain.transaction import MAX_CHAIN_ID_SIZE, ROLE_WITNESS, CheckpointBody
from danangchain.validators import CommitCertificate, ValidatorSet, verify_certificate

CHECKPOINTS_FORMAT = "danangchain/checkpoints"
CHECKPOINTS_VERSION = 1
MAX_CHECKPOINTS_FILE = 16 * 1024 * 1024
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


class InvalidCosignature(DanangChainError):
    """A cosigned checkpoint that cannot be used: malformed, of another chain, signed by a
    key that is not a pinned witness, or with a signature that does not verify."""

    code = "invalid_cosignature"


class ConflictingCheckpoint(DanangChainError):
    """A second, different checkpoint for a height the witness already signed."""

    code = "conflicting_checkpoint"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One block of one chain as a witness saw it, checked."""

    chain_id: str
    height: int
    block_hash: bytes
    state_root: bytes


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A checkpoint and a witness's signature of it."""

    checkpoint: Checkpoint
    witness: bytes
    signature: bytes

    @property
    def height(self) -> int:
        """Return the height of the cosigned block."""
        return self.checkpoint.height


def compute_signing_bytes(checkpoint: Checkpoint) -> bytes:
    """Return the bytes a witness signs for a checkpoint."""
    return compute_checkpoint_signing_bytes(
        checkpoint.chain_id, checkpoint.height, checkpoint.block_hash, checkpoint.state_root
    )


def sign_checkpoint(key: ed25519.SigningKey, checkpoint: Checkpoint) -> Cosignature:
    """Cosign a checkpoint with a witness's key."""
    signature = ed25519.sign(key, compute_signing_bytes(checkpoint))
    return Cosignature(checkpoint, key.public_key, signature)


def is_valid_cosignature(cosignature: Cosignature) -> bool:
    """Tell whether the signature is the witness's, over exactly this checkpoint."""
    message = compute_signing_bytes(cosignature.checkpoint)
    return ed25519.is_valid_signature(cosignature.witness, message, cosignature.signature)


def check_cosignatures(
    cosignatures: Iterable[Cosignature], chain_id: str, pinned: frozenset[bytes]
) -> None:
    """Refuse a cosignature of another chain, by a key not pinned, or that does not verify."""
    for cosignature in cosignatures:
        checkpoint = cosignature.checkpoint
        where = f"the checkpoint at height {checkpoint.height}"
        if checkpoint.chain_id != chain_id:
            raise InvalidCosignature(
                f"{where} is of chain {checkpoint.chain_id!r}, not {chain_id!r}"
            )
        if cosignature.witness not in pinned:
            raise InvalidCosignature(
                f"{where} is signed by {cosignature.witness.hex()}, which is not a pinned "
                "witness (pin it with --witness PUBKEY[@URL])"
            )
        if not is_valid_cosignature(cosignature):
            raise InvalidCosignature(
                f"{where} by witness {cosignature.witness.hex()[:16]}: the signature does "
                "not verify"
            )


# What one witness signed


class CheckpointBook:
    """The checkpoints one witness signed, by height; it never signs two for one height."""

    def __init__(self, witness: bytes, chain_id: str) -> None:
        self.witness = witness
        self.chain_id = chain_id
        self._by_height: dict[int, Cosignature] = {}
        self._heights: list[int] = []  # sorted
        self.latest: Cosignature | None = None

    def __len__(self) -> int:
        return len(self._heights)

    def get(self, height: int) -> Cosignature | None:
        """Return the cosignature of a height, if the witness signed one."""
        return self._by_height.get(height)

    def list_from(self, height: int, limit: int) -> list[Cosignature]:
        """Return up to `limit` cosignatures at or above `height`, in height order."""
        start = bisect.bisect_left(self._heights, height)
        return [self._by_height[h] for h in self._heights[start : start + limit]]

    def add(self, cosignature: Cosignature) -> None:
        """Take a cosignature (read back from the witness's log); refuse a conflicting one."""
        if cosignature.witness != self.witness or cosignature.checkpoint.chain_id != (
            self.chain_id
        ):
            raise ConflictingCheckpoint(
                f"the checkpoint at height {cosignature.height} was signed by another "
                "witness key or for another chain"
            )
        existing = self._by_height.get(cosignature.height)
        if existing is not None:
            if existing.checkpoint != cosignature.checkpoint:
                raise ConflictingCheckpoint(
                    f"two different checkpoints are signed for height {cosignature.height}"
                )
            return
        self._by_height[cosignature.height] = cosignature
        bisect.insort(self._heights, cosignature.height)
        if self.latest is None or cosignature.height > self.latest.height:
            self.latest = cosignature

    def sign(
        self,
        key: ed25519.SigningKey,
        checkpoint: Checkpoint,
        persist: Callable[[Cosignature], None] = lambda cosignature: None,
    ) -> tuple[Cosignature, bool]:
        """Return the cosignature of a checkpoint and whether it is new; the one signed
        before for the same checkpoint is returned again, a different one refused.

        A new one is handed to `persist` (which must make it durable) before the book
        holds it, so nothing the book shows can be lost by a crash."""
        existing = self._by_height.get(checkpoint.height)
        if existing is not None:
            if existing.checkpoint != checkpoint:
                raise ConflictingCheckpoint(
                    f"height {checkpoint.height} was already cosigned for block "
                    f"{existing.checkpoint.block_hash.hex()}, not {checkpoint.block_hash.hex()}"
                )
            return existing, False
        if key.public_key != self.witness or checkpoint.chain_id != self.chain_id:
            raise ConflictingCheckpoint("the signing key or the chain is not this witness's")
        cosignature = sign_checkpoint(key, checkpoint)
        persist(cosignature)
        self.add(cosignature)
        return cosignature, True

    def find_contradiction(self, height: int, block_hash: bytes) -> Cosignature | None:
        """Return the cosignature a block at `height` contradicts, if any."""
        existing = self._by_height.get(height)
        if existing is not None and existing.checkpoint.block_hash != block_hash:
            return existing
        return None


def check_conflicting_block(
    cosignature: Cosignature,
    header: Header,
    certificate: CommitCertificate,
    validator_set: ValidatorSet,
) -> None:
    """Check a block contradicts a cosigned checkpoint and more than 2/3 of the validators
    of its height signed it: together they are evidence of two blocks for one height."""
    checkpoint = cosignature.checkpoint
    block_hash = compute_header_hash(header)
    if header.height != checkpoint.height or header.chain_id != checkpoint.chain_id:
        raise DecodeError("the block is not of the cosigned chain and height")
    if block_hash == checkpoint.block_hash:
        raise DecodeError("the block is the cosigned one")
    verify_certificate(certificate, header.chain_id, header.height, block_hash, validator_set)


# On chain: a witness's checkpoint transaction


def make_checkpoint_body(cosignature: Cosignature) -> CheckpointBody:
    """Return the transaction body that puts a cosignature on chain."""
    checkpoint = cosignature.checkpoint
    return CheckpointBody(
        checkpoint.height, checkpoint.block_hash, checkpoint.state_root, cosignature.signature
    )


def process_checkpoint(
    view: StateView,
    chain_id: str,
    witness_key: bytes,
    address: bytes,
    member: Member,
    body: CheckpointBody,
    height: int,
) -> None:
    """Record a witness's checkpoint of an earlier block: only a witness, its signature in
    the checkpoint domain, one per height and in increasing heights."""
    # Verify the sender is a witness and the checkpoint is of a block already committed.
    if member.role != ROLE_WITNESS:
        raise InvalidTransaction.of(
            "only a member with the role witness may submit checkpoints, sender is a {role}",
            rule="not_witness",
            role=member.role,
        )
    if body.height >= height:
        raise InvalidTransaction.of(
            "a checkpoint is of a committed block: height {checkpoint} is not below {height}",
            rule="bad_checkpoint",
            checkpoint=body.height,
            height=height,
        )
    cosignature = Cosignature(
        Checkpoint(chain_id, body.height, body.block_hash, body.state_root),
        witness_key,
        body.signature,
    )
    if not is_valid_cosignature(cosignature):
        raise InvalidTransaction.of(
            "the checkpoint's signature does not verify for the sender's key",
            rule="bad_checkpoint",
        )
    # Verify the witness goes up: one checkpoint per height, never a second one.
    key = witness_checkpoint_key(address)
    stored = view.get(key)
    if stored is not None:
        last_height = int(unpack(stored)[0])
        if body.height <= last_height:
            raise InvalidTransaction.of(
                "this witness already submitted a checkpoint at height {last}: checkpoints go up",
                rule="checkpoint_not_newer",
                last=last_height,
            )
    view.put(key, pack([body.height, body.block_hash]))


# JSON: the witness's API, checkpoint files and proof files


def encode_cosignature_json(cosignature: Cosignature) -> dict[str, Any]:
    """Return a cosignature's JSON fields, bytes as hex."""
    checkpoint = cosignature.checkpoint
    return {
        "chain_id": checkpoint.chain_id,
        "height": checkpoint.height,
        "block_hash": checkpoint.block_hash.hex(),
        "state_root": checkpoint.state_root.hex(),
        "witness": cosignature.witness.hex(),
        "signature": cosignature.signature.hex(),
    }


def decode_cosignature_json(fields: Any) -> Cosignature:
    """Build a cosignature from its JSON fields; raise DecodeError if malformed."""
    if not isinstance(fields, dict):
        raise DecodeError("a checkpoint must be a JSON object")
    try:
        chain_id, height = fields["chain_id"], fields["height"]
        if not isinstance(chain_id, str) or not 0 < len(chain_id) <= MAX_CHAIN_ID_SIZE:
            raise DecodeError("checkpoint chain_id: expected a chain id")
        if not isinstance(height, int) or isinstance(height, bool) or height < 1:
            raise DecodeError("checkpoint height: expected a positive integer")
        checkpoint = Checkpoint(
            chain_id,
            height,
            _hex(fields["block_hash"], "block_hash", 32),
            _hex(fields["state_root"], "state_root", 32),
        )
        return Cosignature(
            checkpoint,
            _hex(fields["witness"], "witness", ed25519.PUBLIC_KEY_SIZE),
            _hex(fields["signature"], "signature", ed25519.SIGNATURE_SIZE),
        )
    except KeyError as exc:
        raise DecodeError(f"a checkpoint lacks the field {exc.args[0]!r}") from None


def encode_checkpoints_file(cosignatures: Iterable[Cosignature]) -> str:
    """Return the text of a saved set of cosigned checkpoints (`--checkpoints FILE`)."""
    document = {
        "format": CHECKPOINTS_FORMAT,
        "version": CHECKPOINTS_VERSION,
        "checkpoints": [encode_cosignature_json(c) for c in cosignatures],
    }
    return json.dumps(document, indent=2) + "\n"


def decode_checkpoints_file(text: str) -> list[Cosignature]:
    """Parse a saved set of cosigned checkpoints; raise DecodeError if malformed."""
    if len(text) > MAX_CHECKPOINTS_FILE:
        raise DecodeError(f"a checkpoints file is at most {MAX_CHECKPOINTS_FILE} bytes")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != CHECKPOINTS_FORMAT:
        raise DecodeError("not a DanangChain checkpoints file")
    if document.get("version") != CHECKPOINTS_VERSION:
        raise DecodeError(f"checkpoints file version {document.get('version')!r} is not supported")
    items = document.get("checkpoints")
    if not isinstance(items, list):
        raise DecodeError("checkpoints: expected a list")
    return [decode_cosignature_json(item) for item in items]


def _hex(value: Any, what: str, size: int) -> bytes:
    """Parse lowercase hex of an exact size."""
    if not isinstance(value, str) or _HEX.fullmatch(value) is None or len(value) != 2 * size:
        raise DecodeError(f"checkpoint {what}: expected {2 * size} lowercase hex digits")
    return bytes.fromhex(value)
