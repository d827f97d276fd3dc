"""A payment may be recorded without a document; every other category needs one, and the
encoding of every record that has one is what it always was."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from danangchain import ed25519
from danangchain.errors import InvalidTransaction
from danangchain.state import Record, decode_record, encode_record
from danangchain.transaction import (
    CATEGORIES,
    CATEGORIES_WITHOUT_DOCUMENT,
    RecordBody,
    compute_tx_id,
    decode_transaction,
    encode_transaction,
    sign_transaction,
)

KEY = ed25519.signing_key_from_seed(bytes(32))


def test_a_payment_without_a_document_round_trips() -> None:
    tx = sign_transaction(KEY, "chain", 1, RecordBody("payment", None, 250_000, None, "rent"))
    decoded = decode_transaction(encode_transaction(tx))
    assert decoded == tx and decoded.body.doc_hash is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "category", [c for c in CATEGORIES if c not in CATEGORIES_WITHOUT_DOCUMENT]
)
def test_other_categories_without_a_document_do_not_decode(category: str) -> None:
    tx = sign_transaction(KEY, "chain", 1, RecordBody(category, None))
    with pytest.raises(InvalidTransaction, match="needs its document's SHA-256"):
        decode_transaction(encode_transaction(tx))


def test_a_record_with_a_document_keeps_its_old_id() -> None:
    # Fixed before documents became optional: the id of this exact transaction.
    tx = sign_transaction(KEY, "chain", 1, RecordBody("invoice", bytes(32), 1_500_000))
    assert compute_tx_id(encode_transaction(tx)).hex() == OLD_INVOICE_ID


@given(height=st.integers(1, 10**9), amount=st.none() | st.integers(0, 10**18))
def test_a_stored_payment_without_a_document_round_trips(height: int, amount: int | None) -> None:
    record = Record(bytes(20), "payment", None, amount, None, "", None, None, height)
    assert decode_record(encode_record(record)) == record


OLD_INVOICE_ID = "afdf369eaad75e55b017833ea92042aab070e4f30f8847e177346b9a3d6ed79f"
