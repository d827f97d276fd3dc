"""Tests of password-encrypted keystores and their JSON form."""

import dataclasses
import json
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from danangchain.address import compute_address, encode_address
from danangchain.errors import KeystoreError
from danangchain.keystore import (
    Keystore,
    decode_keystore_json,
    decrypt_seed,
    encode_keystore_json,
    encrypt_seed,
)
from danangchain.sealing import derive_encryption_key, encryption_public_key

FAST_N = 2**10
SEED = bytes(range(32))
PUBLIC_KEY = bytes(range(100, 132))
SALT = bytes(range(16))
NONCE = bytes(range(12))
PASSWORD = "correct horse battery staple"
WRONG_PASSWORD_MESSAGE = "^wrong password or corrupted keystore$"


def make_keystore(**overrides: Any) -> Keystore:
    """Encrypt the test seed with cheap scrypt, overriding any argument."""
    arguments: dict[str, Any] = {
        "name": "alice",
        "seed": SEED,
        "public_key": PUBLIC_KEY,
        "password": PASSWORD,
        "salt": SALT,
        "nonce": NONCE,
        "kdf_n": FAST_N,
    }
    arguments.update(overrides)
    return encrypt_seed(**arguments)


KEYSTORE = make_keystore()
DOCUMENT: dict[str, Any] = json.loads(encode_keystore_json(KEYSTORE))


def with_field(path: tuple[str, ...], value: Any) -> str:
    """Return the example keystore JSON with the field at `path` set to `value`."""
    document = json.loads(json.dumps(DOCUMENT))
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(document)


def without_field(path: tuple[str, ...]) -> str:
    """Return the example keystore JSON with the field at `path` removed."""
    document = json.loads(json.dumps(DOCUMENT))
    target = document
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return json.dumps(document)


def get_field(path: tuple[str, ...]) -> Any:
    """Return the example keystore's value at `path`."""
    value: Any = DOCUMENT
    for key in path:
        value = value[key]
    return value


ALL_FIELDS = [
    ("version",),
    ("name",),
    ("address",),
    ("public_key",),
    ("kdf",),
    ("kdf", "name"),
    ("kdf", "n"),
    ("kdf", "r"),
    ("kdf", "p"),
    ("kdf", "salt"),
    ("cipher",),
    ("cipher", "name"),
    ("cipher", "nonce"),
    ("ciphertext",),
]


def test_round_trip_returns_the_seed() -> None:
    assert decrypt_seed(KEYSTORE, PASSWORD) == SEED


def test_round_trip_with_default_scrypt_cost() -> None:
    keystore = encrypt_seed("validator", SEED, PUBLIC_KEY, PASSWORD, SALT, NONCE)
    assert keystore.kdf_n == 2**15
    assert (keystore.kdf_r, keystore.kdf_p) == (8, 1)
    assert decrypt_seed(decode_keystore_json(encode_keystore_json(keystore)), PASSWORD) == SEED


def test_json_round_trip_preserves_every_field() -> None:
    assert decode_keystore_json(encode_keystore_json(KEYSTORE)) == KEYSTORE


def test_keystore_stores_given_public_key_and_its_address() -> None:
    assert KEYSTORE.public_key == PUBLIC_KEY
    assert KEYSTORE.address == compute_address(PUBLIC_KEY)
    assert len(KEYSTORE.ciphertext) == 48


def test_json_has_the_documented_layout() -> None:
    text = encode_keystore_json(KEYSTORE)
    document = json.loads(text)
    assert document == {
        "version": 1,
        "name": "alice",
        "address": encode_address(compute_address(PUBLIC_KEY)),
        "public_key": PUBLIC_KEY.hex(),
        "kdf": {"name": "scrypt", "n": FAST_N, "r": 8, "p": 1, "salt": SALT.hex()},
        "cipher": {"name": "chacha20-poly1305", "nonce": NONCE.hex()},
        "ciphertext": KEYSTORE.ciphertext.hex(),
        "encryption_public_key": encryption_public_key(derive_encryption_key(SEED)).hex(),
    }
    assert text == json.dumps(document, indent=2, sort_keys=True) + "\n"
    assert document["address"].startswith("dn1")


def test_a_keystore_without_an_encryption_key_still_opens_and_signs() -> None:
    document = json.loads(encode_keystore_json(KEYSTORE))
    del document["encryption_public_key"]
    old = decode_keystore_json(json.dumps(document))
    assert old.encryption_public_key is None
    assert decrypt_seed(old, PASSWORD) == SEED


