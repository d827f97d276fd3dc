"""A tampered export never verifies, and verifying it never crashes.

Whatever bytes a tamperer changes, inserts, deletes or cuts off, the auditor ends in a
clean AuditFailure or a clean DecodeError, pinned genesis or not.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from danangchain.audit import AuditFailure
from danangchain.errors import DecodeError
from tests.unit.audit_fixtures import audit_export, build_chain, export_of

CHAIN = build_chain(2)
EXPORT = export_of(CHAIN)
TAMPER_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def assert_refused(data: bytes, pinned: bytes | None) -> None:
    """Verification must end in a clean failure, never in success or another exception."""
    with pytest.raises((AuditFailure, DecodeError)):
        audit_export(data, pinned)


def test_the_untampered_export_verifies() -> None:
    assert audit_export(EXPORT, CHAIN.genesis.hash).tip == CHAIN.tip


@TAMPER_SETTINGS
@given(
    changes=st.lists(
        st.tuples(st.integers(0, len(EXPORT) - 1), st.integers(1, 255)), min_size=1, max_size=4
    ),
    pinned=st.booleans(),
)
def test_changed_bytes_never_verify(changes: list[tuple[int, int]], pinned: bool) -> None:
    data = bytearray(EXPORT)
    for position, mask in changes:
        data[position] ^= mask
    if bytes(data) == EXPORT:  # two changes at one position may cancel out
        return
    assert_refused(bytes(data), CHAIN.genesis.hash if pinned else None)


@TAMPER_SETTINGS
@given(
    position=st.integers(0, len(EXPORT)),
    inserted=st.binary(min_size=1, max_size=16),
    deleted=st.integers(0, 16),
)
def test_inserted_or_deleted_bytes_never_verify(
    position: int, inserted: bytes, deleted: int
) -> None:
    for data in (
        EXPORT[:position] + inserted + EXPORT[position:],
        EXPORT[:position] + EXPORT[position + max(deleted, 1) :],
    ):
        if data != EXPORT:
            assert_refused(data, None)


@TAMPER_SETTINGS
@given(length=st.integers(0, len(EXPORT) - 1))
def test_truncated_export_never_verifies(length: int) -> None:
    assert_refused(EXPORT[:length], None)
