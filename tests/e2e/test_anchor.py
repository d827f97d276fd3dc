"""End to end: a folder of 1,000 files anchored by one transaction on a real node, one
file proven and checked offline (and refused once changed or renamed), and a stream of
readings anchored window by window, one reading proven."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli.client import NodeClient, ReadSigner
from cli.localnet import stop_node_process
from danangchain.address import compute_address, encode_address
from node.keyfile import generate_signing_key, read_keystore, save_key, unlock_key
from tests.e2e.conftest import PASSWORD, LocalNode, run_cli, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

FILES = 1000


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    """Assert a --json command succeeded and return its report."""
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def signing(node: LocalNode, key: str = "city-data") -> list[str]:
    """Return the options that sign with a key of the node's keystore."""
    return [
        "--from", key, "--keystore", str(node.keystore),
        "--password-file", str(node.password_file), "--node", node.url,
    ]  # fmt: skip


def admit_publisher(node: LocalNode) -> str:
    """Admit the city's data office as a business; return its address."""
    key = generate_signing_key()
    save_key(node.keystore / "city-data.json", "city-data", key, PASSWORD, kdf_n=2**10)
    address = encode_address(compute_address(key.public_key))
    ok(node.cli("member", "admit", address, "--role", "business", "--from", "registrar", "--wait",
                "--json"))  # fmt: skip
    return address


def nonce_of(node: LocalNode) -> int:
    """Return the data office's committed nonce, read as the data office itself."""
    key = unlock_key(read_keystore(node.keystore / "city-data.json"), PASSWORD)
    address = encode_address(compute_address(key.public_key))
    return int(NodeClient(node.url, signer=ReadSigner(key)).get(f"/accounts/{address}")["nonce"])


def make_dataset(folder: Path) -> None:
    """Write FILES small files in a few sub-folders, one with a Vietnamese name."""
    for number in range(FILES):
        sub = folder / ("trạm" if number % 3 == 0 else f"part-{number % 7}")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"reading-{number:04}.csv").write_text(f"{number},{number * 7 % 101}\n")


def test_a_folder_of_1000_files_is_one_transaction_and_one_file_proves_offline(
    local_node: LocalNode, tmp_path: Path
) -> None:
    admit_publisher(local_node)
    client = NodeClient(local_node.url)
    nonce_before = nonce_of(local_node)
    data = tmp_path / "air-2026"
    make_dataset(data)
    manifest = tmp_path / "air-2026.anchor.json"

    made = ok(run_cli("anchor", str(data), "--name", "air-2026", "--manifest", str(manifest),
                      "--wait", "--json", *signing(local_node)))  # fmt: skip
    assert made["status"] == "committed" and made["file_count"] == FILES
    assert nonce_of(local_node) == nonce_before + 1
    tx = client.get(f"/txs/{made['tx_id']}")["tx"]
    assert tx["kind"] == "anchor" and tx["body"]["root"] == made["root"]
    assert tx["body"]["file_count"] == FILES
    document = json.loads(manifest.read_text())
    assert len(document["entries"]) == FILES and document["tx_id"] == made["tx_id"]

    target = data / "trạm" / "reading-0042.csv"
    proof = tmp_path / "reading-0042.proof"
    ok(run_cli("audit", "prove-file", str(target), "--manifest", str(manifest), "--out",
               str(proof), "--node", local_node.url, "--json"))  # fmt: skip

    # Offline from here: no node runs while the proof is checked.
    for process in local_node.processes:
        stop_node_process(process)
    local_node.processes.clear()
    pin = local_node.made["genesis_hash"]
    checked = ok(run_cli("audit", "check-file", str(target), str(proof), "--genesis-hash", pin,
                         "--json"))  # fmt: skip
    assert checked["valid"] is True and checked["name"] == "air-2026"
    assert checked["path"] == "trạm/reading-0042.csv" and checked["height"] == made["height"]
    assert checked["tx_id"] == made["tx_id"] and checked["time"].endswith("+00:00")

    # A copy elsewhere under the same relative path checks too.
    copy = tmp_path / "download" / "trạm" / "reading-0042.csv"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(target.read_bytes())
    ok(run_cli("audit", "check-file", str(copy), str(proof), "--genesis-hash", pin, "--json"))

    refused = [
        run_cli("audit", "check-file", str(target), str(proof), "--genesis-hash", "ab" * 32),
    ]
    renamed = copy.with_name("reading-0043.csv")
    copy.rename(renamed)
    refused.append(run_cli("audit", "check-file", str(renamed), str(proof), "--genesis-hash", pin))
    changed = bytearray(target.read_bytes())
    changed[0] ^= 0x01
    target.write_bytes(bytes(changed))
    refused.append(run_cli("audit", "check-file", str(target), str(proof), "--genesis-hash", pin))
    reasons = ["genesis hash", "anchored as 'trạm/reading-0042.csv'", "content is not the anchored"]
    for result, reason in zip(refused, reasons, strict=True):
        assert result.returncode == 1, result.stderr + result.stdout
        [line] = result.stdout.strip().splitlines()
        assert line.startswith("INVALID proof:") and reason in line


