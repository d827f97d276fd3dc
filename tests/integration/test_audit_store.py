"""Auditing a node's LevelDB data folder, tampered one way at a time, through the real CLI;
exporting it, and seeding a new node from the export."""

from __future__ import annotations

import contextlib
import json
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import plyvel
import pytest
from click.testing import CliRunner, Result

from cli.chain_sources import describe_state_key
from cli.main import cli
from danangchain.block import Block, encode_block
from danangchain.encoding import pack
from danangchain.genesis import encode_genesis_json
from danangchain.state import KEY_NEXT_VALIDATORS, PREFIX_MEMBER, decode_member, encode_member
from danangchain.transaction import compute_tx_id, encode_transaction
from danangchain.validators import (
    Validator,
    ValidatorSet,
    encode_certificate,
    encode_validator_set,
)
from node.config import NodeConfig, render_config
from node.storage.schema import (
    META_SCHEMA,
    TABLE_ADDRESS_RECORD,
    TABLE_STATE,
    TABLE_TX,
    block_key,
    certificate_key,
    decode_height,
    state_key,
    tx_key,
)
from node.storage.store import Store
from tests.unit.audit_fixtures import (
    FOUR_VALIDATORS,
    BuiltChain,
    alice,
    build_chain,
    forge_blocks,
    forged_tip,
    relink,
    small_task_prefetch,
    write_store,
)
from tests.unit.ledger_fixtures import address_of, certify, make_key

TIP = 6  # build_chain(4) makes six blocks


@pytest.fixture(scope="module")
def chain() -> BuiltChain:
    """A one-validator chain of six blocks."""
    return build_chain(4)


@dataclass
class Home:
    """A node home as 'network init' makes it, its data written by the store."""

    path: Path
    chain: BuiltChain

    @property
    def data(self) -> Path:
        return self.path / "data"

    @contextlib.contextmanager
    def raw(self) -> Iterator[plyvel.DB]:
        """Open the data folder's LevelDB directly, as a tamperer would."""
        db = plyvel.DB(str(self.data))
        try:
            yield db
        finally:
            db.close()


def make_home(folder: Path, chain: BuiltChain, with_data: bool = True) -> Home:
    """Write config.toml and genesis.json into folder and, if asked, the chain's data."""
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(render_config(NodeConfig(home=folder, name="audited")))
    (folder / "genesis.json").write_text(encode_genesis_json(chain.genesis))
    if with_data:
        write_store(chain, folder / "data")
    return Home(folder, chain)


@pytest.fixture
def home(tmp_path: Path, chain: BuiltChain) -> Home:
    """A stopped node's home holding the valid chain."""
    return make_home(tmp_path / "node0", chain)


def run(*args: str) -> Result:
    """Run the CLI in-process."""
    return CliRunner().invoke(cli, list(args))


def verify_home(home: Home, *extra: str) -> tuple[int, dict[str, Any]]:
    """Run audit verify --home --json; return the exit code and the report."""
    result = run("audit", "verify", "--home", str(home.path), "--json", *extra)
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}


def assert_invalid(home: Home, height: int, fragment: str) -> dict[str, Any]:
    """Verification must exit 1 at `height` with `fragment` in the reason."""
    code, report = verify_home(home)
    assert code == 1, report
    assert report["valid"] is False
    assert report["failed_height"] == height and fragment in report["reason"], report
    return report


# A valid data folder


def test_valid_data_folder_verifies(home: Home, chain: BuiltChain) -> None:
    code, report = verify_home(home, "--genesis-hash", chain.genesis.hash.hex())
    assert code == 0, report
    assert report["valid"] is True and report["genesis_pinned"] is True
    assert report["heights_checked"] == TIP
    assert report["transactions_checked"] == sum(len(b.tx_bytes) for b in chain.blocks)
    assert report["validators_seen"] == 1 and report["seconds"] >= 0
    assert report["tip_hash"] == chain.tip.block_hash.hex()


def test_verify_does_not_write_to_the_data_folder(home: Home) -> None:
    before = {p.name: p.read_bytes() for p in home.data.iterdir() if p.suffix == ".ldb"}
    assert verify_home(home)[0] == 0
    after = {p.name: p.read_bytes() for p in home.data.iterdir() if p.suffix == ".ldb"}
    assert before.items() <= after.items()
    assert Store.open(str(home.data)).get_tip() == home.chain.tip


