"""Sealed records end to end on two validators: a business records an invoice naming a
household with a memo holding a unique marker; the marker reaches no file under either
node's data folder and no export, the household and the auditor read it with their own
keys, the proof file with its salt shows the document is the one recorded, and after
`tx erase` nobody reads it while `audit verify` of an export still passes. Unsigned
reads get 401, a third member 403, the household's access log lists the auditor's read,
and the explorer's pages show neither the memo nor the amount: issue 13's whole list on
one sealed record."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from cli.client import NodeClient, ReadSigner
from node.keyfile import read_keystore, unlock_key
from tests.e2e.conftest import PASSWORD, Network, fetch, run_cli, wait_for

pytestmark = pytest.mark.e2e


def files_holding(folders: list[Path], needle: bytes) -> list[Path]:
    """Return every file under the folders whose bytes contain the needle."""
    return [
        path
        for folder in folders
        for path in folder.rglob("*")
        if path.is_file() and needle in path.read_bytes()
    ]


def test_a_sealed_invoice_is_private_readable_by_its_parties_and_erasable(
    two_validators: Network, tmp_path: Path
) -> None:
    net = two_validators
    first, second = (node["api_url"] for node in net.made["nodes"])
    keystore = Path(net.made["keystore"])
    signing = ["--keystore", str(keystore), "--password-file", str(net.password_file)]

    def cli(*args: str, node: str = first) -> tuple[int, str, str]:
        done = run_cli(*args, "--node", node, *signing)
        return done.returncode, done.stdout, done.stderr

    def ok(*args: str, node: str = first) -> dict[str, object]:
        code, out, err = cli(*args, "--json", node=node)
        assert code == 0, err
        return json.loads(out)  # type: ignore[no-any-return]

    members = {}
    roles = [("shop", "business"), ("home", "household"), ("auditor", "auditor"),
             ("other-auditor", "auditor"), ("neighbour", "household")]  # fmt: skip
    for name, role in roles:
        made = run_cli("keys", "new", name, *signing, "--json")
        assert made.returncode == 0, made.stderr
        key = json.loads(made.stdout)
        members[name] = key
        ok("member", "admit", key["address"], "--role", role,
           "--encryption-key", key["encryption_key"], "--from", "registrar", "--wait")  # fmt: skip
    ok(
        "member",
        "audit-keys",
        members["auditor"]["encryption_key"],
        "--from",
        "registrar",
        "--wait",
    )

    marker = f"marker-{uuid.uuid4().hex}"
    document = tmp_path / "invoice-7.pdf"
    document.write_bytes(b"%PDF invoice 7 for the household")
    recorded = ok(
        "tx", "record", "--from", "shop", "--category", "invoice", "--doc", str(document),
        "--amount", "1500000", "--counterparty", members["home"]["address"],
        "--memo", marker, "--wait",
    )  # fmt: skip
    assert recorded["kind"] == "sealed_record" and recorded["status"] == "committed"
    record_id = str(recorded["tx_id"])

    # Nodes serve the record without its private fields, even to an auditor's signed read;
    # the parties open it locally, on either node (the content was gossiped beside it).
    auditor = ReadSigner(unlock_key(read_keystore(keystore / "auditor.json"), PASSWORD))
    readers = [NodeClient(url, timeout_s=5, signer=auditor) for url in (first, second)]
    path = f"/records/{record_id}"
    served = readers[0].get(path)
    assert served["memo"] == "" and served["amount"] is None and marker not in json.dumps(served)
    wait_for(lambda: readers[1].get(path)["sealed"]["envelope"], 30, "the gossiped content")
    for reader in ("home", "auditor", "shop"):
        opened = ok("query", "record", record_id, "--from", reader, node=second)
        assert (opened["memo"], opened["amount"]) == (marker, 1500000)
    # Unsigned: 401. A third member: 403, in one line. The household's access log on that
    # node lists the auditor's read (its own reads are not logged).
    status, body = fetch(f"{first}/records/{record_id}")
    assert status == 401 and json.loads(body)["error"] == "auth_required"
    code, out, err = cli("query", "record", record_id, "--from", "neighbour")
    assert code == 1 and "not allowed" in err and len(err.strip().splitlines()) == 1
    log = ok("query", "access-log", "--from", "home", node=second)
    readers_logged = {(e["reader"], e["route"], e["target"]) for e in log["entries"]}
    assert (members["auditor"]["address"], "record", record_id) in readers_logged
    assert all(e["reader"] != members["home"]["address"] for e in log["entries"])
    # The explorer's front, block and record pages show neither the memo nor the amount.
    height = int(recorded["height"])
    for page in ("/", f"/explorer/blocks/{height}", f"/explorer/txs/{record_id}"):
        status, html = fetch(first + page)
        assert status == 200, page
        for private in (marker, "1500000", "1,500,000", "1.500.000"):
            assert private not in html, (page, private)
    # An auditor may read the record, but its key is not an audit key: one line, exit 1.
    code, out, err = cli("query", "record", record_id, "--from", "other-auditor")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "does not open" in err and "Traceback" not in err

    # The member's proof file carries the document's salt; anyone checks the document.
    genesis = str(net.clients[0].get("/status")["genesis_hash"])
    proof = tmp_path / "invoice.proof"
    ok("audit", "prove", record_id, "--out", str(proof), "--doc", str(document), "--from", "shop")
    checked = run_cli("audit", "check-proof", str(proof), "--doc", str(document),
                      "--genesis-hash", genesis)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    other = tmp_path / "other.pdf"
    other.write_bytes(b"%PDF another document")
    wrong = run_cli("audit", "check-proof", str(proof), "--doc", str(other),
                    "--genesis-hash", genesis)  # fmt: skip
    assert wrong.returncode == 1 and "not the one recorded" in wrong.stdout

    # The marker is on no node's disk and in no export: only ciphertext left the shop.
    export = tmp_path / "chain.dnx"
    assert cli("chain", "export", "--out", str(export), "--from", "auditor")[0] == 0
    homes = [Path(node["home"]) for node in net.made["nodes"]]
    assert files_holding([*homes, export.parent], marker.encode()) == []

    # Erased: the content is gone from both nodes, nobody opens it, the chain verifies.
    erased = ok("tx", "erase", record_id, "--from", "shop", "--wait")
    assert erased["status"] == "committed"
    for client in readers:
        wait_for(lambda c=client: c.get(path)["sealed"]["erased"], 30, "the erasure")
        assert client.get(path)["sealed"]["envelope"] is None
    code, out, err = cli("query", "record", record_id, "--from", "home", node=second)
    assert code == 1 and "erased" in err and len(err.strip().splitlines()) == 1
    after = tmp_path / "after-erase.dnx"
    exported = cli("chain", "export", "--out", str(after), "--from", "auditor", node=second)
    assert exported[0] == 0, exported[2]
    verified = run_cli("audit", "verify", "--file", str(after), "--genesis-hash", genesis)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert marker not in verified.stdout + verified.stderr
    assert files_holding([*homes, after.parent], marker.encode()) == []
