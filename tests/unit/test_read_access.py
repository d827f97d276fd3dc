"""Signed reads (danangchain/read_access.py): the header, the check of every signed field,
the window, the keys that may sign, and who may read what."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from danangchain import ed25519
from danangchain.read_access import (
    READ_WINDOW_MS,
    Reader,
    ReadRefused,
    SignedRead,
    can_read_chain,
    check_signed_read,
    decode_authorization,
    encode_authorization,
    get_record_parties,
    is_entitled,
    sign_read,
)
from danangchain.signing import DOMAIN_READ, compute_read_signing_bytes
from danangchain.state import DictState, Member, Record, StateView
from danangchain.transaction import MemberAdmitBody, MemberRevokeBody
from tests.unit.ledger_fixtures import (
    AUDITOR_SEED,
    BUSINESS_SEED,
    CHAIN_ID,
    HOUSEHOLD_SEED,
    OUTSIDER_SEED,
    REGISTRAR_SEED,
    address_of,
    commit_transaction,
    make_genesis_state,
    make_key,
    make_test_genesis,
    sign_next,
)

HOUSEHOLD = make_key(HOUSEHOLD_SEED)
BUSINESS = make_key(BUSINESS_SEED)
AUDITOR = make_key(AUDITOR_SEED)
OUTSIDER = make_key(OUTSIDER_SEED)
REGISTRAR = make_key(REGISTRAR_SEED)
NOW = 1_800_000_000_000
PATH = "/records/" + "ab" * 32
NONCE = bytes(range(16))


def make_state() -> DictState:
    """Return the state of a chain with a household, a business and an auditor."""
    genesis = make_test_genesis(
        members=[(HOUSEHOLD, "household"), (BUSINESS, "business"), (AUDITOR, "auditor")]
    )
    return make_genesis_state(genesis)


def make_view() -> StateView:
    """Return a view of make_state()."""
    return StateView(make_state())


def signed(key: ed25519.SigningKey = HOUSEHOLD) -> SignedRead:
    """Return a read of PATH signed now by `key`."""
    return sign_read(key, CHAIN_ID, "GET", PATH, NOW, NONCE)


def refusal(
    read: SignedRead,
    state: DictState | None = None,
    chain_id: str = CHAIN_ID,
    method: str = "GET",
    path: str = PATH,
) -> str:
    """Return the code a check refuses a read with."""
    view = StateView(state or make_state())
    with pytest.raises(ReadRefused) as refused:
        check_signed_read(view, chain_id, method, path, read, NOW)
    return refused.value.code


def test_the_signed_bytes_name_the_domain_chain_method_path_time_and_nonce() -> None:
    signed_bytes = compute_read_signing_bytes(CHAIN_ID, "GET", PATH, NOW, NONCE)
    assert DOMAIN_READ == "danangchain/read/v1"
    assert signed_bytes.startswith(bytes([0x96, 0xB3]) + DOMAIN_READ.encode())
    assert signed_bytes != compute_read_signing_bytes(CHAIN_ID, "GET", PATH, NOW, NONCE[::-1])


def test_a_fresh_read_signed_by_a_member_is_its_reader() -> None:
    reader = check_signed_read(make_view(), CHAIN_ID, "GET", PATH, signed(), NOW)
    assert reader == Reader(address_of(HOUSEHOLD), "household", HOUSEHOLD.public_key)


@given(
    st.integers(min_value=0, max_value=2**40),
    st.binary(min_size=8, max_size=32),
    st.sampled_from(["GET", "POST"]),
    st.text(alphabet="/abcdef0123456789?=&", min_size=1, max_size=60),
)
def test_the_header_carries_a_signed_read_unchanged(
    time_ms: int, nonce: bytes, method: str, path: str
) -> None:
    read = sign_read(HOUSEHOLD, CHAIN_ID, method, path, time_ms, nonce)
    assert decode_authorization(encode_authorization(read)) == read


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer abc",
        "DanangChain",
        "DanangChain key=00, time=1, nonce=00, signature=00",
        "DanangChain key=" + "0" * 64 + ", time=1, nonce=" + "0" * 32,
        "DanangChain key=" + "0" * 64 + ", time=x, nonce=" + "0" * 32 + ", signature=" + "0" * 128,
        "DanangChain key="
        + "0" * 64
        + ", key="
        + "0" * 64
        + ", nonce="
        + "0" * 32
        + ", signature="
        + "0" * 128,
        "DanangChain key=" + "0" * 64 + ", time=1, nonce=" + "0" * 31 + ", signature=" + "0" * 128,
        "DanangChain key=" + "0" * 64 + ", time=1, nonce=" + "0" * 130 + ", signature=" + "0" * 128,
        "DanangChain key=" + "A" * 64 + ", time=1, nonce=" + "0" * 32 + ", signature=" + "0" * 128,
    ],
)
def test_a_malformed_header_is_refused_saying_what_it_must_be(header: str) -> None:
    with pytest.raises(ReadRefused) as refused:
        decode_authorization(header)
    assert refused.value.code in ("auth_required", "bad_signature")
    assert "Authorization" in str(refused.value) or "sign the request" in str(refused.value)


@given(st.text(max_size=300))
def test_any_header_text_parses_or_is_refused_never_crashes(text: str) -> None:
    try:
        read = decode_authorization(text)
    except ReadRefused as refused:
        assert refused.code in ("auth_required", "bad_signature")
    else:
        assert decode_authorization(encode_authorization(read)) == read


@pytest.mark.parametrize(
    "request_changes",
    [
        {"chain_id": "danang-other"},
        {"method": "POST"},
        {"path": "/records/" + "cd" * 32},
        {"path": PATH + "?from=1"},
    ],
)
def test_a_signature_for_another_chain_method_or_path_is_a_bad_signature(
    request_changes: dict[str, str],
) -> None:
    assert refusal(signed(), **request_changes) == "bad_signature"  # type: ignore[arg-type]


@given(
    st.sampled_from(["time_ms", "nonce", "signature", "public_key"]),
    st.integers(min_value=0, max_value=255),
    st.integers(min_value=0, max_value=15),
)
def test_every_tampered_field_is_refused(field: str, flip: int, position: int) -> None:
    read = signed()
    if field == "time_ms":
        tampered = replace(read, time_ms=read.time_ms + 1 + flip)
    else:
        value = bytearray(getattr(read, field))
        value[position] ^= flip or 1
        tampered = replace(read, **{field: bytes(value)})
    assert refusal(tampered) == "bad_signature"


def test_another_members_key_cannot_sign_for_the_household() -> None:
    forged = replace(signed(), public_key=BUSINESS.public_key)
    assert refusal(forged) == "bad_signature"


@given(st.integers(min_value=READ_WINDOW_MS + 1, max_value=10 * READ_WINDOW_MS), st.booleans())
def test_a_read_signed_outside_the_window_is_stale(skew: int, early: bool) -> None:
    time_ms = NOW - skew if early else NOW + skew
    read = sign_read(HOUSEHOLD, CHAIN_ID, "GET", PATH, time_ms, NONCE)
    assert refusal(read) == "stale_request"


@given(st.integers(min_value=-READ_WINDOW_MS, max_value=READ_WINDOW_MS))
def test_a_read_signed_inside_the_window_is_accepted(skew: int) -> None:
    read = sign_read(HOUSEHOLD, CHAIN_ID, "GET", PATH, NOW + skew, NONCE)
    assert check_signed_read(make_view(), CHAIN_ID, "GET", PATH, read, NOW).role == "household"


def test_a_key_of_no_member_is_an_unknown_key() -> None:
    assert refusal(signed(OUTSIDER)) == "unknown_key"


def test_a_revoked_members_key_is_refused() -> None:
    state = make_state()
    revoke = sign_next(state, REGISTRAR, MemberRevokeBody(address_of(HOUSEHOLD)))
    commit_transaction(state, revoke)
    assert refusal(signed(), state) == "revoked_key"


def test_after_a_rotation_the_new_key_reads_for_the_member_and_the_old_one_is_refused() -> None:
    state = make_state()
    rotate = MemberAdmitBody(address_of(HOUSEHOLD), "household", OUTSIDER.public_key)
    commit_transaction(state, sign_next(state, REGISTRAR, rotate))
    assert refusal(signed(), state) == "revoked_key"
    reader = check_signed_read(StateView(state), CHAIN_ID, "GET", PATH, signed(OUTSIDER), NOW)
    assert reader.address == address_of(HOUSEHOLD)


def test_a_second_rotation_retires_the_first_replacement_key() -> None:
    state = make_state()
    for key in (OUTSIDER, make_key(11)):
        rotate = MemberAdmitBody(address_of(HOUSEHOLD), "household", key.public_key)
        commit_transaction(state, sign_next(state, REGISTRAR, rotate))
    assert refusal(signed(OUTSIDER), state) == "revoked_key"


def test_members_read_what_concerns_them_auditors_read_all() -> None:
    household = Reader(address_of(HOUSEHOLD), "household", HOUSEHOLD.public_key)
    auditor = Reader(address_of(AUDITOR), "auditor", AUDITOR.public_key)
    business = Reader(address_of(BUSINESS), "business", BUSINESS.public_key)
    record = Record(
        address_of(BUSINESS), "invoice", bytes(32), 10, address_of(HOUSEHOLD), "rice", None, None, 2
    )
    parties = get_record_parties(record)
    assert parties == {address_of(BUSINESS), address_of(HOUSEHOLD)}
    assert is_entitled(household, parties) and is_entitled(business, parties)
    assert is_entitled(auditor, parties) and is_entitled(auditor, frozenset())
    assert not is_entitled(household, {address_of(BUSINESS)})
    stranger = Reader(address_of(OUTSIDER), "household", OUTSIDER.public_key)
    assert not is_entitled(stranger, parties)
    assert can_read_chain(auditor) and can_read_chain(replace(business, role="witness"))
    assert not can_read_chain(household) and not can_read_chain(replace(business, role="registrar"))
    for node_role in ("validator", "node"):  # its operator holds the whole chain already
        assert can_read_chain(replace(business, role=node_role))
        assert not is_entitled(replace(business, role=node_role), parties - {business.address})


def test_a_member_is_never_a_member_of_its_own_record_by_a_lookalike_role() -> None:
    reader = Reader(address_of(HOUSEHOLD), "Auditor", HOUSEHOLD.public_key)
    assert not is_entitled(reader, {address_of(BUSINESS)})


def test_the_replaced_member_keeps_its_role_in_the_reader() -> None:
    view = make_view()
    member = view.get_member(address_of(AUDITOR))
    assert isinstance(member, Member) and member.role == "auditor"
    assert check_signed_read(view, CHAIN_ID, "GET", PATH, signed(AUDITOR), NOW).role == "auditor"
