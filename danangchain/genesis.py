"""Genesis: the network's first validators, registrars and node cards, its hash and its
initial state."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from danangchain import ed25519
from danangchain.address import compute_address, decode_address, encode_address
from danangchain.encoding import pack
from danangchain.errors import DanangChainError, DecodeError
from danangchain.registry import (
    NODE_ROLE_FULL,
    NODE_ROLE_VALIDATOR,
    NodeCard,
    decode_card_json,
    encode_card_fields,
    encode_card_json,
    encode_node_entry,
    entry_from_card,
    is_card_signed,
)
from danangchain.state import (
    EMPTY_ROOT,
    KEY_LAST_VALIDATORS,
    KEY_NEXT_VALIDATORS,
    KEY_VALIDATORS,
    Member,
    compute_state_root,
    encode_member,
    member_key,
    node_key,
    node_name_key,
)
from danangchain.transaction import MAX_CHAIN_ID_SIZE, ROLE_NODE, ROLE_VALIDATOR, ROLES
from danangchain.validators import (
    Validator,
    ValidatorSet,
    compute_validator_set_hash,
    encode_validator_set,
)

DOMAIN_GENESIS = "danangchain/genesis/v1"
GENESIS_VERSION = 1


@dataclass(frozen=True, slots=True)
class Genesis:
    """The agreed start of a chain."""

    chain_id: str
    time_ms: int
    validator_set: ValidatorSet
    members: tuple[tuple[bytes, str], ...]
    # The signed cards of the first nodes (validators and full nodes), by public key.
    nodes: tuple[NodeCard, ...] = ()

    @property
    def hash(self) -> bytes:
        """Return the genesis hash that block 1 links to and auditors pin."""
        return compute_genesis_hash(self)


def compute_genesis_hash(genesis: Genesis) -> bytes:
    """Return the SHA-256 of the canonical encoding of a genesis."""
    members = [[address, role] for address, role in genesis.members]
    fields: list[Any] = [
        DOMAIN_GENESIS,
        genesis.chain_id,
        genesis.time_ms,
        encode_validator_set(genesis.validator_set),
        members,
    ]
    # A genesis without cards hashes as it always did, so older networks keep their hash.
    if genesis.nodes:
        fields.append([encode_card_fields(card) for card in genesis.nodes])
    return hashlib.sha256(pack(fields)).digest()


def compute_genesis_writes(genesis: Genesis) -> dict[bytes, bytes | None]:
    """Return the state writes that genesis makes: its members and its validator set."""
    validator_set = encode_validator_set(genesis.validator_set)
    writes: dict[bytes, bytes | None] = {
        KEY_LAST_VALIDATORS: validator_set,
        KEY_VALIDATORS: validator_set,
        KEY_NEXT_VALIDATORS: validator_set,
    }
    # Each validator's own account, which signs its validator votes.
    for validator in genesis.validator_set.validators:
        writes[member_key(compute_address(validator.public_key))] = encode_member(
            Member(ROLE_VALIDATOR, 0, False, 0)
        )
    for address, role in genesis.members:
        writes[member_key(address)] = encode_member(Member(role, 0, False, 0))
    for card in genesis.nodes:
        signs = genesis.validator_set.power_of(card.public_key) > 0
        role = NODE_ROLE_VALIDATOR if signs else NODE_ROLE_FULL
        writes[node_key(card.public_key)] = encode_node_entry(entry_from_card(card, role, 0))
        writes[node_name_key(card.name)] = card.public_key
        if not signs:
            # A full node's own account, from which it announces a move.
            writes[member_key(compute_address(card.public_key))] = encode_member(
                Member(ROLE_NODE, 0, False, 0)
            )
    return writes


def compute_genesis_state_root(genesis: Genesis) -> bytes:
    """Return the state root at height 0."""
    return compute_state_root(EMPTY_ROOT, compute_genesis_writes(genesis))


def make_genesis(
    chain_id: str,
    time_ms: int,
    validators: list[Validator],
    members: list[tuple[bytes, str]],
    nodes: list[NodeCard] | tuple[NodeCard, ...] = (),
) -> Genesis:
    """Build a genesis with members sorted by address and cards by key, refusing
    duplicates, bad roles and cards not signed by their keys."""
    if not chain_id or len(chain_id.encode()) > MAX_CHAIN_ID_SIZE:
        raise DecodeError(f"chain id must be 1..{MAX_CHAIN_ID_SIZE} bytes")
    addresses = [address for address, _ in members]
    if len(set(addresses)) != len(addresses):
        raise DecodeError("genesis lists a member twice")
    if {compute_address(v.public_key) for v in validators} & set(addresses):
        raise DecodeError("a validator's own account cannot also be a genesis member")
    for validator in validators:
        if not ed25519.is_strict_public_key(validator.public_key):
            raise DecodeError(f"validator {validator.name} has an unsafe or malformed key")
    for _, role in members:
        if role not in ROLES:
            raise DecodeError(f"genesis role {role!r} is not one of {', '.join(ROLES)}")
    check_genesis_cards(nodes, set(addresses))
    cards = tuple(sorted(nodes, key=lambda card: card.public_key))
    return Genesis(chain_id, time_ms, ValidatorSet.of(validators), tuple(sorted(members)), cards)


def check_genesis_cards(cards: list[NodeCard] | tuple[NodeCard, ...], members: set[bytes]) -> None:
    """Refuse unsigned cards, two cards for one key or name, and a card whose key is a
    member's account."""
    keys = [card.public_key for card in cards]
    names = [card.name for card in cards]
    for card in cards:
        if not is_card_signed(card):
            raise DecodeError(f"the card of {card.name!r} is not signed by the key it names")
        if compute_address(card.public_key) in members:
            raise DecodeError(f"the key of node {card.name!r} is also a member's account")
    if len(set(keys)) != len(keys):
        raise DecodeError("genesis holds two cards for one node key")
    if len(set(names)) != len(names):
        raise DecodeError("genesis holds two cards with one node name")


