"""Password-encrypted key files: an Ed25519 seed sealed with scrypt and ChaCha20-Poly1305.

The core never reads randomness or files: the caller supplies the salt and nonce,
and writes or reads the JSON text this module produces and parses.
"""

import json
import struct
import unicodedata
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from danangchain.address import compute_address, decode_address, encode_address
from danangchain.errors import AddressError, KeystoreError
from danangchain.sealing import derive_encryption_key, encryption_public_key

KEYSTORE_VERSION = 1
SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
SALT_SIZE = 16
NONCE_SIZE = 12
KEY_SIZE = 32
TAG_SIZE = 16
CIPHERTEXT_SIZE = SEED_SIZE + TAG_SIZE
DEFAULT_KDF_N = 2**15
DEFAULT_KDF_R = 8
DEFAULT_KDF_P = 1
MIN_KDF_N = 2**10
MAX_KDF_N = 2**20
MAX_KDF_R = 32
MAX_KDF_P = 16
# scrypt allocates 128 * n * r bytes; the n and r bounds alone would still allow 4 GiB.
MAX_KDF_MEMORY = 2**30
MAX_NAME_LENGTH = 128
KDF_NAME = "scrypt"
CIPHER_NAME = "chacha20-poly1305"
_AAD_DOMAIN = b"danangchain/keystore"
_DECRYPT_FAILED = "wrong password or corrupted keystore"
_FIELDS = {"version", "name", "address", "public_key", "kdf", "cipher", "ciphertext"}
# Keystores made since sealed records also show the public half of the X25519 key the
# seed derives (danangchain/sealing.py); older ones lack it and still open and sign.
_OPTIONAL_FIELDS = {"encryption_public_key"}
_KDF_FIELDS = {"name", "n", "r", "p", "salt"}
_CIPHER_FIELDS = {"name", "nonce"}
_HEX_DIGITS = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Keystore:
    """An encrypted Ed25519 seed with everything needed to decrypt it but the password."""

    name: str
    public_key: bytes
    address: bytes
    kdf_n: int
    kdf_r: int
    kdf_p: int
    salt: bytes
    nonce: bytes
    ciphertext: bytes
    encryption_public_key: bytes | None = None


def encrypt_seed(
    name: str,
    seed: bytes,
    public_key: bytes,
    password: str,
    salt: bytes,
    nonce: bytes,
    kdf_n: int = DEFAULT_KDF_N,
) -> Keystore:
    """Seal a 32-byte seed under a password, with caller-supplied salt and nonce."""
    _verify_size("seed", seed, SEED_SIZE)
    if not password:
        raise KeystoreError.of("password must not be empty")
    _verify_name(name)
    _verify_size("public_key", public_key, PUBLIC_KEY_SIZE)
    _verify_kdf_and_cipher(salt, nonce, kdf_n, DEFAULT_KDF_R, DEFAULT_KDF_P)
    key = _derive_key(password, salt, kdf_n, DEFAULT_KDF_R, DEFAULT_KDF_P)
    associated_data = _compute_associated_data(name, public_key)
    ciphertext = ChaCha20Poly1305(key).encrypt(nonce, seed, associated_data)
    return Keystore(
        name=name,
        public_key=public_key,
        address=compute_address(public_key),
        kdf_n=kdf_n,
        kdf_r=DEFAULT_KDF_R,
        kdf_p=DEFAULT_KDF_P,
        salt=salt,
        nonce=nonce,
        ciphertext=ciphertext,
        encryption_public_key=encryption_public_key(derive_encryption_key(seed)),
    )


def decrypt_seed(keystore: Keystore, password: str) -> bytes:
    """Return the seed sealed in `keystore`, or raise KeystoreError for a wrong password."""
    _verify_keystore(keystore)
    key = _derive_key(password, keystore.salt, keystore.kdf_n, keystore.kdf_r, keystore.kdf_p)
    associated_data = _compute_associated_data(keystore.name, keystore.public_key)
    try:
        return ChaCha20Poly1305(key).decrypt(keystore.nonce, keystore.ciphertext, associated_data)
    except InvalidTag:
        raise KeystoreError.of(_DECRYPT_FAILED) from None