def test_bad_dataset_input_records_nothing(
    local_node: LocalNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admit_publisher(local_node)
    nonce = nonce_of(local_node)
    monkeypatch.chdir(tmp_path)
    for arguments in (["missing-folder"], [str(tmp_path / "empty")]):
        (tmp_path / "empty").mkdir(exist_ok=True)
        result = run_cli("anchor", *arguments, "--name", "x", *signing(local_node))
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    (tmp_path / "one.csv").write_text("1\n")
    manifest = tmp_path / "one.anchor.json"
    ok(run_cli("anchor", str(tmp_path / "one.csv"), "--name", "one", "--manifest", str(manifest),
               "--wait", "--json", *signing(local_node)))  # fmt: skip
    # A manifest that does not match the file refuses to make a proof.
    (tmp_path / "one.csv").write_text("2\n")
    result = run_cli("audit", "prove-file", str(tmp_path / "one.csv"), "--manifest",
                     str(manifest), "--out", "p", "--node", local_node.url)  # fmt: skip
    assert result.returncode == 2 and "does not match its entry" in result.stderr
    assert not (tmp_path / "p").exists()
    assert nonce_of(local_node) == nonce + 1


def test_a_stream_is_anchored_window_by_window_and_one_reading_proves(
    local_node: LocalNode, tmp_path: Path
) -> None:
    admit_publisher(local_node)
    windows = tmp_path / "windows"
    windows.mkdir()
    stream = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "anchor", "--stream", "--name", "sensor-7",
         "--window", "1s", "--manifest-dir", str(windows), "--json", *signing(local_node)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    first = [f"2026-12-01T10:00:0{i}Z pm2.5={20 + i}.5".encode() for i in range(5)]
    second = [f"2026-12-01T10:00:1{i}Z pm2.5={30 + i}.0".encode() for i in range(3)]
    try:
        assert stream.stdin is not None
        stream.stdin.write(b"\n".join(first) + b"\n")
        stream.stdin.flush()
        wait_for(lambda: list(windows.iterdir()), 30, "the first window's manifest")
        # The end of the input closes the last window.
        out, err = stream.communicate(b"\n".join(second) + b"\n", timeout=60)
    finally:
        if stream.poll() is None:
            stream.kill()
            stream.wait()
    assert stream.returncode == 0, err.decode()
    reports = [json.loads(line) for line in out.decode().splitlines()]
    assert len(reports) >= 2 and all(r["kind"] == "anchor" for r in reports)
    manifests = sorted(windows.iterdir())
    assert [str(m) for m in manifests] == sorted(r["manifest"] for r in reports)
    readings = [
        bytes.fromhex(row["reading"])
        for path in manifests
        for row in json.loads(path.read_text())["entries"]
    ]
    assert readings == first + second

    last = json.loads(manifests[-1].read_text())
    wait_for(lambda: NodeClient(local_node.url).get(f"/txs/{last['tx_id']}")["status"] ==
             "committed", 30, "the last window's anchor to commit")  # fmt: skip
    proof = tmp_path / "reading.proof"
    ok(run_cli("audit", "prove-file", "--manifest", str(manifests[-1]), "--index", "1", "--out",
               str(proof), "--node", local_node.url, "--json"))  # fmt: skip
    reading = bytes.fromhex(last["entries"][1]["reading"]).decode()
    pin = local_node.made["genesis_hash"]
    checked = ok(run_cli("audit", "check-file", "--reading", reading, str(proof),
                         "--genesis-hash", pin, "--json"))  # fmt: skip
    assert checked["index"] == 1 and checked["name"] == "sensor-7"
    assert checked["window_start_ms"] == last["window_start_ms"]
    other = run_cli("audit", "check-file", "--reading", reading + "0", str(proof),
                    "--genesis-hash", pin)  # fmt: skip
    assert other.returncode == 1 and "content is not the anchored" in other.stdout