def encode_genesis_json(genesis: Genesis) -> str:
    """Return the readable JSON form of a genesis, as kept in each node's home."""
    document = {
        "version": GENESIS_VERSION,
        "chain_id": genesis.chain_id,
        "genesis_time_ms": genesis.time_ms,
        "validators": [
            {"public_key": v.public_key.hex(), "name": v.name, "power": v.power}
            for v in genesis.validator_set.validators
        ],
        "members": [
            {"address": encode_address(address), "role": role} for address, role in genesis.members
        ],
    }
    if genesis.nodes:
        document["nodes"] = [json.loads(encode_card_json(card)) for card in genesis.nodes]
    return json.dumps(document, indent=2) + "\n"


def decode_genesis_json(text: str) -> Genesis:
    """Parse a genesis JSON document; raise DecodeError with the reason."""
    try:
        document = json.loads(text)
        version = document.get("version")
        if type(version) is not int or version != GENESIS_VERSION:
            raise DecodeError(f"genesis version {document.get('version')!r} is not supported")
        validators = [_decode_validator(item) for item in document["validators"]]
        members = [
            (decode_address(item["address"]), str(item["role"])) for item in document["members"]
        ]
        time_ms = document["genesis_time_ms"]
        if not isinstance(time_ms, int) or time_ms < 0:
            raise DecodeError("genesis_time_ms must be a non-negative integer")
        nodes = [decode_card_json(json.dumps(item)) for item in document.get("nodes", [])]
        return make_genesis(str(document["chain_id"]), time_ms, validators, members, nodes)
    except DanangChainError as exc:
        raise DecodeError(f"genesis: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DecodeError(f"genesis: malformed document ({exc!r})") from None


def _decode_validator(item: Any) -> Validator:
    """Parse one validator entry of a genesis document."""
    key = bytes.fromhex(item["public_key"])
    if len(key) != 32:
        raise DecodeError("validator public key must be 32 bytes")
    power = item.get("power", 1)
    if not isinstance(power, int) or power < 1:
        raise DecodeError("validator power must be a positive integer")
    return Validator(key, str(item["name"]), power)


def get_genesis_validators_hash(genesis: Genesis) -> bytes:
    """Return the hash of the validator set that signs height 1."""
    return compute_validator_set_hash(genesis.validator_set)
