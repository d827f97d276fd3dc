"""Microbenchmark: CPU time of NodeLedger.propose_block and validate_block, in one process.

Two NodeLedgers on one genesis (one validator, 200 business senders): A proposes, B
validates A's blocks, both commit. 20,000 record transactions, pre-signed as
`danangchain bench` signs them (cli/bench_load.py presign_records), reach both ledgers
through `submit`, as they do in a node. Two orders:

- `burst`: every transaction is admitted before the first block (so at height 1);
- `pipelined`: one block's worth is admitted before block 1, and each next block's worth
  while the previous block is built and validated but not yet committed, as in a network
  where the next transactions arrive during the consensus round.

Only propose_block and validate_block are timed, with time.process_time(). Nothing here
is random: the keys come from fixed seeds and the clock is fixed.

    .venv/bin/python tools/bench_block_rules.py [--store memory|leveldb] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

from cli.bench_load import presign_records
from danangchain import ed25519
from danangchain.address import compute_address
from danangchain.genesis import make_genesis
from danangchain.validators import PRECOMMIT, Validator, make_certificate, sign_vote
from node.chain.ledger import Limits, NodeLedger
from node.storage.store import Store

CHAIN_ID = "danang-bench"
TIME_MS = 1_700_000_000_000
TXS = 20_000
SENDERS = 200


def key_of(seed: int) -> ed25519.SigningKey:
    """Return the signing key of a fixed seed."""
    return ed25519.signing_key_from_seed(seed.to_bytes(32, "big"))


def run(order: str, store_kind: str, workdir: Path) -> dict[str, float]:
    """Run one benchmark and return its CPU seconds and block count."""
    validator = key_of(1)
    senders = [key_of(1000 + i) for i in range(SENDERS)]
    genesis = make_genesis(
        CHAIN_ID,
        TIME_MS,
        [Validator(validator.public_key, "v0")],
        [(compute_address(key.public_key), "business") for key in senders],
    )
    txs = presign_records(CHAIN_ID, senders, TXS)
    stores = [
        Store.in_memory() if store_kind == "memory" else Store.open(str(workdir / name))
        for name in ("a", "b")
    ]
    limits = Limits()
    proposer, follower = (
        NodeLedger(genesis, store, limits, clock=lambda: TIME_MS + 1) for store in stores
    )
    per_block = limits.block_max_txs
    batches = (
        [txs] if order == "burst" else [txs[i : i + per_block] for i in range(0, TXS, per_block)]
    )

    def admit(batch: list[bytes]) -> None:
        for ledger in (proposer, follower):
            with ledger.admitting():
                for tx in batch:
                    ledger.submit(tx)

    admit(batches.pop(0))
    propose = validate = 0.0
    blocks = 0
    blocks_seen = []
    gc.collect()  # what earlier runs left is not this run's cost
    while len(proposer.mempool):
        started = time.process_time()
        built = proposer.propose_block(validator.public_key)
        propose += time.process_time() - started
        started = time.process_time()
        validated = follower.validate_block(built.block)
        validate += time.process_time() - started
        if batches:
            admit(batches.pop(0))
        block = built.block
        blocks_seen.append(block)
        vote = sign_vote(validator, CHAIN_ID, PRECOMMIT, block.height, 0, block.hash)
        certificate = make_certificate([vote])
        proposer.commit(built, certificate)
        follower.commit(validated, certificate)
        blocks += 1
    assert proposer.tip == follower.tip and proposer.tip.height == blocks
    assert (
        all(block.tx_bytes for block in blocks_seen)
        and sum(len(block.tx_bytes) for block in blocks_seen) == TXS
    )
    for store in stores:
        store.close()
    return {"propose_s": propose, "validate_s": validate, "blocks": blocks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("memory", "leveldb"), default="memory")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--order", choices=("burst", "pipelined", "both"), default="both")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    orders = ("burst", "pipelined") if args.order == "both" else (args.order,)
    results: dict[str, list[dict[str, float]]] = {}
    for order in orders:
        for number in range(args.runs):
            with tempfile.TemporaryDirectory() as workdir:
                result = run(order, args.store, Path(workdir))
            results.setdefault(order, []).append(result)
            if not args.json:
                print(
                    f"{order:9} run {number + 1}: propose {result['propose_s'] * 1000:7.0f} ms "
                    f"({result['propose_s'] / TXS * 1e6:5.1f} us/tx), validate "
                    f"{result['validate_s'] * 1000:7.0f} ms "
                    f"({result['validate_s'] / TXS * 1e6:5.1f} us/tx), "
                    f"{result['blocks']:.0f} blocks",
                    flush=True,
                )
    if args.json:
        print(json.dumps({"store": args.store, "txs": TXS, "results": results}, indent=2))


if __name__ == "__main__":
    main()
