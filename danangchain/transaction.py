"""Transactions: their kinds, canonical encoding, signing bytes and id."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from danangchain import ed25519
from danangchain.address import ADDRESS_SIZE
from danangchain.encoding import (
    expect_bytes,
    expect_int,
    expect_list,
    expect_optional_bytes,
    expect_str,
    pack,
    unpack,
)
from danangchain.errors import DecodeError, InvalidTransaction
from danangchain.registry import (
    MAX_CERTIFICATE_SIZE,
    NodeCard,
    check_p2p_urls,
    check_tls_certificate,
    decode_card_fields,
    encode_card_fields,
)
from danangchain.signing import compute_tx_signing_bytes

TX_VERSION = 1
MAX_TX_SIZE = 4096
MAX_CHAIN_ID_SIZE = 64
MAX_MEMO_SIZE = 512
MAX_CATEGORY_SIZE = 32
HASH_SIZE = 32
# Decoded transactions remembered (about 1 KiB each): several blocks' worth.
DECODED_CACHE_SIZE = 16_384

KIND_RECORD = "record"
KIND_ENDORSE = "endorse"
KIND_MEMBER_ADMIT = "member_admit"
KIND_MEMBER_REVOKE = "member_revoke"
KIND_VALIDATOR_VOTE = "validator_vote"
KIND_NODE_ADMIT = "node_admit"
KIND_NODE_REMOVE = "node_remove"
KIND_NODE_ANNOUNCE = "node_announce"
KIND_ANCHOR = "anchor"
KIND_CHECKPOINT = "checkpoint"
KIND_SEALED_RECORD = "sealed_record"
KIND_ERASE = "erase"
KIND_AUDIT_KEYS = "audit_keys"
KINDS = (
    KIND_RECORD,
    KIND_ENDORSE,
    KIND_MEMBER_ADMIT,
    KIND_MEMBER_REVOKE,
    KIND_VALIDATOR_VOTE,
    KIND_NODE_ADMIT,
    KIND_NODE_REMOVE,
    KIND_NODE_ANNOUNCE,
    KIND_ANCHOR,
    KIND_CHECKPOINT,
    KIND_SEALED_RECORD,
    KIND_ERASE,
    KIND_AUDIT_KEYS,
)

CATEGORIES = (
    "invoice",
    "contract",
    "notarisation",
    "payment",
    "administrative_result",
    "other",
)
REFERENCE_KINDS = ("amends", "cancels")
# A payment may stand on its own (rent paid in cash, a transfer with no invoice attached):
# its record needs no document. Every other category records a document's digest.
CATEGORIES_WITHOUT_DOCUMENT = ("payment",)
ROLES = ("household", "business", "auditor", "registrar", "witness")
# The role of a body outside the validator set that cosigns checkpoints of the chain it
# checked (danangchain/checkpoint.py); given by a registrar like the other roles.
ROLE_WITNESS = "witness"
# The role of a validator's own account: given by genesis or a validator vote, never by a
# registrar; it lets the validator sign validator votes.
ROLE_VALIDATOR = "validator"
# The role of an admitted full node's own account: given by a node_admit, never by
# member_admit; it lets the node announce a new address.
ROLE_NODE = "node"
VALIDATOR_ACTIONS = ("add", "remove")
MAX_VALIDATOR_NAME_SIZE = 64
# Anchors: what a dataset or a sensor's window is, and how large it may say it is.
ANCHOR_CATEGORIES = ("dataset", "iot", "notarisation", "integration", "other")
MAX_ANCHOR_NAME_SIZE = 64
MAX_ANCHOR_FILE_COUNT = 2**32
MAX_ANCHOR_TOTAL_BYTES = 2**63
# X25519 public keys: a member's encryption key, the network's audit keys.
ENCRYPTION_KEY_SIZE = 32
MAX_AUDIT_KEYS = 8


@dataclass(frozen=True, slots=True)
class RecordBody:
    """A household's or business's record of a document or transaction."""

    category: str
    doc_hash: bytes | None  # None only for CATEGORIES_WITHOUT_DOCUMENT
    amount: int | None = None
    counterparty: bytes | None = None
    memo: str = ""
    reference: bytes | None = None
    reference_kind: str | None = None


@dataclass(frozen=True, slots=True)
class EndorseBody:
    """The named counterparty's confirmation of a record about them."""

    record_id: bytes


