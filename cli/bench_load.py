"""The bench's load: admit senders, submit pre-signed records in lanes, follow commits.

A lane owns a fixed set of senders and one node, and sends its transactions in order,
one batch (`POST /txs/batch`) at a time, so each sender's nonces arrive in order. With a
rate, transaction i is due at i / rate seconds and counts from then: a batch that leaves
late (a slow reply, the tick that groups transactions) adds its delay to the latency.
Without a rate, every lane sends its next batch as soon as the last one was answered.
Commits are seen by following `/blocks/{h}` on the first node.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from cli.bench_stats import LoadLog, assign_lanes, compute_schedule, take_due
from cli.common import CliError
from danangchain import ed25519
from danangchain.address import compute_address
from danangchain.encoding import pack
from danangchain.sealing import (
    Binding,
    PrivateFields,
    compute_content_hash,
    compute_document_commitment,
    compute_document_salt,
    decode_gossip,
    derive_encryption_key,
    derive_salt_key,
    encode_gossip,
    encryption_public_key,
    seal,
)
from danangchain.transaction import (
    KIND_SEALED_RECORD,
    AuditKeysBody,
    MemberAdmitBody,
    RecordBody,
    SealedRecordBody,
    compute_tx_id,
    encode_transaction,
    sign_transaction,
)

# A lane groups what fell due into one request at most every TICK_S (open loop only).
TICK_S = 0.02
POLL_S = 0.01
# The load ends when every admitted transaction is committed, or no block came for this long.
STALL_S = 30.0
ADMIT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class LoadPlan:
    """Which nodes get which transactions, and when."""

    urls: list[str]
    records: list[bytes]
    senders: int
    lanes: int
    rate: float | None
    max_batch: int


def make_sender_keys(count: int) -> list[ed25519.SigningKey]:
    """Return fresh sender keys."""
    return [ed25519.signing_key_from_seed(os.urandom(32)) for _ in range(count)]


def sign_admissions(
    registrar: ed25519.SigningKey,
    chain_id: str,
    senders: list[ed25519.SigningKey],
    audit_key: bytes | None = None,
) -> list[bytes]:
    """Return the registrar's admissions of every sender as a business; for sealed
    records, with their encryption keys, then the audit key."""
    bodies: list[MemberAdmitBody | AuditKeysBody] = [
        MemberAdmitBody(
            compute_address(k.public_key),
            "business",
            None,
            None if audit_key is None else encryption_public_key(derive_encryption_key(k.seed)),
        )
        for k in senders
    ]
    if audit_key is not None:
        bodies.append(AuditKeysBody((audit_key,)))
    return [
        encode_transaction(sign_transaction(registrar, chain_id, i + 1, body))
        for i, body in enumerate(bodies)
    ]


def presign_records(chain_id: str, senders: list[ed25519.SigningKey], count: int) -> list[bytes]:
    """Sign `count` record transactions round-robin across senders, nonces from 1."""
    nonces = [0] * len(senders)
    encoded = []
    for number in range(count):
        index = number % len(senders)
        nonces[index] += 1
        body = RecordBody("invoice", number.to_bytes(32, "big"), amount=number)
        tx = sign_transaction(senders[index], chain_id, nonces[index], body)
        encoded.append(encode_transaction(tx))
    return encoded


def presign_sealed_records(
    chain_id: str, senders: list[ed25519.SigningKey], count: int, audit_key: bytes
) -> list[bytes]:
    """Seal and sign `count` records as the CLI does (amount and memo encrypted to the
    creator, the next sender as counterparty, and the audit key), round-robin; each item
    is the transaction with its sealed content, as a batch carries it."""
    nonces = [0] * len(senders)
    addresses = [compute_address(key.public_key) for key in senders]
    encryption = [encryption_public_key(derive_encryption_key(k.seed)) for k in senders]
    salt_keys = [derive_salt_key(key.seed) for key in senders]
    items = []
    for number in range(count):
        index = number % len(senders)
        other = (index + 1) % len(senders)
        nonces[index] += 1
        doc_hash = number.to_bytes(32, "big")
        binding = Binding(chain_id, addresses[index], nonces[index], KIND_SEALED_RECORD)
        recipients = [encryption[index], audit_key]
        counterparty = None if other == index else addresses[other]
        if counterparty is not None:
            recipients.append(encryption[other])
        memo = f"bench invoice {number}"
        envelope = seal(PrivateFields(number, memo), binding, recipients, os.urandom)
        salt = compute_document_salt(salt_keys[index], doc_hash)
        body = SealedRecordBody(
            category="invoice",
            doc_commitment=compute_document_commitment(salt, doc_hash),
            content_hash=compute_content_hash(envelope),
            counterparty=counterparty,
        )
        tx = sign_transaction(senders[index], chain_id, nonces[index], body)
        items.append(encode_gossip(encode_transaction(tx), envelope))
    return items


async def post_batch(
    session: aiohttp.ClientSession, url: str, txs: list[bytes]
) -> list[str | None]:
    """Submit a batch; return per transaction None if admitted, else the refusal's code."""
    try:
        async with session.post(
            url + "/txs/batch", data=pack(txs), headers={"Content-Type": "application/msgpack"}
        ) as response:
            if response.status != 200:
                return [f"http_{response.status}"] * len(txs)
            answer = await response.json()
    except (aiohttp.ClientError, OSError):
        return ["connection"] * len(txs)
    return [None if r["status"] == "pending" else r["error"] for r in answer["results"]]


