"""Measure `danangchain audit verify --file` on a long chain, beside the raw Ed25519 rate.

    python -m tests.audit_bench --txs 50000 --folder /tmp/audit-bench

builds a one-validator chain of record transactions in-process with the core (signed by
many senders, in blocks of --block-txs), writes it as an export file, then runs the real
CLI under /usr/bin/time -v and prints transactions/s, blocks/s, peak memory and the raw
single-core strict Ed25519 rate measured before and after, in the same run. Not a test:
pytest does not collect it, and the export it writes is not kept in the repository.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from cli.bench_run import measure_raw_verify_rate
from danangchain import ed25519
from danangchain.block import encode_block
from danangchain.export import encode_block_record, encode_end_record, encode_export_header
from danangchain.ledger import build_block, get_tip_after, make_candidate
from danangchain.transaction import (
    MemberAdmitBody,
    RecordBody,
    Transaction,
    encode_transaction,
    sign_transaction,
)
from danangchain.validators import encode_certificate
from tests.unit.ledger_fixtures import (
    CHAIN_ID,
    REGISTRAR_SEED,
    address_of,
    certify,
    make_key,
    make_local_chain,
)


def sign_records(senders: list[ed25519.SigningKey], count: int) -> list[Transaction]:
    """Sign `count` invoice records round-robin across senders, nonces from 1."""
    nonces = [0] * len(senders)
    txs = []
    for number in range(count):
        index = number % len(senders)
        nonces[index] += 1
        body = RecordBody("invoice", number.to_bytes(32, "big"), amount=number, memo="bench")
        txs.append(sign_transaction(senders[index], CHAIN_ID, nonces[index], body))
    return txs


def write_chain(path: Path, txs: int, block_txs: int, senders: int) -> tuple[int, int]:
    """Build the chain block by block and stream it into an export; return (blocks, txs)."""
    chain = make_local_chain()
    registrar = make_key(REGISTRAR_SEED)
    keys = [ed25519.signing_key_from_seed(i.to_bytes(32, "big")) for i in range(1, senders + 1)]
    admissions = [
        sign_transaction(registrar, CHAIN_ID, i + 1, MemberAdmitBody(address_of(k), "business"))
        for i, k in enumerate(keys)
    ]
    records = sign_records(keys, txs)
    batches = [admissions] + [records[i : i + block_txs] for i in range(0, txs, block_txs)]
    with path.open("wb") as out:
        out.write(encode_export_header(chain.genesis, len(batches)))
        for batch in batches:
            candidates = [make_candidate(tx, encode_transaction(tx)) for tx in batch]
            result, rejected = build_block(
                chain.state,
                chain.tip,
                CHAIN_ID,
                candidates,
                chain.next_time_ms,
                chain.proposer,
                chain.last_commit,
                is_verified=lambda _: True,
            )
            assert not rejected and len(result.tx_ids) == len(batch)
            certificate = certify(result.block, chain.validator_keys)
            out.write(
                encode_block_record(encode_block(result.block), encode_certificate(certificate))
            )
            chain.state.apply(result.writes)
            chain.tip, chain.last_commit = get_tip_after(result), certificate
        out.write(encode_end_record(chain.tip))
    return len(batches), senders + txs


def run_verifier(path: Path) -> tuple[dict[str, object], float, int]:
    """Run `danangchain audit verify --file` under /usr/bin/time -v."""
    command = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "cli.main",
        "audit",
        "verify",
        "--file",
        str(path),
        "--json",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"verification failed: {done.stdout} {done.stderr}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])
    return json.loads(done.stdout), wall, peak_kb


def main() -> None:
    """Build, verify, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=50_000)
    parser.add_argument("--block-txs", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=200)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/danangchain-audit-bench"))
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    path = args.folder / f"chain-{args.txs}.dnx"
    started = time.perf_counter()
    blocks, total_txs = write_chain(path, args.txs, args.block_txs, args.senders)
    built = time.perf_counter() - started
    raw_before = measure_raw_verify_rate(5000)
    report, wall, peak_kb = run_verifier(path)
    raw_after = measure_raw_verify_rate(5000)
    raw = (raw_before + raw_after) / 2
    seconds = float(report["seconds"])  # type: ignore[arg-type]
    tx_rate = total_txs / seconds
    figures = {
        "export_file_bytes": path.stat().st_size,
        "build_seconds": round(built, 1),
        "blocks": blocks,
        "transactions": total_txs,
        "verify_seconds": seconds,
        "verify_wall_seconds_with_startup": round(wall, 2),
        "transactions_per_s": round(tx_rate, 1),
        "blocks_per_s": round(blocks / seconds, 2),
        "raw_verify_per_s_before": round(raw_before, 1),
        "raw_verify_per_s_after": round(raw_after, 1),
        "ratio_to_raw": round(tx_rate / raw, 3),
        "signatures_per_s": round((total_txs + blocks) / seconds, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
    }
    assert report["transactions_checked"] == total_txs and report["heights_checked"] == blocks
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
