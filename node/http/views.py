"""JSON renderings of ledger values for the client API: bytes as hex, addresses as dn1..."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

from danangchain import ed25519
from danangchain.address import compute_address, encode_address
from danangchain.block import Block, Header
from danangchain.consensus import decode_message
from danangchain.encoding import expect_list, unpack
from danangchain.errors import DecodeError
from danangchain.proof import encode_certificate_json, encode_header_json
from danangchain.registry import NodeCard, NodeEntry
from danangchain.signing import compute_vote_signing_bytes
from danangchain.state import Member, Record, StateView, key_binding_key
from danangchain.transaction import (
    AnchorBody,
    AuditKeysBody,
    CheckpointBody,
    EndorseBody,
    EraseBody,
    MemberAdmitBody,
    NodeAdmitBody,
    NodeAnnounceBody,
    NodeRemoveBody,
    RecordBody,
    SealedRecordBody,
    Transaction,
    ValidatorVoteBody,
    compute_tx_id,
    encode_transaction,
)
from danangchain.validators import (
    CommitCertificate,
    Validator,
    ValidatorSet,
    Vote,
)
from node.chain.access_log import AccessEntry


@functools.lru_cache(maxsize=4096)
def compute_address_text(public_key: bytes) -> str:
    """Return a key's dn1... address; cached: rendering blocks repeats the same senders and
    bech32 in pure Python was a tenth of a node's CPU while a client followed blocks."""
    return encode_address(compute_address(public_key))


def _address_or_none(address: bytes | None) -> str | None:
    return None if address is None else encode_address(address)