async def fetch_block(
    session: aiohttp.ClientSession, url: str, height: int
) -> dict[str, Any] | None:
    """Return a committed block as JSON, or None if the node has none at that height yet."""
    async with session.get(f"{url}/blocks/{height}") as response:
        if response.status == 404:
            return None
        if response.status != 200:
            raise CliError(f"{url}/blocks/{height} answered {response.status}")
        block: dict[str, Any] = await response.json()
        return block


async def get_height(session: aiohttp.ClientSession, url: str) -> int:
    """Return a node's committed height."""
    async with session.get(url + "/status") as response:
        status: dict[str, Any] = await response.json()
        return int(status["height"])


async def admit_senders(session: aiohttp.ClientSession, url: str, admissions: list[bytes]) -> int:
    """Submit the senders' admissions and wait until they are committed; return the height."""
    for start in range(0, len(admissions), 256):
        refusals = [r for r in await post_batch(session, url, admissions[start : start + 256]) if r]
        if refusals:
            raise CliError(f"the benchmark's senders were refused: {refusals[0]}")
    waiting = {compute_tx_id(tx) for tx in admissions}
    height = 0
    deadline = time.perf_counter() + ADMIT_TIMEOUT_S
    while waiting:
        if time.perf_counter() > deadline:
            raise CliError("the benchmark's senders were not admitted in time")
        block = await fetch_block(session, url, height + 1)
        if block is None:
            await asyncio.sleep(POLL_S)
            continue
        height += 1
        waiting.difference_update(bytes.fromhex(tx["tx_id"]) for tx in block["txs"])
    return height


class LoadRun:
    """One run of the plan: the lanes submit while the watcher follows the commits."""

    def __init__(self, plan: LoadPlan, on_commit: Callable[[int], None]) -> None:
        self.plan = plan
        self.on_commit = on_commit
        self.log = LoadLog.empty(len(plan.records))
        self.offsets = compute_schedule(len(plan.records), plan.rate)
        self.index_of = {
            compute_tx_id(decode_gossip(tx)[0]): i for i, tx in enumerate(plan.records)
        }
        self.submitting = True
        self.committed = 0
        self.started = 0.0

    async def run(self, session: aiohttp.ClientSession, from_height: int) -> LoadLog:
        """Submit everything, then wait until every admitted transaction is committed."""
        plan = self.plan
        lanes = assign_lanes(len(plan.records), plan.senders, plan.lanes)
        self.started = time.perf_counter()
        watcher = asyncio.create_task(self._follow(session, from_height))
        try:
            await asyncio.gather(
                *(
                    self._run_lane(session, plan.urls[number % len(plan.urls)], indexes)
                    for number, indexes in enumerate(lanes)
                    if indexes
                )
            )
            self.submitting = False
            await watcher
        finally:
            watcher.cancel()
        return self.log

    async def _run_lane(self, session: aiohttp.ClientSession, url: str, indexes: list[int]) -> None:
        offsets = [self.offsets[i] for i in indexes]
        open_loop = self.plan.rate is not None
        position, last_left = 0, -TICK_S
        while position < len(indexes):
            elapsed = time.perf_counter() - self.started
            wake = max(offsets[position], last_left + TICK_S) if open_loop else 0.0
            if wake > elapsed:
                await asyncio.sleep(wake - elapsed)
                continue
            end = take_due(offsets, position, elapsed, self.plan.max_batch)
            batch = indexes[position:end]
            left = time.perf_counter()
            for i in batch:
                self.log.left_at[i] = left
                self.log.sent_at[i] = self.started + self.offsets[i] if open_loop else left
            last_left = left - self.started
            answers = await post_batch(session, url, [self.plan.records[i] for i in batch])
            for refusal in answers:
                if refusal is not None:
                    self.log.refused += 1
                    self.log.refusals[refusal] = self.log.refusals.get(refusal, 0) + 1
            position = end

    async def _follow(self, session: aiohttp.ClientSession, height: int) -> None:
        """Note when each transaction is first seen in a block of the first node."""
        url = self.plan.urls[0]
        last_block = time.perf_counter()
        while self.submitting or self.committed + self.log.refused < len(self.plan.records):
            block = await fetch_block(session, url, height + 1)
            now = time.perf_counter()
            if block is None:
                if now - last_block > STALL_S and not self.submitting:
                    return
                await asyncio.sleep(POLL_S)
                continue
            height, last_block = height + 1, now
            self.log.blocks.append((now, block["tx_count"]))
            fresh = 0
            for tx in block["txs"]:
                index = self.index_of.get(bytes.fromhex(tx["tx_id"]))
                if index is not None and self.log.committed_at[index] is None:
                    self.log.committed_at[index] = now
                    fresh += 1
            self.committed += fresh
            self.on_commit(fresh)


async def run_load(
    plan: LoadPlan, admissions: list[bytes], on_commit: Callable[[int], None]
) -> tuple[LoadLog, float]:
    """Admit the senders, run the load; return its log and the time it started."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        height = await admit_senders(session, plan.urls[0], admissions)
        load = LoadRun(plan, on_commit)
        log = await load.run(session, height)
        return log, load.started