def test_json_never_contains_the_seed_in_clear() -> None:
    text = encode_keystore_json(KEYSTORE)
    assert SEED.hex() not in text.lower()
    assert SEED.decode("latin-1") not in text
    assert SEED not in KEYSTORE.ciphertext


def test_wrong_password_raises_keystore_error() -> None:
    with pytest.raises(KeystoreError, match=WRONG_PASSWORD_MESSAGE):
        decrypt_seed(KEYSTORE, "wrong password")
    with pytest.raises(KeystoreError, match=WRONG_PASSWORD_MESSAGE):
        decrypt_seed(KEYSTORE, "")


def test_password_is_unicode_normalised() -> None:
    # "Đà Nẵng" typed with precomposed or combining diacritics is the same password.
    composed = unicodedata.normalize("NFC", "Đà Nẵng 2024")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    keystore = make_keystore(password=composed)
    assert decrypt_seed(keystore, decomposed) == SEED


def test_tampered_ciphertext_raises() -> None:
    for position in (0, 31, 47):
        ciphertext = bytearray(KEYSTORE.ciphertext)
        ciphertext[position] ^= 1
        tampered = dataclasses.replace(KEYSTORE, ciphertext=bytes(ciphertext))
        with pytest.raises(KeystoreError, match=WRONG_PASSWORD_MESSAGE):
            decrypt_seed(tampered, PASSWORD)


def test_tampered_public_key_raises() -> None:
    other_key = bytes(32)
    tampered = dataclasses.replace(
        KEYSTORE, public_key=other_key, address=compute_address(other_key)
    )
    with pytest.raises(KeystoreError, match=WRONG_PASSWORD_MESSAGE):
        decrypt_seed(tampered, PASSWORD)


def test_tampered_name_raises() -> None:
    tampered = dataclasses.replace(KEYSTORE, name="mallory")
    with pytest.raises(KeystoreError, match=WRONG_PASSWORD_MESSAGE):
        decrypt_seed(tampered, PASSWORD)


@pytest.mark.parametrize("field", ["salt", "nonce"])
def test_tampered_salt_or_nonce_raises(field: str) -> None:
    if field == "salt":
        tampered = dataclasses.replace(KEYSTORE, salt=bytes(16))
    else:
        tampered = dataclasses.replace(KEYSTORE, nonce=bytes(12))
    with pytest.raises(KeystoreError, match=WRONG_PASSWORD_MESSAGE):
        decrypt_seed(tampered, PASSWORD)


def test_ciphertext_swapped_between_keystores_raises() -> None:
    other = make_keystore(name="bob", seed=bytes(32))
    swapped = dataclasses.replace(other, ciphertext=KEYSTORE.ciphertext)
    with pytest.raises(KeystoreError, match=WRONG_PASSWORD_MESSAGE):
        decrypt_seed(swapped, PASSWORD)


def test_address_not_matching_public_key_is_rejected() -> None:
    other_address = encode_address(compute_address(bytes(32)))
    with pytest.raises(KeystoreError, match="address does not match public key"):
        decode_keystore_json(with_field(("address",), other_address))
    with pytest.raises(KeystoreError, match="address does not match public key"):
        decode_keystore_json(with_field(("public_key",), bytes(32).hex()))


@pytest.mark.parametrize("path", ALL_FIELDS, ids=".".join)
def test_every_missing_field_is_rejected(path: tuple[str, ...]) -> None:
    with pytest.raises(KeystoreError, match=f"missing field '{'.'.join(path)}'"):
        decode_keystore_json(without_field(path))