def encode_keystore_json(keystore: Keystore) -> str:
    """Return the keystore as indented JSON text with sorted keys."""
    _verify_keystore(keystore)
    document = {
        "version": KEYSTORE_VERSION,
        "name": keystore.name,
        "address": encode_address(keystore.address),
        "public_key": keystore.public_key.hex(),
        "kdf": {
            "name": KDF_NAME,
            "n": keystore.kdf_n,
            "r": keystore.kdf_r,
            "p": keystore.kdf_p,
            "salt": keystore.salt.hex(),
        },
        "cipher": {"name": CIPHER_NAME, "nonce": keystore.nonce.hex()},
        "ciphertext": keystore.ciphertext.hex(),
    }
    if keystore.encryption_public_key is not None:
        document["encryption_public_key"] = keystore.encryption_public_key.hex()
    # ASCII-only output (names escaped as \uXXXX) survives any file encoding the caller picks.
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def decode_keystore_json(text: str) -> Keystore:
    """Return the keystore in JSON `text`, refusing anything malformed with KeystoreError."""
    document = _parse_json_object(text)
    encryption_key = (
        _get_hex(document, "encryption_public_key", "encryption_public_key")
        if "encryption_public_key" in document
        else None
    )
    if encryption_key is not None and len(encryption_key) != PUBLIC_KEY_SIZE:
        raise KeystoreError.of("encryption_public_key must be 32 bytes")
    _verify_fields(
        {key: value for key, value in document.items() if key not in _OPTIONAL_FIELDS},
        _FIELDS,
        "keystore",
    )
    version = _get_int(document, "version", "version")
    if version != KEYSTORE_VERSION:
        raise KeystoreError(f"unsupported keystore version {version}, expected 1")
    kdf = _get_object(document, "kdf")
    cipher = _get_object(document, "cipher")
    _verify_fields(kdf, _KDF_FIELDS, "kdf")
    _verify_fields(cipher, _CIPHER_FIELDS, "cipher")
    _verify_algorithm(kdf, "kdf", KDF_NAME)
    _verify_algorithm(cipher, "cipher", CIPHER_NAME)
    keystore = Keystore(
        name=_get_str(document, "name", "name"),
        public_key=_get_hex(document, "public_key", "public_key"),
        address=_get_address(document),
        kdf_n=_get_int(kdf, "n", "kdf.n"),
        kdf_r=_get_int(kdf, "r", "kdf.r"),
        kdf_p=_get_int(kdf, "p", "kdf.p"),
        salt=_get_hex(kdf, "salt", "kdf.salt"),
        nonce=_get_hex(cipher, "nonce", "cipher.nonce"),
        ciphertext=_get_hex(document, "ciphertext", "ciphertext"),
        encryption_public_key=encryption_key,
    )
    _verify_keystore(keystore)
    return keystore


