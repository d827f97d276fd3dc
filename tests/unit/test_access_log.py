"""The node's access log (node/chain/access_log.py) over the in-memory store: entries
round-trip, each owner sees its reads newest first, a reader's own reads are not logged,
a follower's exports extend one entry, and a corrupt entry is a store error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.chain.access_log import (
    AccessEntry,
    AccessLog,
    decode_access_entry,
    encode_access_entry,
)
from node.storage.schema import EVERY_MEMBER, access_log_key
from node.storage.store import Store, StoreError

HOUSEHOLD, BUSINESS, AUDITOR = bytes([1]) * 20, bytes([2]) * 20, bytes([3]) * 20
NOW = 1_800_000_000_000

entries = st.builds(
    AccessEntry,
    st.binary(min_size=20, max_size=20),
    st.sampled_from(["auditor", "household", "business", "witness"]),
    st.sampled_from(["record", "account", "tx", "block", "proof", "events"]),
    st.text(max_size=64),
    st.integers(min_value=0, max_value=2**48),
)


@given(entries)
def test_an_entry_round_trips(entry: AccessEntry) -> None:
    assert decode_access_entry(encode_access_entry(entry)) == entry


def test_each_party_sees_the_reads_of_its_data_newest_first_never_its_own() -> None:
    log = AccessLog(Store.in_memory())
    parties = frozenset({HOUSEHOLD, BUSINESS})
    log.record(parties, AccessEntry(HOUSEHOLD, "household", "record", "r1", NOW))
    log.record(parties, AccessEntry(AUDITOR, "auditor", "record", "r1", NOW + 5))
    log.record(frozenset({HOUSEHOLD}), AccessEntry(AUDITOR, "auditor", "account", "a", NOW + 9))
    household = [(e.reader, e.route) for e in log.entries_of(HOUSEHOLD)]
    assert household == [(AUDITOR, "account"), (AUDITOR, "record")]
    business = [(e.reader, e.time_ms) for e in log.entries_of(BUSINESS)]
    assert business == [(AUDITOR, NOW + 5), (HOUSEHOLD, NOW)]
    assert log.entries_of(AUDITOR) == []
    assert len(log.entries_of(HOUSEHOLD, limit=1)) == 1


def test_a_followers_exports_are_one_entry_in_every_members_log() -> None:
    log = AccessLog(Store.in_memory())
    log.record_export(AUDITOR, "witness", 1, 10, NOW)
    log.record_export(AUDITOR, "witness", 11, 12, NOW + 1)
    log.record_export(AUDITOR, "witness", 13, 20, NOW + 2)
    [entry] = log.entries_of(HOUSEHOLD)
    assert (entry.route, entry.target, entry.time_ms) == ("chain_export", "1-20", NOW + 2)
    log.record_export(AUDITOR, "witness", 1, 20, NOW + 3)  # a whole export again
    log.record_export(BUSINESS, "validator", 21, 22, NOW + 4)  # another reader
    targets = [e.target for e in log.entries_of(HOUSEHOLD)]
    assert targets == ["21-22", "1-20", "1-20"]


def test_a_corrupt_entry_is_a_store_error() -> None:
    store = Store.in_memory()
    store.put_access([HOUSEHOLD], NOW, 0, b"\xc1 not msgpack")
    with pytest.raises(StoreError, match="access log"):
        AccessLog(store).entries_of(HOUSEHOLD)


def test_keys_sort_by_owner_then_time() -> None:
    assert access_log_key(HOUSEHOLD, NOW, 5) < access_log_key(HOUSEHOLD, NOW + 1, 0)
    assert access_log_key(EVERY_MEMBER, NOW + 9, 0) < access_log_key(HOUSEHOLD, NOW, 0)
