"""One node in-process: a real LevelDB store in a temporary folder, the ledger and the
client API behind a test server. The test plays the single validator: `produce_block`
builds a block from the mempool through the ledger and certifies it with the validator's
own precommit, as the consensus driver does for a network of one."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from danangchain import ed25519
from danangchain.address import compute_address, encode_address
from danangchain.genesis import Genesis, make_genesis
from danangchain.read_access import encode_authorization, sign_read
from danangchain.transaction import Body, MemberAdmitBody, encode_transaction, sign_transaction
from danangchain.validators import PRECOMMIT, Validator, make_certificate, sign_vote
from node.chain.ledger import Limits, NodeLedger
from node.chain.verify_pool import SignaturePool
from node.http.api import create_app
from node.keyfile import save_key
from node.storage.store import Store

CHAIN_ID = "danang-integration"
GENESIS_TIME_MS = 1_700_000_000_000
BLOCK_INTERVAL_MS = 1_000

VALIDATOR_SEED = 1
REGISTRAR_SEED = 2
HOUSEHOLD_SEED = 3
BUSINESS_SEED = 4
AUDITOR_SEED = 7
OUTSIDER_SEED = 9

OCTET_STREAM = {"Content-Type": "application/octet-stream"}


def make_key(seed: int) -> ed25519.SigningKey:
    """Return the signing key of the fixed seed bytes([seed]) * 32."""
    return ed25519.signing_key_from_seed(bytes([seed]) * 32)


def address_of(key: ed25519.SigningKey) -> bytes:
    """Return the ledger address of a key."""
    return compute_address(key.public_key)


def text_address_of(key: ed25519.SigningKey) -> str:
    """Return the dn1... text address of a key."""
    return encode_address(address_of(key))


VALIDATOR = make_key(VALIDATOR_SEED)
REGISTRAR = make_key(REGISTRAR_SEED)
HOUSEHOLD = make_key(HOUSEHOLD_SEED)
BUSINESS = make_key(BUSINESS_SEED)
AUDITOR = make_key(AUDITOR_SEED)
OUTSIDER = make_key(OUTSIDER_SEED)


def make_test_genesis(chain_id: str = CHAIN_ID) -> Genesis:
    """Return a genesis with the node's key as the one validator, one registrar and one
    auditor (who reads every member's data: the tests read as the auditor by default)."""
    return make_genesis(
        chain_id,
        GENESIS_TIME_MS,
        [Validator(VALIDATOR.public_key, "validator-0")],
        [(address_of(REGISTRAR), "registrar"), (address_of(AUDITOR), "auditor")],
    )


def encode_signed(
    key: ed25519.SigningKey, nonce: int, body: Body, chain_id: str = CHAIN_ID
) -> bytes:
    """Sign a transaction and return its canonical bytes."""
    return encode_transaction(sign_transaction(key, chain_id, nonce, body))


def make_stepping_clock(start_ms: int = GENESIS_TIME_MS) -> Callable[[], int]:
    """Return a clock that moves one block interval each time it is read."""
    ticks = itertools.count(start_ms + BLOCK_INTERVAL_MS, BLOCK_INTERVAL_MS)
    return lambda: next(ticks)


@dataclass
class Node:
    """A running in-process node and the HTTP client that talks to its API."""

    folder: Path
    genesis: Genesis
    store: Store
    ledger: NodeLedger
    client: TestClient[Any, Any]
    stopped: bool = False

    async def post_tx(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """POST /txs with a raw body (octet-stream unless told); return status and JSON."""
        response = await self.client.post("/txs", data=body, headers=headers or OCTET_STREAM)
        return response.status, await response.json()

    async def post_tx_json(self, document: Any) -> tuple[int, Any]:
        """POST /txs with a JSON document."""
        response = await self.client.post("/txs", json=document)
        return response.status, await response.json()

    def sign_read(self, path: str, key: ed25519.SigningKey, method: str = "GET") -> dict[str, str]:
        """Return the Authorization header of a read signed by `key` now."""
        now_ms = time.time_ns() // 1_000_000
        read = sign_read(key, self.genesis.chain_id, method, path, now_ms, os.urandom(16))
        return {"Authorization": encode_authorization(read)}

    async def get(self, path: str, as_key: ed25519.SigningKey | None = AUDITOR) -> tuple[int, Any]:
        """GET a path, signed by `as_key` (default: the auditor; None: unsigned); return
        status and JSON."""
        headers = {} if as_key is None else self.sign_read(path, as_key)
        response = await self.client.get(path, headers=headers)
        return response.status, await response.json()

    async def get_ok(self, path: str, as_key: ed25519.SigningKey | None = AUDITOR) -> Any:
        """GET a path that must answer 200; return its JSON."""
        status, document = await self.get(path, as_key)
        assert status == 200, document
        return document

    async def submit_ok(self, tx_bytes: bytes) -> str:
        """Submit a transaction that must be accepted; return its tx id."""
        status, document = await self.post_tx(tx_bytes)
        assert status == 202, document
        return str(document["tx_id"])

    def produce_block(self) -> None:
        """Make and commit one block from the mempool; none if nothing is pending."""
        result = self.ledger.propose_block(VALIDATOR.public_key)
        if not result.tx_ids:
            return
        block = result.block
        vote = sign_vote(VALIDATOR, self.genesis.chain_id, PRECOMMIT, block.height, 0, block.hash)
        self.ledger.commit(result, make_certificate([vote]))

    async def stop(self) -> None:
        """Close the API client and server, then the store; safe to call twice."""
        if self.stopped:
            return
        self.stopped = True
        await self.client.close()
        self.store.close()


StartNode = Callable[..., Awaitable[Node]]


@pytest.fixture
async def start_node(tmp_path: Path) -> AsyncIterator[StartNode]:
    """Return a function that starts a node (default: in tmp_path/data); stop all at teardown."""
    started: list[Node] = []

    async def start(
        folder: Path | None = None,
        limits: Limits | None = None,
        genesis: Genesis | None = None,
        pool: SignaturePool | None = None,
    ) -> Node:
        folder = folder or tmp_path / "data"
        genesis = genesis or make_test_genesis()
        store = Store.open(str(folder))
        try:
            ledger = NodeLedger(
                genesis, store, limits or Limits(), clock=make_stepping_clock(), pool=pool
            )
            client: TestClient[Any, Any] = TestClient(
                TestServer(create_app(ledger, {"node_name": "integration"}))
            )
            await client.start_server()
        except BaseException:
            store.close()
            raise
        node = Node(folder, genesis, store, ledger, client)
        started.append(node)
        return node

    yield start
    for node in reversed(started):
        await node.stop()


@pytest.fixture
async def node(start_node: StartNode) -> Node:
    """A fresh node at height 0: genesis holds only the registrar."""
    return await start_node()


@pytest.fixture
async def members_node(node: Node) -> Node:
    """A node at height 1 where the registrar has admitted a household and a business."""
    await node.submit_ok(
        encode_signed(REGISTRAR, 1, MemberAdmitBody(address_of(HOUSEHOLD), "household"))
    )
    await node.submit_ok(
        encode_signed(REGISTRAR, 2, MemberAdmitBody(address_of(BUSINESS), "business"))
    )
    node.produce_block()
    assert node.ledger.tip.height == 1
    return node


@dataclass(frozen=True)
class Keystore:
    """A keystore folder with the test keys saved in it, and the file of their password."""

    folder: Path
    password_file: Path

    def options(self, name: str) -> list[str]:
        """Return the CLI options that sign as the key `name`."""
        return [
            "--from",
            name,
            "--keystore",
            str(self.folder),
            "--password-file",
            str(self.password_file),
        ]


@pytest.fixture
def keystore(tmp_path: Path) -> Keystore:
    """A keystore holding the auditor's, the household's, the business's and the
    outsider's keys (cheap scrypt), and their password file."""
    folder = tmp_path / "keys"
    folder.mkdir()
    password_file = tmp_path / "password"
    password_file.write_text("correct horse battery staple\n")
    keys = {"auditor": AUDITOR, "household": HOUSEHOLD, "business": BUSINESS, "outsider": OUTSIDER}
    for name, key in keys.items():
        save_key(folder / f"{name}.json", name, key, "correct horse battery staple", kdf_n=2**10)
    return Keystore(folder, password_file)
