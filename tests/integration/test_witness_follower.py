"""The witness's follower and journal, fed real export streams of chains grown in-process:
what it signs survives restarts and torn writes, a fork halts it with evidence, a faulty
source is only set aside."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from danangchain.block import encode_block
from danangchain.export import (
    ExportReader,
    encode_block_record,
    encode_end_record,
    encode_export_header,
)
from danangchain.validators import encode_certificate
from node.witness.feed import FeedError
from node.witness.follower import SigningPolicy, Witness
from node.witness.journal import JournalError, open_journal
from tests.unit.ledger_fixtures import LocalChain, make_key, make_local_chain
from tests.unit.test_checkpoint import MEMBERS, grow

witness_key = make_key(21)


def forked_chains(shared: int = 2, apart: int = 4) -> tuple[LocalChain, LocalChain]:
    first, second = make_local_chain(members=MEMBERS), make_local_chain(members=MEMBERS)
    for chain in (first, second):
        grow(chain, shared, "shared")
    grow(first, apart, "first")
    grow(second, apart, "second")
    return first, second


class Feeds:
    """Export streams of chains by URL, as a node serves GET /chain/export?from=H."""

    def __init__(self, **chains: LocalChain) -> None:
        self.chains = {f"http://{name}": chain for name, chain in chains.items()}
        self.blocks: dict[str, list[bytes]] = {
            url: [encode_block(b) for b in chain.blocks] for url, chain in self.chains.items()
        }

    @contextmanager
    def open(self, url: str, first: int) -> Iterator[ExportReader]:
        if url not in self.chains:
            raise FeedError(f"cannot reach {url}")
        chain = self.chains[url]
        parts = [encode_export_header(chain.genesis, chain.tip.height)]
        for block, certificate in list(zip(self.blocks[url], chain.certificates, strict=True))[
            first - 1 :
        ]:
            parts.append(encode_block_record(block, encode_certificate(certificate)))
        parts.append(encode_end_record(chain.tip))
        yield ExportReader(io.BytesIO(b"".join(parts)).read, first)


def make_witness(home: Path, feeds: Feeds, *urls: str, every: int = 2) -> Witness:
    chain = next(iter(feeds.chains.values()))
    journal = open_journal(home)
    journal.bind(chain.genesis, witness_key.public_key)
    return Witness(
        witness_key,
        chain.genesis,
        journal,
        list(urls),
        SigningPolicy(every, 3600.0),
        feeds.open,
        clock=lambda: 0.0,
    )


def test_a_witness_cosigns_every_n_blocks_and_a_restart_signs_nothing_twice(
    tmp_path: Path,
) -> None:
    first, _ = forked_chains()
    feeds = Feeds(a=first)
    witness = make_witness(tmp_path, feeds, "http://a")
    witness.poll()
    assert witness.auditor.tip == first.tip
    assert [c.height for c in witness.checkpoints_from(1, 100)] == [2, 4, 6]
    signed = (tmp_path / "checkpoints.jsonl").read_bytes()
    with pytest.raises(JournalError, match="another witness is running"):
        open_journal(tmp_path)
    witness.journal.close()

    again = make_witness(tmp_path, feeds, "http://a")
    again.poll()  # replays from genesis: the same checkpoints, nothing new
    assert (tmp_path / "checkpoints.jsonl").read_bytes() == signed
    assert again.latest_checkpoint() == witness.latest_checkpoint()
    status = again.status()
    assert status["height"] == 6 and status["halted"] is False
    assert status["sources"][0]["status"] == "following"
    again.journal.close()


def test_a_torn_last_line_is_dropped_and_a_damaged_one_stops_the_witness(tmp_path: Path) -> None:
    first, _ = forked_chains()
    witness = make_witness(tmp_path, Feeds(a=first), "http://a")
    witness.poll()
    witness.journal.close()
    journal_file = tmp_path / "checkpoints.jsonl"
    whole = journal_file.read_bytes()
    journal_file.write_bytes(whole + b'{"cosignature": {"chain_id"')  # a crash mid-write
    reopened = open_journal(tmp_path)
    assert len(reopened.read_entries()) == 3
    assert journal_file.read_bytes() == whole
    reopened.close()
    lines = whole.split(b"\n")
    journal_file.write_bytes(b"\n".join([lines[0], b"{damaged", *lines[2:]]))
    with pytest.raises(JournalError, match="line 2 is damaged"):
        make_witness(tmp_path, Feeds(a=first), "http://a")


def test_a_fork_at_a_cosigned_height_halts_the_witness_with_both_blocks(tmp_path: Path) -> None:
    first, second = forked_chains()
    feeds = Feeds(a=first, b=second)
    witness = make_witness(tmp_path, feeds, "http://a", "http://b")
    witness.poll()
    assert witness.halted
    evidence = witness.status()["evidence"]
    assert evidence["height"] == 4  # the first cosigned height after the fork at 3
    assert evidence["detected_from"] == "http://b"
    assert evidence["cosigned"]["header"]["height"] == 4
    assert evidence["conflicting"]["header"]["height"] == 4
    assert evidence["cosigned"]["checkpoint"]["block_hash"] != evidence["conflicting"]["block_hash"]
    assert len(evidence["validators_who_signed_both"]) == 1
    kept = json.loads((tmp_path / "evidence.json").read_text())
    assert kept == evidence
    witness.journal.close()
    # A restart stays halted and signs nothing, whatever it is fed.
    grow(first, 4, "later")
    again = make_witness(tmp_path, Feeds(a=first), "http://a")
    again.poll()
    assert again.halted and again.latest_checkpoint() == witness.latest_checkpoint()
    again.journal.close()


def test_a_source_serving_an_uncertified_block_is_set_aside_not_believed(tmp_path: Path) -> None:
    first, second = forked_chains()
    feeds = Feeds(a=first, b=second)
    # b's block 4 differs from a's but carries a's certificate: not signed by validators.
    second.certificates[3] = first.certificates[3]
    witness = make_witness(tmp_path, feeds, "http://a", "http://b")
    witness.poll()
    assert not witness.halted
    [_, source] = witness.status()["sources"]
    assert source["status"].startswith("set aside: block 4 differs from the cosigned one")
    # A first source whose block does not check is set aside before anything is signed.
    tampered = Feeds(a=first)
    tampered.blocks["http://a"][0] = encode_block(
        replace(first.blocks[0], header=replace(first.blocks[0].header, time_ms=1))
    )
    other = make_witness(tmp_path / "other", tampered, "http://a", "http://down")
    other.poll()
    status = other.status()
    assert status["height"] == 0 and status["checkpoints"] == 0
    assert status["sources"][0]["status"].startswith("set aside: block 1 does not check")
    assert status["sources"][1]["status"] == "unreachable: cannot reach http://down"
    witness.journal.close()
    other.journal.close()


async def test_the_witness_api_serves_checkpoints_status_and_json_errors(tmp_path: Path) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from node.witness.server import create_witness_app

    first, second = forked_chains()
    witness = make_witness(tmp_path, Feeds(a=first), "http://a")
    async with TestClient(TestServer(create_witness_app(witness))) as client:
        answer = await client.get("/checkpoints/latest")
        assert answer.status == 404 and (await answer.json())["error"] == "not_found"
        witness.poll()
        latest = await (await client.get("/checkpoints/latest")).json()
        assert latest["height"] == 6 and latest["witness"] == witness_key.public_key.hex()
        assert await (await client.get("/checkpoints/6")).json() == latest
        listed = await (await client.get("/checkpoints?from=3&limit=1")).json()
        assert [c["height"] for c in listed["checkpoints"]] == [4]
        assert listed["format"] == "danangchain/checkpoints"  # a checkpoints file as it is
        for path, status in (
            ("/checkpoints/5", 404),
            ("/checkpoints/x", 400),
            ("/checkpoints?limit=0", 400),
            ("/checkpoints?from=-1", 400),
            ("/evidence", 404),
        ):
            answer = await client.get(path)
            assert answer.status == status, path
            assert set(await answer.json()) == {"error", "message"}
        status_document = await (await client.get("/status")).json()
        assert {"height", "halted", "evidence"} <= set(status_document)
        assert status_document["height"] == 6 and status_document["halted"] is False
    witness.journal.close()
