"""The CLI's outbox: the same transaction is found again, by anything that ran the same
command; entries are private, durable and forgotten after KEEP_DAYS."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from cli.outbox import KEEP_DAYS, Outbox, Sent, compute_fingerprint
from danangchain import ed25519
from danangchain.transaction import EndorseBody, RecordBody

KEY = ed25519.signing_key_from_seed(bytes(32)).public_key
OTHER_KEY = ed25519.signing_key_from_seed(bytes([1]) * 32).public_key
INVOICE = RecordBody("invoice", bytes(32), 1_500_000, None, "rice")
DAY_MS = 86_400_000


def sent(fingerprint: str, at_ms: int) -> Sent:
    return Sent(fingerprint, "chain", "record", "ab" * 32, b"\x01\x02", at_ms)


def test_an_entry_saved_is_found_by_the_same_request(tmp_path: Path) -> None:
    fingerprint = compute_fingerprint("chain", KEY, INVOICE)
    Outbox(tmp_path, clock_ms=1_000).save(sent(fingerprint, 1_000))
    assert Outbox(tmp_path, clock_ms=2_000).find(fingerprint) == sent(fingerprint, 1_000)
    mode = stat.S_IMODE(os.stat(tmp_path / "outbox" / f"{fingerprint}.json").st_mode)
    assert mode == 0o600


def test_a_sealed_record_is_kept_with_its_sealed_content_to_send_again(tmp_path: Path) -> None:
    fingerprint = compute_fingerprint("chain", KEY, INVOICE)
    entry = Sent(fingerprint, "chain", "sealed_record", "cd" * 32, b"\x01", 1_000, b"sealed")
    Outbox(tmp_path, clock_ms=1_000).save(entry)
    assert Outbox(tmp_path, clock_ms=2_000).find(fingerprint) == entry


@given(memo=st.text(max_size=20), amount=st.integers(0, 10**12))
def test_the_fingerprint_is_the_chain_key_kind_and_body(memo: str, amount: int) -> None:
    body = RecordBody("invoice", bytes(32), amount, None, memo)
    same = RecordBody("invoice", bytes(32), amount, None, memo)
    assert compute_fingerprint("chain", KEY, body) == compute_fingerprint("chain", KEY, same)
    assert compute_fingerprint("chain", KEY, body) != compute_fingerprint("other", KEY, body)
    assert compute_fingerprint("chain", KEY, body) != compute_fingerprint("chain", OTHER_KEY, body)
    other = RecordBody("invoice", bytes(32), amount + 1, None, memo)
    assert compute_fingerprint("chain", KEY, body) != compute_fingerprint("chain", KEY, other)


def test_kinds_with_equal_fields_have_different_fingerprints() -> None:
    record_id = bytes(32)
    assert compute_fingerprint("c", KEY, EndorseBody(record_id)) != compute_fingerprint(
        "c", KEY, RecordBody("invoice", record_id)
    )


def test_an_entry_older_than_the_kept_days_is_not_found_and_is_deleted(tmp_path: Path) -> None:
    fingerprint = compute_fingerprint("chain", KEY, INVOICE)
    Outbox(tmp_path, clock_ms=0).save(sent(fingerprint, 0))
    path = tmp_path / "outbox" / f"{fingerprint}.json"
    os.utime(path, (0, 0))
    assert Outbox(tmp_path, clock_ms=KEEP_DAYS * DAY_MS + 1).find(fingerprint) is None
    assert not path.exists()


def test_an_unreadable_entry_counts_as_none(tmp_path: Path) -> None:
    fingerprint = compute_fingerprint("chain", KEY, INVOICE)
    outbox = Outbox(tmp_path, clock_ms=1_000)
    outbox.save(sent(fingerprint, 1_000))
    (tmp_path / "outbox" / f"{fingerprint}.json").write_text('{"chain_id": "chain", "tx": "zz"')
    assert outbox.find(fingerprint) is None


def test_a_forgotten_entry_is_gone_and_forgetting_twice_is_harmless(tmp_path: Path) -> None:
    fingerprint = compute_fingerprint("chain", KEY, INVOICE)
    outbox = Outbox(tmp_path, clock_ms=1_000)
    outbox.save(sent(fingerprint, 1_000))
    outbox.forget(fingerprint)
    outbox.forget(fingerprint)
    assert outbox.find(fingerprint) is None
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == []
