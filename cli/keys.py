"""`danangchain keys`: create, list and show password-encrypted keys."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import (
    CliError,
    emit,
    json_option,
    key_path,
    keystore_option,
    load_keystore,
    password_option,
    read_password,
    resolve_keystore_dir,
)
from danangchain.address import encode_address
from danangchain.errors import KeystoreError
from danangchain.keystore import Keystore
from node.keyfile import generate_signing_key, read_keystore, save_key


def describe(keystore: Keystore, path: Path) -> dict[str, str]:
    """Return the public facts of a key."""
    return {
        "name": keystore.name,
        "address": encode_address(keystore.address),
        "public_key": keystore.public_key.hex(),
        "path": str(path),
    }


@click.group()
def keys() -> None:
    """Create and inspect your signing keys (kept encrypted under a password).

    Example: danangchain keys new alice
    """


@keys.command("new")
@click.argument("name")
@keystore_option
@password_option
@json_option
def keys_new(
    name: str, keystore_dir: Path | None, password_file: Path | None, as_json: bool
) -> None:
    """Create a key NAME, encrypted under a password, and print its address."""
    if not name or "/" in name or name.startswith("."):
        raise CliError(f"key name {name!r} must be a plain file name")
    path = key_path(keystore_dir, name)
    if path.exists():
        raise CliError(f"a key named {name!r} already exists at {path}")
    password = read_password(password_file, confirm=True)
    try:
        keystore = save_key(path, name, generate_signing_key(), password)
    except (KeystoreError, OSError) as exc:
        raise CliError(f"cannot write key: {exc}") from None
    info = describe(keystore, path)
    emit(as_json, info, [f"created key {name}", f"address: {info['address']}", f"file: {path}"])


@keys.command("list")
@keystore_option
@json_option
def keys_list(keystore_dir: Path | None, as_json: bool) -> None:
    """List the keys in the keystore folder."""
    folder = resolve_keystore_dir(keystore_dir)
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found.append(describe(read_keystore(path), path))
        except KeystoreError:
            continue  # not a keystore: leave other files alone
    lines = [f"{k['name']:<20} {k['address']}" for k in found] or [f"no keys in {folder}"]
    emit(as_json, found, lines)


@keys.command("show")
@click.argument("name")
@keystore_option
@json_option
def keys_show(name: str, keystore_dir: Path | None, as_json: bool) -> None:
    """Show a key's address and public key (never its secret)."""
    path = key_path(keystore_dir, name)
    info = describe(load_keystore(keystore_dir, name), path)
    emit(as_json, info, [f"{k}: {v}" for k, v in info.items()])