def test_readable_report(home: Home) -> None:
    result = run("audit", "verify", "--home", str(home.path))
    assert result.exit_code == 0
    assert result.stdout.startswith(f"valid: {TIP} blocks")
    assert "NOT pinned" in result.stdout


# Tampered data folders


@pytest.mark.parametrize("height", [1, 3, TIP])
def test_flipped_bit_in_a_stored_block_fails_at_that_block(home: Home, height: int) -> None:
    with home.raw() as db:
        stored = db.get(block_key(height))
    for position in range(0, len(stored), max(1, len(stored) // 12)):
        with home.raw() as db:
            db.put(
                block_key(height),
                stored[:position] + bytes([stored[position] ^ 4]) + stored[position + 1 :],
            )
        code, report = verify_home(home)
        assert code == 1 and report["failed_height"] == height, (position, report)
    with home.raw() as db:
        db.put(block_key(height), stored)
    assert verify_home(home)[0] == 0


def test_changed_state_entry_fails_at_the_tip(home: Home) -> None:
    key = state_key(PREFIX_MEMBER + address_of(alice))
    with home.raw() as db:
        member = decode_member(db.get(key))
        db.put(key, encode_member(replace(member, nonce=member.nonce + 5)))
    assert_invalid(home, TIP, "state entry of member dn1")


def test_added_and_removed_state_entries_fail_at_the_tip(home: Home) -> None:
    with home.raw() as db:
        db.put(state_key(b"R" + bytes(32)), b"\x90")
    assert_invalid(home, TIP, "is not in the replay")
    with home.raw() as db:
        db.delete(state_key(b"R" + bytes(32)))
        db.delete(state_key(PREFIX_MEMBER + address_of(alice)))
    assert_invalid(home, TIP, "is missing from the store")


def test_validator_set_changed_in_the_data_folder_fails_at_the_tip(home: Home) -> None:
    # A validator set written into state without the votes that change it.
    others = ValidatorSet.of([Validator(make_key(31).public_key, "usurper")])
    with home.raw() as db:
        db.put(state_key(KEY_NEXT_VALIDATORS), encode_validator_set(others))
    assert_invalid(home, TIP, "of the upcoming validator set differs from the replay")


def test_reordered_transactions_rewritten_into_the_data_folder_fail_on_the_certificate(
    home: Home, chain: BuiltChain
) -> None:
    # The tamperer rewrites blocks 4.. with recomputed roots and links, and the tip.
    forged = forge_blocks(chain, 4, lambda txs: [txs[1], txs[0], *txs[2:]])
    tip = forged_tip(forged)
    with home.raw() as db:
        for block in forged[3:]:
            db.put(block_key(block.height), encode_block(block))
        db.put(b"mtip", pack([tip.height, tip.block_hash, tip.time_ms, tip.state_root]))
    assert_invalid(home, 4, "the certificate of block 4 is for block")


def test_removed_block_fails_at_its_height(home: Home) -> None:
    with home.raw() as db:
        db.delete(block_key(3))
    assert_invalid(home, 3, "block 3 is missing")


def test_duplicated_block_fails_after_it(home: Home) -> None:
    with home.raw() as db:
        db.put(block_key(4), db.get(block_key(3)))
    assert_invalid(home, 4, "height 3 does not follow 3")


def test_block_beyond_the_stored_tip_fails(home: Home, chain: BuiltChain) -> None:
    with home.raw() as db:
        db.put(
            b"mtip",
            pack(
                [
                    TIP - 1,
                    chain.blocks[-2].hash,
                    chain.blocks[-2].header.time_ms,
                    chain.blocks[-2].header.state_root,
                ]
            ),
        )
    assert_invalid(home, TIP, "claims its tip at height 5")


def test_missing_certificate_fails_at_its_block(home: Home) -> None:
    with home.raw() as db:
        db.delete(certificate_key(2))
    assert_invalid(home, 2, "certificate of block 2 is missing")


def test_changed_transaction_index_fails_at_its_block(home: Home, chain: BuiltChain) -> None:
    tx_id = compute_tx_id(chain.blocks[1].tx_bytes[0])
    with home.raw() as db:
        db.put(tx_key(tx_id), pack([2, 3]))
    report = assert_invalid(home, 2, "transaction index")
    assert report["tx_id"] == tx_id.hex()


# With signature workers: the same report as without, whatever the fault and its height


@pytest.fixture(scope="module")
def late_chain() -> BuiltChain:
    """Fifteen blocks, most of four transactions."""
    return build_chain(10)


def verify_home_both_ways(home: Home, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Verify without workers and with two (one block read ahead, tasks of two signatures,
    so that tasks span blocks and blocks span tasks); return the report both give."""
    code, alone = verify_home(home, "--workers", "1")
    with monkeypatch.context() as patched:
        patched.setattr("cli.audit.SignaturePrefetch", small_task_prefetch)
        code_with_workers, with_workers = verify_home(home, "--workers", "2")
    assert code == code_with_workers
    alone.pop("seconds"), with_workers.pop("seconds")
    assert alone == with_workers, "workers changed the audit's result"
    return alone


def rewrite_blocks(home: Home, blocks: list[Block], start: int) -> None:
    """Write blocks[start:] over the stored ones, and the tip they end at."""
    tip = forged_tip(blocks)
    with home.raw() as db:
        for block in blocks[start:]:
            db.put(block_key(block.height), encode_block(block))
        db.put(b"mtip", pack([tip.height, tip.block_hash, tip.time_ms, tip.state_root]))


def test_workers_give_the_same_report_on_a_valid_data_folder(
    tmp_path: Path, late_chain: BuiltChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = verify_home_both_ways(make_home(tmp_path / "node0", late_chain), monkeypatch)
    assert report["valid"] is True and report["heights_checked"] == len(late_chain.blocks)


@pytest.mark.parametrize("index", [0, 2])
def test_workers_give_the_same_bad_signature_in_a_late_stored_block(
    tmp_path: Path, late_chain: BuiltChain, monkeypatch: pytest.MonkeyPatch, index: int
) -> None:
    home, height = make_home(tmp_path / "node0", late_chain), 13
    original = late_chain.blocks[height - 1].transactions[index]
    signature = original.signature
    flipped = signature[:5] + bytes([signature[5] ^ 8]) + signature[6:]
    changed = encode_transaction(replace(original, signature=flipped))
    edit = lambda txs: [*txs[:index], changed, *txs[index + 1 :]]  # noqa: E731
    rewrite_blocks(home, forge_blocks(late_chain, height, edit), height - 1)
    report = verify_home_both_ways(home, monkeypatch)
    assert report["failed_height"] == height and report["tx_id"] == compute_tx_id(changed).hex()
    assert report["reason"] == (
        f"transaction {index}: signature does not verify for the sender's key"
    )


def test_workers_give_the_same_bad_state_root_in_a_late_stored_block(
    tmp_path: Path, late_chain: BuiltChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, height = make_home(tmp_path / "node0", late_chain), 14
    blocks = list(late_chain.blocks)
    header = blocks[height - 1].header
    blocks[height - 1] = replace(blocks[height - 1], header=replace(header, state_root=bytes(32)))
    rewrite_blocks(home, relink(late_chain.genesis, blocks, height), height - 1)
    report = verify_home_both_ways(home, monkeypatch)
    assert report["failed_height"] == height
    assert report["reason"] == "state root does not match the result of the transactions"


def test_workers_give_the_same_undecodable_late_stored_block(
    tmp_path: Path, late_chain: BuiltChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, height = make_home(tmp_path / "node0", late_chain), 12
    with home.raw() as db:
        stored = db.get(block_key(height))
        db.put(block_key(height), stored[:-3])
    report = verify_home_both_ways(home, monkeypatch)
    assert report["failed_height"] == height and "does not decode" in report["reason"]


def flip_file_bits(home: Home, suffix: str, share: float) -> list[int]:
    """Flip one bit at sampled positions of the data folder's one `suffix` file, each time in
    a fresh copy of it; return the exit codes of audit verify."""
    pristine = home.path / "pristine"
    shutil.copytree(home.data, pristine)
    (name,) = [p.name for p in pristine.iterdir() if p.suffix == suffix]
    original = (pristine / name).read_bytes()
    codes = []
    for position in range(0, int(len(original) * share), 61):
        shutil.rmtree(home.data)
        shutil.copytree(pristine, home.data)
        changed = (
            original[:position] + bytes([original[position] ^ 0x10]) + original[position + 1 :]
        )
        (home.data / name).write_bytes(changed)
        codes.append(run("audit", "verify", "--home", str(home.path)).exit_code)
    return codes


def test_flipped_bit_in_the_write_ahead_log_is_caught(home: Home) -> None:
    # As a node leaves it, the data sits in LevelDB's log, every byte under a checksum.
    codes = flip_file_bits(home, ".log", 1.0)
    assert len(codes) > 100 and set(codes) == {1}


def test_flipped_bit_in_a_table_file_is_caught(home: Home) -> None:
    assert verify_home(home)[0] == 0  # opening it moves the log into a table file
    # The data blocks open the table file; its index and footer follow them.
    codes = flip_file_bits(home, ".ldb", 0.5)
    assert len(codes) > 30 and set(codes) == {1}


# Unreadable entries: one LevelDB data block of one kind of key, its checksum broken


@pytest.fixture(scope="module")
def long_chain() -> BuiltChain:
    """A chain long enough that each index and the state fill LevelDB blocks of their own."""
    return build_chain(16)


@dataclass
class DataBlock:
    """One data block of a LevelDB table file: where it lies and its (user key, value)s."""

    offset: int
    size: int
    entries: list[tuple[bytes, bytes]]


def read_varint(data: bytes, position: int) -> tuple[int, int]:
    """Return a LevelDB varint and the position after it."""
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def read_block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield (key, value) of a block's contents: prefix-compressed entries, then restarts."""
    (restarts,) = struct.unpack("<I", block[-4:])
    end, position, key = len(block) - 4 - 4 * restarts, 0, b""
    while position < end:
        shared, position = read_varint(block, position)
        unshared, position = read_varint(block, position)
        size, position = read_varint(block, position)
        key = key[:shared] + block[position : position + unshared]
        position += unshared
        yield key, block[position : position + size]
        position += size


def read_plain_block(table: bytes, handle: bytes) -> tuple[int, bytes]:
    """Return the offset and contents of the block a handle points to (uncompressed)."""
    offset, position = read_varint(handle, 0)
    size, _ = read_varint(handle, position)
    assert table[offset + size] == 0, "the block is compressed"
    return offset, table[offset : offset + size]


def read_data_blocks(table: bytes) -> list[DataBlock]:
    """Return the data blocks of a LevelDB table file (leveldb's doc/table_format.md)."""
    footer = table[-48:]
    position = read_varint(footer, read_varint(footer, 0)[1])[1]  # past the metaindex handle
    _, index = read_plain_block(table, footer[position:])
    blocks = []
    for _, handle in read_block_entries(index):
        offset, contents = read_plain_block(table, handle)
        # Keys in a table end with 8 bytes of sequence number and kind.
        entries = [(key[:-8], value) for key, value in read_block_entries(contents)]
        blocks.append(DataBlock(offset, len(contents), entries))
    return blocks


def make_one_table_home(
    folder: Path, chain: BuiltChain, extra: dict[bytes, bytes] | None = None
) -> tuple[Home, Path]:
    """Make a home whose data (and any extra entries) sits in one table file of small
    uncompressed blocks."""
    home = make_home(folder, chain)
    db = plyvel.DB(str(home.data), compression=None, block_size=1024)
    try:
        # A second table file makes the compaction rewrite both as one, not move the first.
        db.put(META_SCHEMA, db.get(META_SCHEMA))
        for key, value in (extra or {}).items():
            db.put(key, value)
        db.compact_range(start=b"\x00", stop=b"\xff")
    finally:
        db.close()
    (table,) = [p for p in home.data.iterdir() if p.suffix == ".ldb"]
    return home, table


def blocks_holding_only(table: Path, prefix: bytes) -> list[DataBlock]:
    """Return the table's data blocks whose keys all start with `prefix` (at least one)."""
    blocks = [
        block
        for block in read_data_blocks(table.read_bytes())
        if all(key.startswith(prefix) for key, _ in block.entries)
    ]
    assert blocks, f"no block holds only {prefix!r} keys: make the chain longer"
    return blocks


@contextlib.contextmanager
def unreadable(table: Path, block: DataBlock) -> Iterator[None]:
    """Flip one bit inside a data block, so that LevelDB's checksum fails; then restore it."""
    original = table.read_bytes()
    position = block.offset + block.size // 2
    flipped = bytes([original[position] ^ 0x10])
    table.write_bytes(original[:position] + flipped + original[position + 1 :])
    try:
        yield
    finally:
        table.write_bytes(original)


def test_unreadable_transaction_index_entry_fails_at_its_block(
    tmp_path: Path, long_chain: BuiltChain
) -> None:
    home, table = make_one_table_home(tmp_path / "node0", long_chain)
    assert verify_home(home)[0] == 0
    height_of = {
        compute_tx_id(tx): block.height for block in long_chain.blocks for tx in block.tx_bytes
    }
    for block in blocks_holding_only(table, TABLE_TX):
        unreadable_ids = {key[1:] for key, _ in block.entries}
        height = min(height_of[tx_id] for tx_id in unreadable_ids)
        with unreadable(table, block):
            report = assert_invalid(home, height, "the transaction index entry of transaction")
        assert "is unreadable: LevelDB reports corruption" in report["reason"]
        tx_id = bytes.fromhex(report["tx_id"])
        assert tx_id in unreadable_ids and height_of[tx_id] == height
    assert verify_home(home)[0] == 0


def test_unreadable_record_index_entry_fails_at_its_block(
    tmp_path: Path, long_chain: BuiltChain
) -> None:
    home, table = make_one_table_home(tmp_path / "node0", long_chain)
    assert verify_home(home)[0] == 0
    for block in blocks_holding_only(table, TABLE_ADDRESS_RECORD):
        # A record index key: the table byte, an address (20 bytes), the height, the index.
        height = min(decode_height(key[21:29]) or 0 for key, _ in block.entries)
        with unreadable(table, block):
            report = assert_invalid(home, height, "the record index entry of dn1")
        assert "is unreadable: LevelDB reports corruption" in report["reason"]
        assert bytes.fromhex(report["tx_id"]) in {tx_id for _, tx_id in block.entries}
    assert verify_home(home)[0] == 0


def test_unreadable_state_entry_fails_at_the_tip(tmp_path: Path, long_chain: BuiltChain) -> None:
    home, table = make_one_table_home(tmp_path / "node0", long_chain)
    assert verify_home(home)[0] == 0
    for block in blocks_holding_only(table, TABLE_STATE):
        first_key = block.entries[0][0][len(TABLE_STATE) :]
        with unreadable(table, block):
            report = assert_invalid(
                home, long_chain.tip.height, f"the state entry {describe_state_key(first_key)}"
            )
        assert "is unreadable: LevelDB reports corruption" in report["reason"]
    assert verify_home(home)[0] == 0


def test_unreadable_index_entry_no_block_accounts_for_fails_at_the_tip(
    tmp_path: Path, chain: BuiltChain
) -> None:
    # Record index entries of an address no transaction names, enough to fill blocks alone.
    stray = TABLE_ADDRESS_RECORD + b"\xff" * 20
    extra = {stray + struct.pack(">QI", height, 0): bytes(32) for height in range(1, 60)}
    home, table = make_one_table_home(tmp_path / "node0", chain, extra)
    assert_invalid(home, TIP, "the record index has")  # seen by the count alone
    with unreadable(table, blocks_holding_only(table, stray)[0]):
        report = assert_invalid(home, TIP, "while counting certificates and index entries")
    assert "one is unreadable: LevelDB reports corruption" in report["reason"]


def test_bad_tip_certificate_in_a_four_validator_store_fails_at_the_tip(tmp_path: Path) -> None:
    chain = build_chain(2, FOUR_VALIDATORS)
    home = make_home(tmp_path / "bft", chain)
    tip = len(chain.blocks)
    with home.raw() as db:
        thin = certify(chain.blocks[-1], FOUR_VALIDATORS[:2])
        db.put(certificate_key(tip), encode_certificate(thin))
    assert_invalid(home, tip, "has power 2, needs 3")


# Refusals: one line, exit 2


def test_running_node_is_refused_in_one_line(home: Home) -> None:
    with home.raw():  # a running node holds LevelDB's lock
        result = run("audit", "verify", "--home", str(home.path))
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "in use" in result.stderr
    assert "stop that node" in result.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        ([], "exactly one of"),
        (["--file", "a", "--node", "http://x"], "exactly one of"),
        (["--home", "{missing}"], "not found"),
        (["--home", "{nodata}"], "no node data"),
        (["--file", "{missing}"], "cannot read"),
        (["--file", "{genesis}"], "not a DanangChain export"),
        (["--home", "{home}", "--genesis-hash", "xyz"], "64 hex"),
        (["--node", "http://127.0.0.1:1"], "cannot reach"),
        (["--node", "ftp://x"], "http://"),
    ],
)
def test_usage_and_io_errors_exit_2_in_one_line(
    tmp_path: Path, home: Home, chain: BuiltChain, args: list[str], fragment: str
) -> None:
    nodata = make_home(tmp_path / "nodata", chain, with_data=False)
    names = {
        "missing": str(tmp_path / "missing"),
        "nodata": str(nodata.path),
        "home": str(home.path),
        "genesis": str(home.path / "genesis.json"),
    }
    result = run("audit", "verify", *[a.format(**names) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert not (nodata.path / "data").exists()


def test_pinned_genesis_that_differs_is_invalid_at_height_zero(home: Home) -> None:
    code, report = verify_home(home, "--genesis-hash", "ab" * 32)
    assert code == 1 and report["failed_height"] == 0 and "pinned" in report["reason"]


# Export and import


def test_export_from_home_verifies_and_seeds_a_new_node(
    tmp_path: Path, home: Home, chain: BuiltChain
) -> None:
    export = tmp_path / "chain.dnx"
    made = run("chain", "export", "--home", str(home.path), "--out", str(export), "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["height"] == TIP
    pin = chain.genesis.hash.hex()
    verified = run("audit", "verify", "--file", str(export), "--genesis-hash", pin, "--json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["heights_checked"] == TIP

    fresh = make_home(tmp_path / "node1", chain, with_data=False)
    imported = run("chain", "import", "--file", str(export), "--home", str(fresh.path), "--json")
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout)["height"] == TIP
    code, report = verify_home(fresh, "--genesis-hash", pin)
    assert code == 0 and report["tip_hash"] == chain.tip.block_hash.hex()
    # The node's own startup checks accept it.
    store = Store.open(str(fresh.data))
    try:
        store.check_tip()
        assert store.get_tip() == chain.tip
    finally:
        store.close()


def test_import_of_a_tampered_export_writes_nothing(
    tmp_path: Path, home: Home, chain: BuiltChain
) -> None:
    export = tmp_path / "chain.dnx"
    assert run("chain", "export", "--home", str(home.path), "--out", str(export)).exit_code == 0
    data = bytearray(export.read_bytes())
    data[-40] ^= 1  # inside the end record's claims
    export.write_bytes(bytes(data))
    fresh = make_home(tmp_path / "node1", chain, with_data=False)
    result = run("chain", "import", "--file", str(export), "--home", str(fresh.path))
    assert result.exit_code == 1 and "nothing imported" in result.stderr
    assert not fresh.data.exists() and not (fresh.path / "data.importing").exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["export", "--out", "{out}"], "exactly one of"),
        (["export", "--home", "{missing}", "--out", "{out}"], "not found"),
        (["export", "--home", "{home}", "--out", "{missing}/sub/chain.dnx"], "cannot write"),
        (["export", "--node", "http://127.0.0.1:1", "--out", "{out}"], "cannot reach"),
        (["import", "--file", "{missing}", "--home", "{fresh}"], "cannot read"),
        (["import", "--file", "{genesis}", "--home", "{fresh}"], "not a DanangChain export"),
        (["import", "--file", "{out}", "--home", "{missing}"], "not found"),
    ],
)
def test_chain_command_errors_exit_2_in_one_line(
    tmp_path: Path, home: Home, chain: BuiltChain, args: list[str], fragment: str
) -> None:
    fresh = make_home(tmp_path / "fresh", chain, with_data=False)
    names = {
        "out": str(tmp_path / "chain.dnx"),
        "missing": str(tmp_path / "missing"),
        "home": str(home.path),
        "fresh": str(fresh.path),
        "genesis": str(home.path / "genesis.json"),
    }
    result = run("chain", *[a.format(**names) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert not fresh.data.exists()


def test_import_refuses_a_home_with_data(tmp_path: Path, home: Home) -> None:
    export = tmp_path / "chain.dnx"
    assert run("chain", "export", "--home", str(home.path), "--out", str(export)).exit_code == 0
    result = run("chain", "import", "--file", str(export), "--home", str(home.path))
    assert result.exit_code == 2 and "not empty" in result.stderr


def test_import_refuses_an_export_of_another_chain(tmp_path: Path, home: Home) -> None:
    export = tmp_path / "chain.dnx"
    assert run("chain", "export", "--home", str(home.path), "--out", str(export)).exit_code == 0
    other = make_home(tmp_path / "other", build_chain(1, FOUR_VALIDATORS), with_data=False)
    result = run("chain", "import", "--file", str(export), "--home", str(other.path))
    assert result.exit_code == 2 and "genesis" in result.stderr
    assert not other.data.exists()
