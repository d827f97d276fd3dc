"""Deterministic keys, a small genesis and a local chain that commits blocks, for ledger tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from danangchain import ed25519
from danangchain.address import compute_address
from danangchain.block import Block
from danangchain.errors import InvalidTransaction
from danangchain.genesis import Genesis, compute_genesis_writes, make_genesis
from danangchain.ledger import (
    BlockResult,
    ChainTip,
    apply_block,
    build_block,
    get_genesis_tip,
    get_tip_after,
    make_candidate,
)
from danangchain.rules import apply_transaction
from danangchain.state import DictState, StateReader, StateView
from danangchain.transaction import (
    Body,
    Transaction,
    compute_tx_id,
    encode_transaction,
    sign_transaction,
)
from danangchain.validators import (
    PRECOMMIT,
    CommitCertificate,
    Validator,
    make_certificate,
    sign_vote,
)

CHAIN_ID = "danang-test"
GENESIS_TIME_MS = 1_700_000_000_000
BLOCK_INTERVAL_MS = 1_000

VALIDATOR_SEED = 1
REGISTRAR_SEED = 2
HOUSEHOLD_SEED = 3
BUSINESS_SEED = 4
AUDITOR_SEED = 5
OUTSIDER_SEED = 9


def make_key(seed: int) -> ed25519.SigningKey:
    """Return the signing key of the fixed seed bytes([seed]) * 32."""
    return ed25519.signing_key_from_seed(bytes([seed]) * 32)


def address_of(key: ed25519.SigningKey) -> bytes:
    """Return the ledger address of a key."""
    return compute_address(key.public_key)


def make_test_genesis(
    validator_keys: Sequence[ed25519.SigningKey] = (),
    members: Iterable[tuple[ed25519.SigningKey, str]] = (),
) -> Genesis:
    """Return a genesis with the validators (default: one) and the registrar plus `members`."""
    keys = list(validator_keys) or [make_key(VALIDATOR_SEED)]
    validators = [Validator(key.public_key, f"validator-{i}") for i, key in enumerate(keys)]
    listed = [(address_of(make_key(REGISTRAR_SEED)), "registrar")]
    listed += [(address_of(key), role) for key, role in members]
    return make_genesis(CHAIN_ID, GENESIS_TIME_MS, validators, listed)


def make_genesis_state(genesis: Genesis) -> DictState:
    """Return a DictState holding exactly the genesis writes."""
    state = DictState()
    state.apply(compute_genesis_writes(genesis))
    return state


def get_next_nonce(state: StateReader, key: ed25519.SigningKey) -> int:
    """Return the nonce the key's next transaction must carry (1 for a non-member)."""
    member = StateView(state).get_member(address_of(key))
    return 1 if member is None else member.nonce + 1


def sign_next(
    state: StateReader,
    key: ed25519.SigningKey,
    body: Body,
    skip: int = 0,
    chain_id: str = CHAIN_ID,
) -> Transaction:
    """Sign a body with the sender's next nonce in `state` (plus `skip`)."""
    return sign_transaction(key, chain_id, get_next_nonce(state, key) + skip, body)


def get_tx_id(tx: Transaction) -> bytes:
    """Return a transaction's id."""
    return compute_tx_id(encode_transaction(tx))


def apply_to_view(view: StateView, tx: Transaction, height: int = 1) -> None:
    """Apply one transaction to a view with the test chain id."""
    apply_transaction(view, tx, get_tx_id(tx), CHAIN_ID, height)


def commit_transaction(state: DictState, tx: Transaction, height: int = 1) -> bytes:
    """Apply one transaction straight to a DictState (raise if invalid); return its id."""
    view = StateView(state)
    apply_to_view(view, tx, height)
    state.apply(view.writes)
    return get_tx_id(tx)


def certify(
    block: Block,
    keys: Sequence[ed25519.SigningKey],
    chain_id: str = CHAIN_ID,
    round_: int = 0,
) -> CommitCertificate:
    """Return a commit certificate of the block signed by `keys`."""
    votes = [sign_vote(key, chain_id, PRECOMMIT, block.height, round_, block.hash) for key in keys]
    return make_certificate(votes)


@dataclass
class LocalChain:
    """A chain grown in memory: a DictState, its tip and the last certificate."""

    genesis: Genesis
    validator_keys: list[ed25519.SigningKey]
    state: DictState
    tip: ChainTip
    last_commit: CommitCertificate | None = None
    blocks: list[Block] = field(default_factory=list)
    certificates: list[CommitCertificate] = field(default_factory=list)

    @property
    def proposer(self) -> bytes:
        """Return the proposer key used for the next block."""
        return self.validator_keys[0].public_key

    @property
    def next_time_ms(self) -> int:
        """Return the time of the next block."""
        return self.tip.time_ms + BLOCK_INTERVAL_MS

    def build(
        self, txs: Sequence[Transaction]
    ) -> tuple[BlockResult, list[tuple[bytes, InvalidTransaction]]]:
        """Build (without committing) the next block from transactions in order."""
        candidates = [make_candidate(tx, encode_transaction(tx)) for tx in txs]
        result, rejected = build_block(
            self.state,
            self.tip,
            CHAIN_ID,
            candidates,
            self.next_time_ms,
            self.proposer,
            self.last_commit,
        )
        return result, list(rejected)

    def apply(self, block: Block) -> BlockResult:
        """Validate a received block against this chain's tip; raise InvalidBlock."""
        return apply_block(self.state, self.tip, CHAIN_ID, block)

    def commit(self, txs: Sequence[Transaction] = ()) -> ChainTip:
        """Build, validate, certify and store the next block; return the new tip."""
        result, _ = self.build(txs)
        self.apply(result.block)
        certificate = certify(result.block, self.validator_keys)
        self.state.apply(result.writes)
        self.tip = get_tip_after(result)
        self.last_commit = certificate
        self.blocks.append(result.block)
        self.certificates.append(certificate)
        return self.tip


def make_local_chain(
    validator_keys: Sequence[ed25519.SigningKey] = (),
    members: Iterable[tuple[ed25519.SigningKey, str]] = (),
) -> LocalChain:
    """Return a chain at genesis with the given validators (default: one) and members."""
    keys = list(validator_keys) or [make_key(VALIDATOR_SEED)]
    genesis = make_test_genesis(keys, members)
    return LocalChain(genesis, keys, make_genesis_state(genesis), get_genesis_tip(genesis))
