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
from cli.i18n import TranslatedGroup, _, describe_error
from danangchain.address import encode_address
from danangchain.errors import KeystoreError
from danangchain.keystore import Keystore
from node.keyfile import generate_signing_key, read_keystore, save_key


def describe(keystore: Keystore, path: Path) -> dict[str, str]:
    """Return the public facts of a key."""
    info = {
        "name": keystore.name,
        "address": encode_address(keystore.address),
        "public_key": keystore.public_key.hex(),
    }
    if keystore.encryption_public_key is not None:
        # The public half of the key sealed records are encrypted to: a registrar
        # publishes it with 'member admit --encryption-key'.
        info["encryption_key"] = keystore.encryption_public_key.hex()
    return info | {"path": str(path)}


@click.group(cls=TranslatedGroup)
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
    """Create a key NAME, encrypted under a password, and print its address.

    Example: danangchain keys new shop --password-file pw.txt
    """
    if not name or "/" in name or name.startswith("."):
        raise CliError(_("key name {name} must be a plain file name").format(name=repr(name)))
    path = key_path(keystore_dir, name)
    if path.exists():
        raise CliError(
            _("a key named {name} already exists at {path}").format(name=repr(name), path=path)
        )
    password = read_password(password_file, confirm=True)
    try:
        keystore = save_key(path, name, generate_signing_key(), password)
    except (KeystoreError, OSError) as exc:
        raise CliError(_("cannot write key: {reason}").format(reason=describe_error(exc))) from None
    info = describe(keystore, path)
    lines = [
        _("created key {name}").format(name=name),
        _("address: {address}").format(address=info["address"]),
        _("encryption key: {key}").format(key=info["encryption_key"]),
        _("file: {path}").format(path=path),
    ]
    emit(as_json, info, lines)


@keys.command("list")
@keystore_option
@json_option
def keys_list(keystore_dir: Path | None, as_json: bool) -> None:
    """List the keys in the keystore folder.

    Example: danangchain keys list --json
    """
    folder = resolve_keystore_dir(keystore_dir)
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found.append(describe(read_keystore(path), path))
        except KeystoreError:
            continue  # not a keystore: leave other files alone
    lines = [f"{k['name']:<20} {k['address']}" for k in found] or [
        _("no keys in {folder}").format(folder=folder)
    ]
    emit(as_json, found, lines)


@keys.command("show")
@click.argument("name")
@keystore_option
@json_option
def keys_show(name: str, keystore_dir: Path | None, as_json: bool) -> None:
    """Show a key's address and public key (never its secret).

    Example: danangchain keys show shop
    """
    path = key_path(keystore_dir, name)
    info = describe(load_keystore(keystore_dir, name), path)
    emit(as_json, info, [f"{k}: {v}" for k, v in info.items()])
