"""Keystore files on disk: written atomically with mode 0600, read and decrypted."""

from __future__ import annotations

import os
from pathlib import Path

from danangchain import ed25519
from danangchain.errors import KeystoreError
from danangchain.keystore import (
    DEFAULT_KDF_N,
    NONCE_SIZE,
    SALT_SIZE,
    Keystore,
    decode_keystore_json,
    decrypt_seed,
    encode_keystore_json,
    encrypt_seed,
)


def generate_signing_key() -> ed25519.SigningKey:
    """Make a new key from the operating system's randomness."""
    return ed25519.signing_key_from_seed(os.urandom(ed25519.SEED_SIZE))


def write_private_file(path: Path, text: str, replace: bool = False) -> None:
    """Write a file readable by its owner only, atomically (synced, then put in place);
    refuse to overwrite one unless `replace` (then the folder is synced too)."""
    if not replace and path.exists():
        raise KeystoreError(f"{path} already exists; refusing to overwrite a key")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
            _sync_folder(path.parent)
        else:
            os.link(temporary, path)  # fails if path appeared meanwhile: never overwrite a key
    finally:
        temporary.unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    """Sync a folder, so that a file renamed into it survives a power cut."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def save_key(
    path: Path, name: str, key: ed25519.SigningKey, password: str, kdf_n: int = DEFAULT_KDF_N
) -> Keystore:
    """Encrypt a key under a password and write it as a keystore file."""
    keystore = encrypt_seed(
        name,
        key.seed,
        key.public_key,
        password,
        os.urandom(SALT_SIZE),
        os.urandom(NONCE_SIZE),
        kdf_n,
    )
    write_private_file(path, encode_keystore_json(keystore))
    return keystore


def read_keystore(path: Path) -> Keystore:
    """Read and parse a keystore file (without decrypting it)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise KeystoreError.of("key file {path} not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeystoreError.of(
            "cannot read key file {path}: {reason}", path=path, reason=exc
        ) from None
    try:
        return decode_keystore_json(text)
    except KeystoreError as exc:
        raise KeystoreError.of("{path}: {reason}", path=path, reason=exc) from None


def unlock_key(keystore: Keystore, password: str) -> ed25519.SigningKey:
    """Decrypt a keystore and check the key inside matches its public key."""
    key = ed25519.signing_key_from_seed(decrypt_seed(keystore, password))
    if key.public_key != keystore.public_key:
        raise KeystoreError.of("keystore holds a key that does not match its public key")
    return key