@pytest.mark.parametrize("path", ALL_FIELDS, ids=".".join)
def test_every_wrongly_typed_field_is_rejected(path: tuple[str, ...]) -> None:
    expected = {str: "a string", int: "an integer", dict: "an object"}[type(get_field(path))]
    wrong_values: list[Any] = [None, True, 1.5, 1.0, [], {}, "7", 7]
    for value in wrong_values:
        if type(value) is type(get_field(path)):
            continue
        with pytest.raises(
            KeystoreError, match=f"field '{'.'.join(path)}' is a .*, expected {expected}"
        ):
            decode_keystore_json(with_field(path, value))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not JSON"),
        ("{", "not JSON"),
        ("[1, 2]", "the JSON is a array, not an object"),
        ('"keystore"', "the JSON is a string"),
        ("[" * 100_000, "not JSON"),
        ("1" * 5000, "not JSON"),
        ('{"version": NaN}', "NaN is not a JSON value"),
        ('{"version": 1, "version": 1}', "duplicate field 'version'"),
    ],
)
def test_malformed_json_is_rejected(text: str, message: str) -> None:
    with pytest.raises(KeystoreError, match=message):
        decode_keystore_json(text)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("version",), 2, "unsupported keystore version 2"),
        (("version",), True, "field 'version' is a boolean, expected an integer"),
        (("name",), "", "name has 0 characters"),
        (("name",), "a\nb", "control or unprintable character"),
        (("name",), "\ud800", "control or unprintable character"),
        (("address",), "dn1qqqq", "field 'address': "),
        (("public_key",), "00" * 31, "public_key is 31 bytes, expected 32"),
        (("public_key",), PUBLIC_KEY.hex().upper(), "field 'public_key' is not lowercase hex"),
        (("public_key",), "0" * 63, "field 'public_key' is not lowercase hex"),
        (("ciphertext",), "zz" * 48, "field 'ciphertext' is not lowercase hex"),
        (("ciphertext",), "00" * 47, "ciphertext is 47 bytes, expected 48"),
        (("kdf", "salt"), "00" * 8, "kdf.salt is 8 bytes, expected 16"),
        (("cipher", "nonce"), "00" * 24, "cipher.nonce is 24 bytes, expected 12"),
        (("kdf", "name"), "argon2id", "unsupported kdf 'argon2id'"),
        (("cipher", "name"), "aes-128-ctr", "unsupported cipher 'aes-128-ctr'"),
        (("kdf", "n"), 2**21, "kdf.n is 2097152"),
        (("kdf", "n"), 2**9, "kdf.n is 512"),
        (("kdf", "n"), 3 * 2**12, "kdf.n is 12288"),
        (("kdf", "n"), 0, "kdf.n is 0"),
        (("kdf", "n"), -(2**11), "kdf.n is -2048"),
        (("kdf", "r"), 0, "kdf.r is 0"),
        (("kdf", "r"), 33, "kdf.r is 33"),
        (("kdf", "p"), 0, "kdf.p is 0"),
        (("kdf", "p"), 17, "kdf.p is 17"),
        (("kdf", "extra"), 1, "unknown field 'kdf.extra'"),
        (("extra",), 1, "unknown field 'extra'"),
    ],
)
def test_invalid_field_is_rejected_with_precise_message(
    path: tuple[str, ...], value: Any, message: str
) -> None:
    with pytest.raises(KeystoreError, match=message):
        decode_keystore_json(with_field(path, value))


def test_scrypt_memory_above_one_gibibyte_is_rejected() -> None:
    # n and r are each within range, but together would need 4 GiB.
    document = json.loads(with_field(("kdf", "n"), 2**20))
    document["kdf"]["r"] = 32
    with pytest.raises(KeystoreError, match="more than 1 GiB"):
        decode_keystore_json(json.dumps(document))


def test_decrypt_refuses_expensive_parameters_before_running_scrypt() -> None:
    with pytest.raises(KeystoreError, match="kdf.n is 1073741824"):
        decrypt_seed(dataclasses.replace(KEYSTORE, kdf_n=2**30), PASSWORD)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"seed": bytes(31)}, "seed is 31 bytes"),
        ({"public_key": bytes(33)}, "public_key is 33 bytes"),
        ({"salt": bytes(8)}, "kdf.salt is 8 bytes"),
        ({"nonce": bytes(24)}, "cipher.nonce is 24 bytes"),
        ({"kdf_n": 1000}, "kdf.n is 1000"),
        ({"password": ""}, "password must not be empty"),
        ({"name": ""}, "name has 0 characters"),
        ({"name": "x" * 129}, "name has 129 characters"),
    ],
)
def test_encrypt_rejects_bad_arguments(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(KeystoreError, match=message):
        make_keystore(**overrides)


def test_unicode_name_survives_json_as_ascii() -> None:
    keystore = make_keystore(name="Nguyễn Văn An")
    text = encode_keystore_json(keystore)
    assert text.isascii()
    assert decode_keystore_json(text).name == "Nguyễn Văn An"


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def decode_or_keystore_error(text: str) -> None:
    """Decode `text`, allowing no exception but KeystoreError."""
    try:
        decode_keystore_json(text)
    except KeystoreError as error:
        assert "\n" not in str(error)


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_arbitrary_text_only_raises_keystore_error(text: str) -> None:
    decode_or_keystore_error(text)


@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=8))
def test_arbitrary_json_object_only_raises_keystore_error(document: dict[str, Any]) -> None:
    decode_or_keystore_error(json.dumps(document))


@settings(max_examples=300)
@given(st.sampled_from(ALL_FIELDS), JSON_VALUES)
def test_valid_keystore_with_one_field_replaced_only_raises_keystore_error(
    path: tuple[str, ...], value: Any
) -> None:
    decode_or_keystore_error(with_field(path, value))