@dataclass(frozen=True, slots=True)
class MemberAdmitBody:
    """A registrar's admission of an address with a role; with a public key, the key that
    signs for the address from now on (key rotation after a loss)."""

    address: bytes
    role: str
    public_key: bytes | None = None
    # The member's X25519 key that sealed records are encrypted to; absent, the body keeps
    # the three fields it always had (old chains encode as they did).
    encryption_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class MemberRevokeBody:
    """A registrar's revocation of a member."""

    address: bytes


@dataclass(frozen=True, slots=True)
class ValidatorVoteBody:
    """A validator's vote to add or remove a validator (applies at more than 2/3)."""

    action: str
    public_key: bytes
    name: str = ""
    power: int = 1
    # An add may name the candidate's signed card: it then enters the node registry.
    card: NodeCard | None = None


@dataclass(frozen=True, slots=True)
class NodeAdmitBody:
    """A registrar's admission of a full node, from the card its organisation made."""

    card: NodeCard


@dataclass(frozen=True, slots=True)
class NodeRemoveBody:
    """A registrar's removal of a full node from the registry."""

    public_key: bytes


@dataclass(frozen=True, slots=True)
class NodeAnnounceBody:
    """A registered node's own move to new peer URLs (and TLS certificate)."""

    p2p_urls: tuple[str, ...]
    tls_certificate: bytes | None


@dataclass(frozen=True, slots=True)
class AnchorBody:
    """A member's anchor of a dataset (or of one window of a stream): the root of the
    Merkle tree over its files' entries, how many files, and their total size."""

    name: str
    category: str
    root: bytes
    file_count: int
    total_bytes: int
    # A stream's window, in ms since the epoch by the anchorer's clock; None for datasets.
    window_start_ms: int | None = None
    window_end_ms: int | None = None


@dataclass(frozen=True, slots=True)
class CheckpointBody:
    """A witness's cosigned checkpoint of an earlier block: its height, hash and state root,
    and the witness's signature of them in the checkpoint domain (checkable off chain)."""

    height: int
    block_hash: bytes
    state_root: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class SealedRecordBody:
    """A record whose private fields (amount, memo) are encrypted off the block: the block
    carries the commitment to the encrypted content (`content_hash`, danangchain/sealing.py)
    and a hiding commitment to the document digest instead of the digest itself."""

    category: str
    doc_commitment: bytes | None  # None only for CATEGORIES_WITHOUT_DOCUMENT
    content_hash: bytes
    counterparty: bytes | None = None
    reference: bytes | None = None
    reference_kind: str | None = None


@dataclass(frozen=True, slots=True)
class EraseBody:
    """The creator's (or a registrar's) erasure of a sealed record's private content."""

    record_id: bytes


@dataclass(frozen=True, slots=True)
class AuditKeysBody:
    """A registrar's replacement of the network's audit keys: the X25519 keys every
    sealed record is also encrypted to."""

    keys: tuple[bytes, ...]


Body = (
    RecordBody
    | EndorseBody
    | MemberAdmitBody
    | MemberRevokeBody
    | ValidatorVoteBody
    | NodeAdmitBody
    | NodeRemoveBody
    | NodeAnnounceBody
    | AnchorBody
    | CheckpointBody
    | SealedRecordBody
    | EraseBody
    | AuditKeysBody
)

_KIND_OF_BODY: dict[type, str] = {
    RecordBody: KIND_RECORD,
    EndorseBody: KIND_ENDORSE,
    MemberAdmitBody: KIND_MEMBER_ADMIT,
    MemberRevokeBody: KIND_MEMBER_REVOKE,
    ValidatorVoteBody: KIND_VALIDATOR_VOTE,
    NodeAdmitBody: KIND_NODE_ADMIT,
    NodeRemoveBody: KIND_NODE_REMOVE,
    NodeAnnounceBody: KIND_NODE_ANNOUNCE,
    AnchorBody: KIND_ANCHOR,
    CheckpointBody: KIND_CHECKPOINT,
    SealedRecordBody: KIND_SEALED_RECORD,
    EraseBody: KIND_ERASE,
    AuditKeysBody: KIND_AUDIT_KEYS,
}