def _hex_or_none(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


# The fields of a record that are a member's personal data: only the parties and auditors
# read them (danangchain/read_access.py); everyone sees the rest.
PRIVATE_RECORD_FIELDS = ("amount", "counterparty", "doc_hash", "memo")
# A sealed record holds no amount or memo; its counterparty and commitments are withheld.
PRIVATE_SEALED_FIELDS = ("content_hash", "counterparty", "doc_commitment")


def render_body(tx: Transaction, public: bool = False) -> dict[str, Any]:
    """Render a transaction body's fields; `public`: a record's without its private ones."""
    body = tx.body
    if isinstance(body, RecordBody | SealedRecordBody) and public:
        withheld = PRIVATE_RECORD_FIELDS if isinstance(body, RecordBody) else PRIVATE_SEALED_FIELDS
        return {
            "category": body.category,
            "reference": _hex_or_none(body.reference),
            "reference_kind": body.reference_kind,
            "withheld": list(withheld),
        }
    if isinstance(body, RecordBody):
        return {
            "category": body.category,
            "doc_hash": _hex_or_none(body.doc_hash),
            "amount": body.amount,
            "counterparty": _address_or_none(body.counterparty),
            "memo": body.memo,
            "reference": _hex_or_none(body.reference),
            "reference_kind": body.reference_kind,
        }
    if isinstance(body, EndorseBody):
        return {"record_id": body.record_id.hex()}
    if isinstance(body, MemberAdmitBody):
        admit = {
            "address": encode_address(body.address),
            "role": body.role,
            "public_key": _hex_or_none(body.public_key),
        }
        if body.encryption_key is None:
            return admit
        return admit | {"encryption_key": body.encryption_key.hex()}
    if isinstance(body, ValidatorVoteBody):
        vote = {
            "action": body.action,
            "public_key": body.public_key.hex(),
            "name": body.name,
            "power": body.power,
        }
        return vote if body.card is None else vote | {"card": render_card(body.card)}
    if isinstance(body, NodeAdmitBody):
        return {"card": render_card(body.card)}
    if isinstance(body, NodeRemoveBody):
        return {"public_key": body.public_key.hex()}
    if isinstance(body, NodeAnnounceBody):
        return {
            "p2p_urls": list(body.p2p_urls),
            "tls_certificate_sha256": render_certificate_digest(body.tls_certificate),
        }
    if isinstance(body, AnchorBody):
        return render_anchor(body)
    if isinstance(body, CheckpointBody):
        return {
            "height": body.height,
            "block_hash": body.block_hash.hex(),
            "state_root": body.state_root.hex(),
            "signature": body.signature.hex(),
        }
    if isinstance(body, SealedRecordBody):
        # The amount and memo are sealed off the block: only commitments are here.
        return {
            "category": body.category,
            "doc_commitment": _hex_or_none(body.doc_commitment),
            "content_hash": body.content_hash.hex(),
            "counterparty": _address_or_none(body.counterparty),
            "reference": _hex_or_none(body.reference),
            "reference_kind": body.reference_kind,
        }
    if isinstance(body, EraseBody):
        return {"record_id": body.record_id.hex()}
    if isinstance(body, AuditKeysBody):
        return {"keys": [key.hex() for key in body.keys]}
    return {"address": encode_address(body.address)}


def render_anchor(body: AnchorBody) -> dict[str, Any]:
    """Render an anchor: the dataset's (or window's) name, root and size."""
    return {
        "name": body.name,
        "category": body.category,
        "root": body.root.hex(),
        "file_count": body.file_count,
        "total_bytes": body.total_bytes,
        "window_start_ms": body.window_start_ms,
        "window_end_ms": body.window_end_ms,
    }


def render_certificate_digest(certificate: bytes | None) -> str | None:
    """Return the SHA-256 of a PEM certificate's bytes: how a page names a certificate."""
    return None if certificate is None else hashlib.sha256(certificate).hexdigest()


def render_card(card: NodeCard) -> dict[str, Any]:
    """Render a node card (its certificate by its digest)."""
    return {
        "name": card.name,
        "public_key": card.public_key.hex(),
        "p2p_urls": list(card.p2p_urls),
        "tls_certificate_sha256": render_certificate_digest(card.tls_certificate),
    }


def render_node(public_key: bytes, entry: NodeEntry) -> dict[str, Any]:
    """Render one registry entry, as GET /nodes lists it."""
    return {
        "name": entry.name,
        "public_key": public_key.hex(),
        "address": compute_address_text(public_key),
        "role": entry.role,
        "p2p_urls": list(entry.p2p_urls),
        "tls_certificate_sha256": render_certificate_digest(entry.tls_certificate),
        "since_height": entry.since_height,
    }


def render_transaction(
    tx: Transaction, tx_id: bytes | None, view: StateView, public: bool = False
) -> dict[str, Any]:
    """Render a signed transaction; `sender` is the member it signs for (after a key
    rotation not the key's own address, which is `key_address`), resolved in `view`.
    Key bindings are never undone, so the committed state answers for every old block.
    `public`: a record's private fields are withheld."""
    if tx_id is None:
        tx_id = compute_tx_id(encode_transaction(tx))
    key_address = compute_address_text(tx.sender)
    bound = view.get(key_binding_key(compute_address(tx.sender)))
    return {
        "tx_id": tx_id.hex(),
        "chain_id": tx.chain_id,
        "kind": tx.kind,
        "sender": key_address if bound is None else encode_address(bound),
        "key_address": key_address,
        "sender_public_key": tx.sender.hex(),
        "nonce": tx.nonce,
        "body": render_body(tx, public),
        "signature": tx.signature.hex(),
    }


def render_header(header: Header) -> dict[str, Any]:
    """Render a block header."""
    return encode_header_json(header)


def render_certificate(cert: CommitCertificate | None) -> dict[str, Any] | None:
    """Render a commit certificate."""
    return None if cert is None else encode_certificate_json(cert)


def render_block(
    block: Block,
    certificate: CommitCertificate | None,
    view: StateView,
    is_shown: Callable[[Transaction], bool] = lambda tx: False,
) -> dict[str, Any]:
    """Render a block with its transactions and, when known, its own certificate; the
    private fields of each record are withheld unless `is_shown` says the reader may see
    them."""
    txs = [
        render_transaction(tx, compute_tx_id(raw), view, public=not is_shown(tx))
        for tx, raw in zip(block.transactions, block.tx_bytes, strict=True)
    ]
    return {
        "hash": block.hash.hex(),
        "height": block.height,
        "header": render_header(block.header),
        "tx_count": len(txs),
        "txs": txs,
        "last_commit": render_certificate(block.last_commit),
        "certificate": render_certificate(certificate),
    }


def render_validator(validator: Validator) -> dict[str, Any]:
    """Render one validator of a set."""
    return {
        "public_key": validator.public_key.hex(),
        "address": encode_address(compute_address(validator.public_key)),
        "name": validator.name,
        "power": validator.power,
    }


def render_pending_vote(value: bytes, current: ValidatorSet) -> dict[str, Any]:
    """Render the votes cast so far for one validator change."""
    action, public_key, name, power, voters = unpack(value)
    return {
        "action": action,
        "public_key": public_key.hex(),
        "name": name,
        "power": power,
        "voters": [v.hex() for v in voters],
        "power_voted": sum(current.power_of(v) for v in voters),
        "power_needed": current.quorum,
    }


def render_member(address: bytes, member: Member, pending: Member | None) -> dict[str, Any]:
    """Render an account: its role, nonces and revocation."""
    next_nonce = (pending or member).nonce + 1
    return {
        "address": encode_address(address),
        "role": member.role,
        "nonce": member.nonce,
        "next_nonce": next_nonce,
        "pending_txs": next_nonce - member.nonce - 1,
        "revoked": member.revoked,
        "admitted_height": member.admitted_height,
        "revoked_height": member.revoked_height,
    }


def render_key(
    public_key: bytes, address: bytes, chain_id: str, member: Member | None, pending: Member | None
) -> dict[str, Any]:
    """Render what a key signs for, with what a client needs to sign its next transaction:
    the chain id and, for a member, its role, revocation and next nonce (pending counted)."""
    answer: dict[str, Any] = {
        "public_key": public_key.hex(),
        "address": encode_address(address),
        "chain_id": chain_id,
        "member": member is not None,
    }
    if member is not None:
        account = render_member(address, member, pending)
        answer.update(
            role=account["role"], revoked=account["revoked"], next_nonce=account["next_nonce"]
        )
    return answer


def render_record(
    record_id: bytes,
    record: Record,
    amended_by: list[bytes] | tuple[bytes, ...] = (),
    envelope: bytes | None = None,
) -> dict[str, Any]:
    """Render a committed record: its endorsement, cancellation and amendments; a sealed
    record also has `sealed`: its content hash, erasure and the encrypted content this
    node holds (hex; null once erased or if it never reached this node)."""
    rendered = {
        "record_id": record_id.hex(),
        "creator": encode_address(record.creator),
        "category": record.category,
        "doc_hash": _hex_or_none(record.doc_hash),
        "amount": record.amount,
        "counterparty": _address_or_none(record.counterparty),
        "memo": record.memo,
        "reference": _hex_or_none(record.reference),
        "reference_kind": record.reference_kind,
        "height": record.height,
        "endorsed": record.endorsed_height is not None,
        "endorsed_height": record.endorsed_height,
        "cancelled": record.cancelled_height is not None,
        "cancelled_height": record.cancelled_height,
        "amended_by": [amendment.hex() for amendment in amended_by],
    }
    if record.content_hash is None:
        return rendered
    erased = record.erased_height is not None
    return rendered | {
        "sealed": {
            "content_hash": record.content_hash.hex(),
            "erased": erased,
            "erased_height": record.erased_height,
            "envelope": None if erased or envelope is None else envelope.hex(),
        }
    }


def render_evidence(encoded: bytes, chain_id: str) -> dict[str, Any]:
    """Render kept evidence: two conflicting votes one validator signed, each with its
    signature and whether that signature verifies (anyone can check it again)."""
    first, second = (decode_message(item) for item in expect_list(unpack(encoded), 2, "evidence"))
    if not isinstance(first, Vote) or not isinstance(second, Vote):
        raise DecodeError("evidence: expected two votes")

    def render_vote(vote: Vote) -> dict[str, Any]:
        signed = compute_vote_signing_bytes(
            chain_id, vote.vote_type, vote.height, vote.round, vote.block_hash
        )
        return {
            "block_hash": None if vote.block_hash is None else vote.block_hash.hex(),
            "signature": vote.signature.hex(),
            "signature_valid": ed25519.is_valid_signature(vote.validator, signed, vote.signature),
        }

    return {
        "validator": first.validator.hex(),
        "height": first.height,
        "round": first.round,
        "vote_type": first.vote_type,
        "votes": [render_vote(first), render_vote(second)],
    }


def render_access_entry(entry: AccessEntry) -> dict[str, Any]:
    """Render one read of a member's data: who read (address, role), what, and when."""
    return {
        "reader": encode_address(entry.reader),
        "reader_role": entry.role,
        "route": entry.route,
        "target": entry.target,
        "time_ms": entry.time_ms,
    }
