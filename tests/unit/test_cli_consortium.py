"""node init, genesis create and node join: what they write, and bad input refused with
one line, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from danangchain.genesis import decode_genesis_json
from danangchain.registry import encode_card_json, sign_card
from node.keyfile import read_keystore, unlock_key

PASSWORD = "correct horse battery"


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "pw.txt"
    path.write_text(PASSWORD + "\n")
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def init(folder: Path, name: str, port: int, password_file: Path, scheme: str = "http") -> Path:
    code, output = run(
        "node", "init", str(folder / name), "--name", name,
        "--p2p-url", f"{scheme}://127.0.0.{11 + port % 7}:{26000 + port}",
        "--api-url", f"http://127.0.0.1:{27000 + port}",
        "--password-file", str(password_file), "--json",
    )  # fmt: skip
    assert code == 0, output
    return folder / name / "node-card.json"


def registrar_key(folder: Path, password_file: Path) -> str:
    keystore = str(folder / "keys")
    code, output = run("keys", "new", "registrar", "--keystore", keystore,
                       "--password-file", str(password_file))  # fmt: skip
    assert code == 0, output
    code, output = run("keys", "show", "registrar", "--keystore", keystore, "--json")
    return str(json.loads(output)["public_key"])


def create(out: Path, cards: list[Path], registrar: str, *extra: str) -> tuple[int, str]:
    args = ["genesis", "create", "--chain-id", "danang", "--out", str(out), "--json"]
    for card in cards:
        args += ["--validator", str(card)]
    return run(*args, "--registrar", registrar, *extra)


def test_the_same_cards_in_any_order_give_one_genesis_each_home_joins(
    tmp_path: Path, password_file: Path
) -> None:
    cards = [init(tmp_path, f"dept{i}", i, password_file, "https") for i in range(3)]
    registrar = registrar_key(tmp_path, password_file)
    code, first = create(tmp_path / "a.json", cards, registrar)
    assert code == 0, first
    code, second = create(tmp_path / "b.json", list(reversed(cards)), registrar)
    assert code == 0, second
    digest = json.loads(first)["genesis_hash"]
    assert json.loads(second)["genesis_hash"] == digest
    genesis = decode_genesis_json((tmp_path / "a.json").read_text())
    assert len(genesis.nodes) == 3 and all(c.tls_certificate for c in genesis.nodes)
    for i in range(3):
        code, output = run("node", "join", str(tmp_path / f"dept{i}"), "--genesis",
                           str(tmp_path / "a.json"), "--genesis-hash", digest)  # fmt: skip
        assert code == 0, output
    key = (tmp_path / "dept0" / "tls" / "node.key").read_bytes()
    assert b"ENCRYPTED" in key


def test_a_tampered_card_is_refused_and_no_genesis_is_written(
    tmp_path: Path, password_file: Path
) -> None:
    cards = [init(tmp_path, f"dept{i}", i, password_file) for i in range(2)]
    document = json.loads(cards[1].read_text())
    document["p2p_urls"] = ["http://10.6.6.6:26656"]
    cards[1].write_text(json.dumps(document))
    code, output = create(tmp_path / "g.json", cards, registrar_key(tmp_path, password_file))
    assert code == 2
    assert "signature does not match" in output and len(output.strip().splitlines()) == 1
    assert not (tmp_path / "g.json").exists()


@pytest.mark.parametrize("problem", ["same card twice", "same name", "bad registrar"])
def test_genesis_create_refuses_duplicates_and_bad_keys(
    tmp_path: Path, password_file: Path, problem: str
) -> None:
    cards = [init(tmp_path, "dept0", 0, password_file), init(tmp_path, "dept1", 1, password_file)]
    registrar = registrar_key(tmp_path, password_file)
    if problem == "same card twice":
        cards.append(cards[0])
    elif problem == "same name":
        cards.append(init(tmp_path / "other", "dept0", 2, password_file))
    else:
        registrar = "00" * 32
    code, output = create(tmp_path / "g.json", cards, registrar)
    assert code == 2, output
    assert output.startswith("error: ") and len(output.strip().splitlines()) == 1
    assert not (tmp_path / "g.json").exists()


def test_node_init_refuses_a_malformed_peer_url_and_writes_nothing(
    tmp_path: Path, password_file: Path
) -> None:
    code, output = run("node", "init", str(tmp_path / "x"), "--name", "x",
                       "--p2p-url", "http://10.0.0.2:26656/p2p",
                       "--password-file", str(password_file))  # fmt: skip
    assert code == 2 and "not a peer URL" in output
    assert not (tmp_path / "x").exists()


def test_node_join_refuses_a_genesis_whose_hash_is_not_the_announced_one(
    tmp_path: Path, password_file: Path
) -> None:
    card = init(tmp_path, "dept0", 0, password_file)
    code, _ = create(tmp_path / "g.json", [card], registrar_key(tmp_path, password_file))
    assert code == 0
    code, output = run("node", "join", str(tmp_path / "dept0"), "--genesis",
                       str(tmp_path / "g.json"), "--genesis-hash", "ab" * 32)  # fmt: skip
    assert code == 2 and "not the announced" in output
    assert not (tmp_path / "dept0" / "genesis.json").exists()


def test_node_join_accepts_a_genesis_that_does_not_list_a_later_full_node(
    tmp_path: Path, password_file: Path
) -> None:
    init(tmp_path, "dept0", 0, password_file)
    other = init(tmp_path, "dept1", 1, password_file)
    code, _ = create(tmp_path / "g.json", [other], registrar_key(tmp_path, password_file))
    assert code == 0
    code, output = run(
        "node", "join", str(tmp_path / "dept0"), "--genesis", str(tmp_path / "g.json")
    )
    assert code == 0, output


def test_node_join_refuses_a_genesis_that_lists_this_key_with_another_card(
    tmp_path: Path, password_file: Path
) -> None:
    card_path = init(tmp_path, "dept0", 0, password_file)
    key = unlock_key(read_keystore(tmp_path / "dept0" / "node_key.json"), PASSWORD)
    # The same key, signed for another address: a card that is not this home's.
    moved = sign_card(key, "dept0", ["http://10.9.9.9:26656"], None)
    (tmp_path / "moved.json").write_text(encode_card_json(moved))
    code, output = create(
        tmp_path / "g.json", [tmp_path / "moved.json"], registrar_key(tmp_path, password_file)
    )
    assert code == 0, output
    code, output = run(
        "node", "join", str(tmp_path / "dept0"), "--genesis", str(tmp_path / "g.json")
    )
    assert code == 2 and "another card" in output
    assert not (tmp_path / "dept0" / "genesis.json").exists()
    assert card_path.exists()