@dataclass(frozen=True, slots=True)
class Transaction:
    """A signed transaction; its id is the SHA-256 of `encode_transaction(tx)`."""

    chain_id: str
    sender: bytes
    nonce: int
    body: Body
    signature: bytes

    @property
    def kind(self) -> str:
        """Return the kind name of this transaction's body."""
        return _KIND_OF_BODY[type(self.body)]


def kind_of(body: Body) -> str:
    """Return the transaction kind a body is signed as."""
    return _KIND_OF_BODY[type(body)]


def encode_body(body: Body) -> list[Any]:
    """Encode a body as its fixed-order field array."""
    if isinstance(body, RecordBody):
        return [
            body.category,
            body.doc_hash,
            body.amount,
            body.counterparty,
            body.memo,
            body.reference,
            body.reference_kind,
        ]
    if isinstance(body, EndorseBody):
        return [body.record_id]
    if isinstance(body, MemberAdmitBody):
        admit: list[Any] = [body.address, body.role, body.public_key]
        return admit if body.encryption_key is None else [*admit, body.encryption_key]
    if isinstance(body, ValidatorVoteBody):
        fields = [body.action, body.public_key, body.name, body.power]
        # Without a card, a vote keeps the four fields it always had.
        return fields if body.card is None else [*fields, encode_card_fields(body.card)]
    if isinstance(body, NodeAdmitBody):
        return [encode_card_fields(body.card)]
    if isinstance(body, NodeRemoveBody):
        return [body.public_key]
    if isinstance(body, NodeAnnounceBody):
        return [list(body.p2p_urls), body.tls_certificate]
    if isinstance(body, AnchorBody):
        return encode_anchor_fields(body)
    if isinstance(body, CheckpointBody):
        return [body.height, body.block_hash, body.state_root, body.signature]
    if isinstance(body, SealedRecordBody):
        return [
            body.category,
            body.doc_commitment,
            body.content_hash,
            body.counterparty,
            body.reference,
            body.reference_kind,
        ]
    if isinstance(body, EraseBody):
        return [body.record_id]
    if isinstance(body, AuditKeysBody):
        return [list(body.keys)]
    return [body.address]


def decode_body(kind: str, fields: Any) -> Body:
    """Decode and check a body's fields for the given kind."""
    if kind == KIND_RECORD:
        return _decode_record_body(fields)
    if kind == KIND_ENDORSE:
        (record_id,) = expect_list(fields, 1, "endorse body")
        return EndorseBody(expect_bytes(record_id, "record_id", size=HASH_SIZE))
    if kind == KIND_MEMBER_ADMIT:
        return _decode_member_admit_body(fields)
    if kind == KIND_VALIDATOR_VOTE:
        return _decode_validator_vote_body(fields)
    if kind == KIND_MEMBER_REVOKE:
        (address,) = expect_list(fields, 1, "member_revoke body")
        return MemberRevokeBody(expect_bytes(address, "address", size=ADDRESS_SIZE))
    if kind in (KIND_NODE_ADMIT, KIND_NODE_REMOVE, KIND_NODE_ANNOUNCE):
        return _decode_node_body(kind, fields)
    if kind == KIND_ANCHOR:
        return decode_anchor_fields(fields)
    if kind == KIND_CHECKPOINT:
        return _decode_checkpoint_body(fields)
    if kind in (KIND_SEALED_RECORD, KIND_ERASE, KIND_AUDIT_KEYS):
        return _decode_sealed_kinds(kind, fields)
    raise DecodeError(f"unknown transaction kind {kind!r}")


