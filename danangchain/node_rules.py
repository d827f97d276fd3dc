"""The rules of the node registry: who may admit, move and remove a node.

Full nodes are admitted and removed by a registrar: like members, they are participants
the city's registry office vouches for, and they sign no blocks, so admitting one cannot
weaken consensus. Validators enter and leave the registry only through validator votes
(danangchain/rules.py), which may carry the candidate's card. A registered node moves
itself: only its own key signs its new peer URLs.
"""

from __future__ import annotations

from dataclasses import replace

from danangchain.address import compute_address
from danangchain.errors import InvalidTransaction
from danangchain.registry import (
    NODE_ROLE_FULL,
    NODE_ROLE_VALIDATOR,
    NodeCard,
    NodeEntry,
    decode_node_entry,
    encode_node_entry,
    entry_from_card,
    is_card_signed,
)
from danangchain.state import (
    KEY_LAST_VALIDATORS,
    KEY_NEXT_VALIDATORS,
    KEY_VALIDATORS,
    Member,
    StateView,
    node_key,
    node_name_key,
)
from danangchain.transaction import (
    ROLE_NODE,
    ROLE_VALIDATOR,
    NodeAdmitBody,
    NodeAnnounceBody,
    NodeRemoveBody,
)
from danangchain.validators import decode_validator_set


def get_node(view: StateView, public_key: bytes) -> NodeEntry | None:
    """Return a node's registry entry, or None."""
    data = view.get(node_key(public_key))
    return None if data is None else decode_node_entry(data)


def put_node(view: StateView, public_key: bytes, entry: NodeEntry) -> None:
    """Write a node's registry entry and its name's index."""
    view.put(node_key(public_key), encode_node_entry(entry))
    view.put(node_name_key(entry.name), public_key)


def delete_node(view: StateView, public_key: bytes) -> None:
    """Drop a node's registry entry and its name's index."""
    entry = get_node(view, public_key)
    if entry is not None:
        view.put(node_name_key(entry.name), None)
        view.put(node_key(public_key), None)


def check_card_registrable(view: StateView, card: NodeCard) -> None:
    """Refuse a card that is not signed by its key, or whose key or name is registered."""
    # Verify the card is signed by the key it names, and neither is taken.
    if not is_card_signed(card):
        raise InvalidTransaction.of(
            "the node card is not signed by the key it names", rule="bad_card"
        )
    if get_node(view, card.public_key) is not None:
        raise InvalidTransaction.of("that node key is already registered", rule="already_node")
    holder = view.get(node_name_key(card.name))
    if holder is not None and holder != card.public_key:
        raise InvalidTransaction.of(
            "a node named {name} is already registered", rule="name_taken", name=card.name
        )


def register_validator_card(
    view: StateView, card: NodeCard | None, key: bytes, height: int
) -> None:
    """Enter a voted-in validator into the registry: from its card, or by changing the
    role of the full node it was."""
    if card is not None:
        put_node(view, key, entry_from_card(card, NODE_ROLE_VALIDATOR, height))
    else:
        set_node_role(view, key, NODE_ROLE_VALIDATOR)


def demote_validator(view: StateView, key: bytes) -> None:
    """Keep a voted-out validator in the registry as a full node: it is still its
    organisation's node, it still signs the heights before the change takes effect, and a
    registrar may remove it later."""
    set_node_role(view, key, NODE_ROLE_FULL)


def set_node_role(view: StateView, key: bytes, role: str) -> None:
    """Change a registered node's role (nothing for a key the registry does not hold)."""
    existing = get_node(view, key)
    if existing is not None:
        put_node(view, key, replace(existing, role=role))


def process_node_admit(view: StateView, member: Member, body: NodeAdmitBody, height: int) -> None:
    """Admit a full node from its card, with the account it announces from."""
    require_node_registrar(member)
    card = body.card
    check_card_registrable(view, card)
    address = compute_address(card.public_key)
    existing = view.get_member(address)
    # Verify the node's key is nobody's member account already.
    if existing is not None and not (existing.role == ROLE_NODE and existing.revoked):
        raise InvalidTransaction.of(
            "the node's key already signs for a member ({role})",
            rule="key_in_use",
            role=existing.role,
        )
    put_node(view, card.public_key, entry_from_card(card, NODE_ROLE_FULL, height))
    nonce = 0 if existing is None else existing.nonce
    view.put_member(address, Member(ROLE_NODE, nonce, False, height))


def process_node_remove(view: StateView, member: Member, body: NodeRemoveBody, height: int) -> None:
    """Remove a full node from the registry and revoke its account."""
    require_node_registrar(member)
    entry = get_node(view, body.public_key)
    # Verify the node is a registered full node (validators leave by validator votes).
    if entry is None:
        raise InvalidTransaction.of("that key is not a registered node", rule="not_node")
    if entry.role != NODE_ROLE_FULL or is_signing(view, body.public_key):
        raise InvalidTransaction.of(
            "validators leave the registry by validator votes", rule="not_allowed"
        )
    delete_node(view, body.public_key)
    address = compute_address(body.public_key)
    account = view.get_member(address)
    if account is not None and account.role == ROLE_NODE:
        view.put_member(
            address,
            Member(ROLE_NODE, account.nonce, True, account.admitted_height, height),
        )


def process_node_announce(
    view: StateView, sender_key: bytes, member: Member, body: NodeAnnounceBody, height: int
) -> None:
    """Move a registered node to new peer URLs (its own key signs the move)."""
    entry = get_node(view, sender_key)
    # Verify the sender is a registered node, announcing for itself.
    if entry is None or member.role not in (ROLE_NODE, ROLE_VALIDATOR):
        raise InvalidTransaction.of("only a registered node may announce itself", rule="not_node")
    moved = replace(entry, p2p_urls=body.p2p_urls, tls_certificate=body.tls_certificate)
    put_node(view, sender_key, moved)


def is_signing(view: StateView, key: bytes) -> bool:
    """Tell whether a key is in the set that signed the tip, signs next, or the one after
    (a voted-out validator signs until its removal takes effect)."""
    for set_key in (KEY_LAST_VALIDATORS, KEY_VALIDATORS, KEY_NEXT_VALIDATORS):
        data = view.get(set_key)
        if data is not None and decode_validator_set(data).power_of(key) > 0:
            return True
    return False


def require_node_registrar(member: Member) -> None:
    """Raise unless the sender is a registrar."""
    if member.role != "registrar":
        raise InvalidTransaction.of(
            "only a registrar may admit or remove full nodes, sender is a {role}",
            rule="not_registrar",
            role=member.role,
        )
