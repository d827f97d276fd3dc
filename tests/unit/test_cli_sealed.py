"""cli/sealed.py: the one function a query calls on a record's JSON to open its sealed
amount and memo with the reader's key, and its one-line refusals (exit 1)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from cli.common import EXIT_REFUSED, CliError
from cli.sealed import open_record, own_encryption_public_key
from danangchain import ed25519
from danangchain.address import encode_address
from danangchain.sealing import Binding, PrivateFields, compute_content_hash, seal
from danangchain.transaction import KIND_SEALED_RECORD

SHOP, HOME, STRANGER = (ed25519.signing_key_from_seed(bytes([s]) * 32) for s in (4, 3, 9))
CREATOR = bytes(range(20))


def served_record(**sealed_changes: Any) -> dict[str, Any]:
    binding = Binding("danang-test", CREATOR, 3, KIND_SEALED_RECORD)
    recipients = [own_encryption_public_key(SHOP), own_encryption_public_key(HOME)]
    envelope = seal(PrivateFields(1_500_000, "12 sacks of rice"), binding, recipients, os.urandom)
    sealed = {
        "content_hash": compute_content_hash(envelope).hex(),
        "erased": False,
        "erased_height": None,
        "envelope": envelope.hex(),
    }
    sealed.update(sealed_changes)
    return {
        "record_id": "ab" * 32,
        "creator": encode_address(CREATOR),
        "memo": "",
        "amount": None,
        "sealed": sealed,
    }


def test_a_recipient_opens_the_amount_and_memo() -> None:
    for reader in (SHOP, HOME):
        opened = open_record(served_record(), reader)
        assert (opened["amount"], opened["memo"]) == (1_500_000, "12 sacks of rice")
        assert opened["sealed"]["opened"] is True


def test_a_plain_record_comes_back_unchanged() -> None:
    plain = {"record_id": "cd" * 32, "memo": "public", "amount": 5}
    assert open_record(plain, STRANGER) is plain


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        (served_record(), "not one of the record's recipients"),
        (served_record(erased=True, erased_height=9, envelope=None), "erased at height 9"),
        (served_record(envelope=None), "does not hold the sealed content"),
        (served_record(content_hash="00" * 32), "does not open"),
    ],
)
def test_what_does_not_open_is_one_line_and_exit_1(record: dict[str, Any], fragment: str) -> None:
    reader = STRANGER if "recipients" in fragment else HOME
    with pytest.raises(CliError) as caught:
        open_record(record, reader)
    assert caught.value.exit_code == EXIT_REFUSED
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_content_moved_to_a_record_of_another_creator_does_not_open() -> None:
    record = served_record() | {"creator": encode_address(bytes(20))}
    with pytest.raises(CliError, match="does not open"):
        open_record(record, HOME)