def _derive_key(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    """Return the 32-byte cipher key that scrypt derives from the password."""
    # The same password typed as precomposed or combining Vietnamese diacritics must
    # open the same keystore, so normalise before hashing.
    normalized = unicodedata.normalize("NFKC", password)
    try:
        password_bytes = normalized.encode("utf-8")
    except UnicodeEncodeError:
        raise KeystoreError.of("password is not valid Unicode text") from None
    return Scrypt(salt=salt, length=KEY_SIZE, n=n, r=r, p=p).derive(password_bytes)


def _compute_associated_data(name: str, public_key: bytes) -> bytes:
    """Return the bytes the cipher authenticates: version, name and public key."""
    # Length-prefix the name so no two (name, public key) pairs share these bytes.
    encoded_name = name.encode("utf-8")
    header = struct.pack(">BI", KEYSTORE_VERSION, len(encoded_name))
    return _AAD_DOMAIN + header + encoded_name + public_key


def _verify_keystore(keystore: Keystore) -> None:
    """Raise KeystoreError unless every field of the keystore is well formed."""
    _verify_name(keystore.name)
    _verify_size("public_key", keystore.public_key, PUBLIC_KEY_SIZE)
    _verify_size("ciphertext", keystore.ciphertext, CIPHERTEXT_SIZE)
    _verify_kdf_and_cipher(
        keystore.salt, keystore.nonce, keystore.kdf_n, keystore.kdf_r, keystore.kdf_p
    )
    # Verify the address so a file edited to show another account's address is refused.
    expected = compute_address(keystore.public_key)
    if keystore.address != expected:
        raise KeystoreError.of(
            "address does not match public key: expected {address}",
            address=encode_address(expected),
        )


def _verify_kdf_and_cipher(salt: bytes, nonce: bytes, n: int, r: int, p: int) -> None:
    """Raise KeystoreError unless salt, nonce and scrypt cost are sane."""
    _verify_size("kdf.salt", salt, SALT_SIZE)
    _verify_size("cipher.nonce", nonce, NONCE_SIZE)
    # Refuse costs that would make opening a file allocate gigabytes or run for minutes.
    if not (MIN_KDF_N <= n <= MAX_KDF_N and n & (n - 1) == 0):
        raise KeystoreError(f"kdf.n is {n}, expected a power of two from 2**10 to 2**20")
    if not 1 <= r <= MAX_KDF_R:
        raise KeystoreError(f"kdf.r is {r}, expected 1 to {MAX_KDF_R}")
    if not 1 <= p <= MAX_KDF_P:
        raise KeystoreError(f"kdf.p is {p}, expected 1 to {MAX_KDF_P}")
    if 128 * n * r > MAX_KDF_MEMORY:
        raise KeystoreError(f"kdf.n * kdf.r is {n * r}, needing more than 1 GiB of memory")


def _verify_name(name: str) -> None:
    """Raise KeystoreError unless the name is 1 to 128 printable characters."""
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise KeystoreError(f"name has {len(name)} characters, expected 1 to {MAX_NAME_LENGTH}")
    # A name is shown on one terminal line and hashed as UTF-8: refuse what breaks either.
    if not name.isprintable():
        raise KeystoreError(f"name {name!r} contains a control or unprintable character")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise KeystoreError("name is not valid Unicode text") from None


def _verify_size(field: str, value: bytes, size: int) -> None:
    """Raise KeystoreError unless `value` is exactly `size` bytes."""
    if len(value) != size:
        raise KeystoreError(f"{field} is {len(value)} bytes, expected {size}")


def _parse_json_object(text: str) -> dict[str, Any]:
    """Return the top-level JSON object of `text`, refusing duplicate keys and non-numbers."""
    try:
        document = json.loads(
            text, object_pairs_hook=_build_object, parse_constant=_refuse_constant
        )
    except KeystoreError:
        raise
    except (ValueError, RecursionError) as error:
        # JSONDecodeError carries a position; other errors (deep nesting, huge ints) do not.
        raise KeystoreError.of("not JSON: {reason}", reason=_first_line(error)) from None
    if not isinstance(document, dict):
        raise KeystoreError.of(
            "not a keystore: the JSON is a {kind}, not an object", kind=_json_type(document)
        )
    return document


def _build_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Return a JSON object's dict, refusing a key given twice (which copy would count?)."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise KeystoreError(f"duplicate field {key!r}")
        document[key] = value
    return document


def _refuse_constant(constant: str) -> None:
    """Refuse NaN and Infinity, which are not JSON."""
    raise KeystoreError(f"not JSON: {constant} is not a JSON value")


def _verify_fields(document: dict[str, Any], expected: set[str], where: str) -> None:
    """Raise KeystoreError naming the first missing or unknown field."""
    missing = sorted(expected - document.keys())
    if missing:
        raise KeystoreError.of("missing field {field!r}", field=_qualify(where, missing[0]))
    unknown = sorted(document.keys() - expected)
    if unknown:
        raise KeystoreError.of("unknown field {field!r}", field=_qualify(where, unknown[0]))


def _verify_algorithm(document: dict[str, Any], where: str, expected: str) -> None:
    """Raise KeystoreError unless the object names the one algorithm we support."""
    name = _get_str(document, "name", f"{where}.name")
    if name != expected:
        raise KeystoreError(f"unsupported {where} {name!r}, expected {expected!r}")


def _get_object(document: dict[str, Any], field: str) -> dict[str, Any]:
    """Return a field that must be a JSON object."""
    value = document[field]
    if not isinstance(value, dict):
        raise KeystoreError(f"field {field!r} is a {_json_type(value)}, expected an object")
    return value


def _get_int(document: dict[str, Any], field: str, label: str) -> int:
    """Return a field that must be a JSON integer."""
    value = document[field]
    # bool is a subclass of int in Python, but `true` is not a number in JSON.
    if type(value) is not int:
        raise KeystoreError(f"field {label!r} is a {_json_type(value)}, expected an integer")
    return value


def _get_str(document: dict[str, Any], field: str, label: str) -> str:
    """Return a field that must be a JSON string."""
    value = document[field]
    if not isinstance(value, str):
        raise KeystoreError(f"field {label!r} is a {_json_type(value)}, expected a string")
    return value


def _get_hex(document: dict[str, Any], field: str, label: str) -> bytes:
    """Return the bytes of a field that must be lowercase hexadecimal text."""
    value = _get_str(document, field, label)
    # bytes.fromhex also accepts spaces and uppercase: keep one spelling per value.
    if len(value) % 2 or not set(value) <= _HEX_DIGITS:
        raise KeystoreError(f"field {label!r} is not lowercase hex with an even length")
    return bytes.fromhex(value)


def _get_address(document: dict[str, Any]) -> bytes:
    """Return the bytes of the address field, which must be a valid 'dn1...' text."""
    text = _get_str(document, "address", "address")
    try:
        return decode_address(text)
    except AddressError as error:
        raise KeystoreError(f"field 'address': {error}") from None


def _qualify(where: str, field: str) -> str:
    """Return a field's dotted name inside a nested object."""
    return field if where == "keystore" else f"{where}.{field}"


def _json_type(value: object) -> str:
    """Return the JSON name of a parsed value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _first_line(error: BaseException) -> str:
    """Return the first line of an error message, to keep ours to one line."""
    lines = str(error).splitlines()
    return lines[0] if lines else type(error).__name__