def _decode_member_admit_body(fields: Any) -> MemberAdmitBody:
    """Decode a member admission: three fields, or four with an encryption key (never a
    fourth that is null, so each admission has one encoding)."""
    if isinstance(fields, list) and len(fields) == 4:
        encryption_key: bytes | None = expect_bytes(
            fields[3], "encryption_key", size=ENCRYPTION_KEY_SIZE
        )
        fields = fields[:3]
    else:
        encryption_key = None
    address, role, public_key = expect_list(fields, 3, "member_admit body")
    role = expect_str(role, "role", 16)
    if role not in ROLES:
        raise DecodeError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return MemberAdmitBody(
        expect_bytes(address, "address", size=ADDRESS_SIZE),
        role,
        expect_optional_bytes(public_key, "public_key", ed25519.PUBLIC_KEY_SIZE),
        encryption_key,
    )


def _decode_sealed_kinds(kind: str, fields: Any) -> Body:
    """Decode the bodies of sealed records, their erasure and the audit keys."""
    if kind == KIND_ERASE:
        (record_id,) = expect_list(fields, 1, "erase body")
        return EraseBody(expect_bytes(record_id, "record_id", size=HASH_SIZE))
    if kind == KIND_AUDIT_KEYS:
        (keys,) = expect_list(fields, 1, "audit_keys body")
        if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_AUDIT_KEYS:
            raise DecodeError(f"audit_keys: expected an array of 1 to {MAX_AUDIT_KEYS} keys")
        decoded = tuple(expect_bytes(key, "audit key", size=ENCRYPTION_KEY_SIZE) for key in keys)
        if list(decoded) != sorted(set(decoded)):
            raise DecodeError("audit_keys: the keys are distinct and in order")
        return AuditKeysBody(decoded)
    category, commitment, content_hash, counterparty, reference, reference_kind = expect_list(
        fields, 6, "sealed_record body"
    )
    category = expect_str(category, "category", MAX_CATEGORY_SIZE)
    if category not in CATEGORIES:
        raise DecodeError(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    if reference_kind is not None and reference_kind not in REFERENCE_KINDS:
        raise DecodeError(f"reference kind {reference_kind!r} is not one of amends, cancels")
    if (reference is None) != (reference_kind is None):
        raise DecodeError("a reference and its kind (amends or cancels) go together")
    if commitment is None and category not in CATEGORIES_WITHOUT_DOCUMENT:
        raise DecodeError(
            f"a {category} record names its document ("
            f"{', '.join(CATEGORIES_WITHOUT_DOCUMENT)} records may have none)"
        )
    return SealedRecordBody(
        category=category,
        doc_commitment=expect_optional_bytes(commitment, "doc_commitment", HASH_SIZE),
        content_hash=expect_bytes(content_hash, "content_hash", size=HASH_SIZE),
        counterparty=expect_optional_bytes(counterparty, "counterparty", ADDRESS_SIZE),
        reference=expect_optional_bytes(reference, "reference", HASH_SIZE),
        reference_kind=reference_kind,
    )


def _decode_node_body(kind: str, fields: Any) -> Body:
    """Decode and check the body of a node registry transaction."""
    if kind == KIND_NODE_ADMIT:
        (card,) = expect_list(fields, 1, "node_admit body")
        return NodeAdmitBody(decode_card_fields(card))
    if kind == KIND_NODE_REMOVE:
        (public_key,) = expect_list(fields, 1, "node_remove body")
        return NodeRemoveBody(expect_bytes(public_key, "public_key", size=ed25519.PUBLIC_KEY_SIZE))
    urls, certificate = expect_list(fields, 2, "node_announce body")
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise DecodeError("node_announce p2p_urls: expected an array of strings")
    return NodeAnnounceBody(
        check_p2p_urls(urls),
        check_tls_certificate(
            None
            if certificate is None
            else expect_bytes(certificate, "tls_certificate", max_size=MAX_CERTIFICATE_SIZE)
        ),
    )


def encode_anchor_fields(body: AnchorBody) -> list[Any]:
    """Encode an anchor body as its fixed-order field array."""
    return [
        body.name,
        body.category,
        body.root,
        body.file_count,
        body.total_bytes,
        body.window_start_ms,
        body.window_end_ms,
    ]


def decode_anchor_fields(fields: Any) -> AnchorBody:
    """Decode and check the fields of an anchor body."""
    name, category, root, file_count, total_bytes, start, end = expect_list(
        fields, 7, "anchor body"
    )
    category = expect_str(category, "category", MAX_CATEGORY_SIZE)
    if category not in ANCHOR_CATEGORIES:
        raise DecodeError(f"category {category!r} is not one of {', '.join(ANCHOR_CATEGORIES)}")
    if (start is None) != (end is None):
        raise DecodeError("a stream window has both a start and an end, a dataset neither")
    if start is not None:
        start = expect_int(start, "window_start_ms")
        end = expect_int(end, "window_end_ms", minimum=start + 1)
    return AnchorBody(
        name=check_anchor_name(expect_str(name, "name", MAX_ANCHOR_NAME_SIZE)),
        category=category,
        root=expect_bytes(root, "root", size=HASH_SIZE),
        file_count=expect_int(file_count, "file_count", minimum=1, maximum=MAX_ANCHOR_FILE_COUNT),
        total_bytes=expect_int(total_bytes, "total_bytes", maximum=MAX_ANCHOR_TOTAL_BYTES),
        window_start_ms=start,
        window_end_ms=end,
    )


def check_anchor_name(name: str) -> str:
    """Return a dataset's or sensor's name, or raise DecodeError: 1 to 64 bytes of
    printable text without a slash, so it also names the manifest's file."""
    if not name or len(name.encode()) > MAX_ANCHOR_NAME_SIZE:
        raise DecodeError(f"an anchor's name is 1 to {MAX_ANCHOR_NAME_SIZE} bytes")
    if not name.isprintable() or "/" in name or "\\" in name or name in (".", ".."):
        raise DecodeError(
            f"anchor name {name!r} must be printable text without / or \\ (it names files)"
        )
    return name


def _decode_checkpoint_body(fields: Any) -> CheckpointBody:
    """Decode and check the fields of a witness's checkpoint."""
    height, block_hash, state_root, signature = expect_list(fields, 4, "checkpoint body")
    return CheckpointBody(
        expect_int(height, "checkpoint height", minimum=1),
        expect_bytes(block_hash, "block_hash", size=HASH_SIZE),
        expect_bytes(state_root, "state_root", size=HASH_SIZE),
        expect_bytes(signature, "signature", size=ed25519.SIGNATURE_SIZE),
    )


def _decode_validator_vote_body(fields: Any) -> ValidatorVoteBody:
    """Decode and check the fields of a validator vote."""
    if isinstance(fields, list) and len(fields) == 5:
        card: NodeCard | None = decode_card_fields(fields[4])
        fields = fields[:4]
    else:
        card = None
    action, public_key, name, power = expect_list(fields, 4, "validator_vote body")
    action = expect_str(action, "action", 8)
    if action not in VALIDATOR_ACTIONS:
        raise DecodeError(f"validator vote action {action!r} is not add or remove")
    vote = ValidatorVoteBody(
        action=action,
        public_key=expect_bytes(public_key, "public_key", size=ed25519.PUBLIC_KEY_SIZE),
        name=expect_str(name, "name", MAX_VALIDATOR_NAME_SIZE),
        power=expect_int(power, "power", minimum=1, maximum=2**32),
        card=card,
    )
    if card is not None and (action != "add" or card.public_key != vote.public_key):
        raise DecodeError("a validator vote carries a card only to add that card's key")
    return vote


def _decode_record_body(fields: Any) -> RecordBody:
    """Decode and check the fields of a record body."""
    category, doc_hash, amount, counterparty, memo, reference, reference_kind = expect_list(
        fields, 7, "record body"
    )
    category = expect_str(category, "category", MAX_CATEGORY_SIZE)
    if category not in CATEGORIES:
        raise DecodeError(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    if amount is not None:
        amount = expect_int(amount, "amount", minimum=0, maximum=10**18)
    if reference_kind is not None and reference_kind not in REFERENCE_KINDS:
        raise DecodeError(f"reference kind {reference_kind!r} is not one of amends, cancels")
    if (reference is None) != (reference_kind is None):
        raise DecodeError("a reference and its kind (amends or cancels) go together")
    if doc_hash is None and category not in CATEGORIES_WITHOUT_DOCUMENT:
        raise DecodeError(
            f"a record of category {category} needs its document's SHA-256 (only "
            f"{', '.join(CATEGORIES_WITHOUT_DOCUMENT)} records may have none)"
        )
    return RecordBody(
        category=category,
        doc_hash=expect_optional_bytes(doc_hash, "doc_hash", HASH_SIZE),
        amount=amount,
        counterparty=expect_optional_bytes(counterparty, "counterparty", ADDRESS_SIZE),
        memo=expect_str(memo, "memo", MAX_MEMO_SIZE),
        reference=expect_optional_bytes(reference, "reference", HASH_SIZE),
        reference_kind=reference_kind,
    )


def encode_transaction(tx: Transaction) -> bytes:
    """Encode a signed transaction canonically."""
    return pack(
        [TX_VERSION, tx.chain_id, tx.sender, tx.nonce, tx.kind, encode_body(tx.body), tx.signature]
    )


def compute_tx_id(encoded: bytes) -> bytes:
    """Return a transaction's id: the SHA-256 of its canonical signed bytes."""
    return hashlib.sha256(encoded).digest()


def decode_transaction(data: bytes) -> Transaction:
    """Decode a transaction from canonical bytes; raise InvalidTransaction with the reason.

    A node meets each transaction several times (gossip, the proposal's block, the stored
    block): the same bytes always decode to the same immutable value, so recent ones are
    remembered (refusals are not).
    """
    if type(data) is bytes:
        return _decode_transaction_remembered(data)
    return _decode_transaction(data)


@lru_cache(maxsize=DECODED_CACHE_SIZE)
def _decode_transaction_remembered(data: bytes) -> Transaction:
    return _decode_transaction(data)


def _decode_transaction(data: bytes) -> Transaction:
    if len(data) > MAX_TX_SIZE:
        raise InvalidTransaction.of(
            "transaction is {size} bytes, the limit is {limit}",
            rule="too_large",
            size=len(data),
            limit=MAX_TX_SIZE,
        )
    try:
        return decode_transaction_fields(unpack(data, max_size=MAX_TX_SIZE))
    except DecodeError as exc:
        raise InvalidTransaction.of(
            "bad encoding: {reason}", rule="bad_encoding", reason=str(exc)
        ) from None


def decode_transaction_fields(value: Any) -> Transaction:
    """Build a Transaction from its decoded field array; raise DecodeError if malformed."""
    version, chain_id, sender, nonce, kind, body, signature = expect_list(value, 7, "transaction")
    if expect_int(version, "transaction version") != TX_VERSION:
        raise DecodeError(f"transaction version {version!r} is not supported")
    kind = expect_str(kind, "kind", 32)
    return Transaction(
        chain_id=expect_str(chain_id, "chain_id", MAX_CHAIN_ID_SIZE),
        sender=expect_bytes(sender, "sender", size=ed25519.PUBLIC_KEY_SIZE),
        nonce=expect_int(nonce, "nonce", minimum=1),
        body=decode_body(kind, body),
        signature=expect_bytes(signature, "signature", size=ed25519.SIGNATURE_SIZE),
    )


def sign_transaction(key: ed25519.SigningKey, chain_id: str, nonce: int, body: Body) -> Transaction:
    """Build and sign a transaction from the sender's key."""
    kind = _KIND_OF_BODY[type(body)]
    message = compute_tx_signing_bytes(chain_id, key.public_key, nonce, kind, encode_body(body))
    return Transaction(chain_id, key.public_key, nonce, body, ed25519.sign(key, message))


def verify_transaction_signature(
    tx: Transaction,
    equation: ed25519.Equation | None = None,
    key_check: ed25519.KeyCheck | None = None,
) -> None:
    """Verify the sender's strict Ed25519 signature; raise InvalidTransaction if it fails."""
    message = compute_tx_signing_bytes(
        tx.chain_id, tx.sender, tx.nonce, tx.kind, encode_body(tx.body)
    )
    valid = ed25519.is_valid_signature(tx.sender, message, tx.signature, equation, key_check)
    if not valid:
        raise InvalidTransaction.of(
            "signature does not verify for the sender's key", rule="bad_signature"
        )
