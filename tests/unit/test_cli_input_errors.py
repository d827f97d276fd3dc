"""Mistakes a member makes at the command line get a line that says what to do."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli.main import cli
from danangchain.address import encode_address

PASSWORD = "correct horse battery"


def test_a_memo_over_the_limit_gives_its_length_and_why_vietnamese_takes_more() -> None:
    memo = "Hóa đơn tiền điện tháng mười hai " * 12
    result = CliRunner().invoke(
        cli,
        ["tx", "record", "--category", "invoice", "--doc-hash", "ab" * 32, "--memo", memo,
         "--from", "shop", "--node", "http://127.0.0.1:9"],
    )  # fmt: skip
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert f"{len(memo.encode())} bytes" in line and f"{len(memo)} characters" in line
    assert "2 or 3 bytes" in line


def test_a_mistyped_key_name_suggests_the_close_ones(tmp_path: Path) -> None:
    password_file = tmp_path / "pw"
    password_file.write_text(PASSWORD + "\n")
    keystore = str(tmp_path / "keys")
    for name in ("shop", "household"):
        made = CliRunner().invoke(
            cli,
            ["keys", "new", name, "--keystore", keystore, "--password-file", str(password_file)],
        )
        assert made.exit_code == 0, made.output
    result = CliRunner().invoke(cli, ["keys", "show", "shpo", "--keystore", keystore])
    assert result.exit_code == 2
    assert "(did you mean shop?)" in result.output
    result = CliRunner().invoke(cli, ["keys", "show", "zzz", "--keystore", keystore])
    assert result.exit_code == 2 and "did you mean" not in result.output


def test_a_bad_encryption_or_audit_key_is_one_line_exit_2_before_anything_is_signed() -> None:
    node = ["--from", "registrar", "--node", "http://127.0.0.1:9"]
    address = encode_address(bytes(20))
    for arguments in (
        ["member", "admit", address, "--role", "household", "--encryption-key", "zz", *node],
        ["member", "audit-keys", "00" * 32, *node],
        ["member", "audit-keys", "ab" * 31, *node],
    ):
        result = CliRunner().invoke(cli, arguments)
        assert result.exit_code == 2, result.output
        [line] = result.output.strip().splitlines()
        assert "must be an X25519 public key: 64 hex digits" in line, line


def test_keys_new_shows_the_encryption_key_a_registrar_publishes(tmp_path: Path) -> None:
    password_file = tmp_path / "pw"
    password_file.write_text(PASSWORD + "\n")
    keystore = str(tmp_path / "keys")
    made = CliRunner().invoke(
        cli, ["keys", "new", "home", "--keystore", keystore, "--password-file", str(password_file)]
    )
    assert made.exit_code == 0, made.output
    shown = CliRunner().invoke(cli, ["keys", "show", "home", "--keystore", keystore, "--json"])
    key = json.loads(shown.output)["encryption_key"]
    assert len(bytes.fromhex(key)) == 32 and f"encryption key: {key}" in made.output


def test_a_record_without_a_document_is_refused_unless_it_is_a_payment() -> None:
    result = CliRunner().invoke(
        cli,
        ["tx", "record", "--category", "invoice", "--from", "shop", "--node", "http://127.0.0.1:9"],
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: a record of category invoice needs its document: give --doc FILE or --doc-hash HEX"
    )
