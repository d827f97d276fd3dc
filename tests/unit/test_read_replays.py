"""The node's memory of signed reads' nonces (node/http/access.py): a nonce is answered
once within two windows, forgotten after, and a full memory refuses rather than forgets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from danangchain.read_access import READ_WINDOW_MS
from node.http.access import ReplayMemory, RequestRefused

KEY, OTHER_KEY = bytes(32), bytes([1]) * 32
NOW = 1_800_000_000_000


@given(st.lists(st.binary(min_size=8, max_size=8), min_size=1, max_size=40))
def test_each_nonce_is_accepted_once_within_the_window(nonces: list[bytes]) -> None:
    memory = ReplayMemory()
    accepted = [memory.remember(KEY, nonce, NOW) for nonce in nonces]
    assert accepted == [nonce not in nonces[:i] for i, nonce in enumerate(nonces)]


def test_the_same_nonce_of_another_key_is_another_request() -> None:
    memory = ReplayMemory()
    assert memory.remember(KEY, b"n" * 16, NOW) and memory.remember(OTHER_KEY, b"n" * 16, NOW)


def test_a_nonce_is_forgotten_only_once_any_request_bearing_it_is_stale() -> None:
    memory = ReplayMemory()
    assert memory.remember(KEY, b"n" * 16, NOW)
    assert not memory.remember(KEY, b"n" * 16, NOW + 2 * READ_WINDOW_MS)
    assert memory.remember(KEY, b"n" * 16, NOW + 2 * READ_WINDOW_MS + 1)
    assert len(memory) == 1


def test_a_full_memory_refuses_new_reads_instead_of_forgetting_a_fresh_nonce() -> None:
    memory = ReplayMemory(capacity=2)
    assert memory.remember(KEY, b"a" * 16, NOW) and memory.remember(KEY, b"b" * 16, NOW)
    with pytest.raises(RequestRefused) as refused:
        memory.remember(KEY, b"c" * 16, NOW)
    assert refused.value.status == 503
    assert not memory.remember(KEY, b"a" * 16, NOW)
    assert memory.remember(KEY, b"c" * 16, NOW + 2 * READ_WINDOW_MS + 1)
