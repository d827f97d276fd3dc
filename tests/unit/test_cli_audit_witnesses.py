"""audit verify with pinned witnesses and saved checkpoints, through the CLI: agreement,
disagreement, and bad input as one line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from danangchain.checkpoint import Checkpoint, encode_checkpoints_file, sign_checkpoint
from tests.unit.audit_fixtures import encode_export
from tests.unit.ledger_fixtures import CHAIN_ID, LocalChain, make_key
from tests.unit.test_checkpoint import forked_chains, tips_of

witness = make_key(21)
outsider = make_key(23)
KEY = witness.public_key.hex()


def export(chain: LocalChain, path: Path) -> Path:
    path.write_bytes(encode_export(chain.genesis, chain.blocks, chain.certificates, chain.tip))
    return path


def saved_checkpoints(chain: LocalChain, path: Path, key: object = witness) -> Path:
    cosignatures = [
        sign_checkpoint(key, Checkpoint(CHAIN_ID, t.height, t.block_hash, t.state_root))  # type: ignore[arg-type]
        for t in tips_of(chain)
        if t.height % 2 == 0
    ]
    path.write_text(encode_checkpoints_file(cosignatures))
    return path


def verify(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["audit", "verify", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    first, second = forked_chains()
    return {
        "first": export(first, tmp_path / "first.dnx"),
        "second": export(second, tmp_path / "second.dnx"),
        "checkpoints": saved_checkpoints(first, tmp_path / "cps.json"),
        "outsider": saved_checkpoints(first, tmp_path / "outsider.json", outsider),
    }


def test_verify_against_saved_checkpoints_passes_the_witnessed_chain_only(
    files: dict[str, Path],
) -> None:
    pins = ["--witness", KEY, "--checkpoints", str(files["checkpoints"])]
    code, out, _ = verify("--file", str(files["first"]), *pins, "--json")
    assert code == 0
    assert json.loads(out)["witnesses"] == {"witnessed_height": 6, "witnesses": {KEY: 6}}
    code, out, _ = verify("--file", str(files["second"]), *pins)
    assert code == 1
    assert out.startswith("INVALID at height 4: block 4 ")  # the first cosigned height after 3
    assert "it agreed with that witness's checkpoint at height 2" in out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--min-witnesses", "1"], "--min-witnesses and --checkpoints need --witness"),
        (["--witness", KEY], "a witness without @URL needs its checkpoints"),
        (["--witness", "12ab"], "the key must be 64 hex characters"),
        (["--witness", f"{KEY}@ftp://x"], "the URL must be scheme://host:port"),
        (["--witness", f"{KEY}@http://a:1", "--witness", f"{KEY}@http://b:1"], "pinned twice"),
        (["--witness", f"{KEY}@http://a:1", "--min-witnesses", "2"], "--min-witnesses 2 needs"),
        (["--witness", KEY, "--checkpoints", "OUTSIDER"], "which is not a pinned witness"),
        (["--witness", KEY, "--checkpoints", "MISSING"], "cannot read"),
        (["--witness", f"{KEY}@http://127.0.0.1:1"], "cannot fetch the checkpoints of the witness"),
    ],
)
def test_bad_witness_options_are_one_line_and_exit_2(
    files: dict[str, Path], arguments: list[str], message: str
) -> None:
    replaced = [
        str(files["outsider"]) if a == "OUTSIDER" else "/nonexistent.json" if a == "MISSING" else a
        for a in arguments
    ]
    code, out, err = verify("--file", str(files["first"]), *replaced)
    assert code == 2, out + err
    assert out == ""
    [line] = err.strip().splitlines()
    assert message in line, line
