"""What every command shares: errors with exit codes, options, passwords, keys, output."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import click
from click.core import ParameterSource

from cli.i18n import _, describe_error
from danangchain.address import decode_address
from danangchain.errors import AddressError, KeystoreError

if TYPE_CHECKING:  # the keystore's ciphers load with the first key read, not with --help
    from danangchain import ed25519
    from danangchain.keystore import Keystore

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
DEFAULT_NODE = "http://127.0.0.1:26657"

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A one-line error with its exit code: 1 refused or failed, 2 usage, input or connection."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares a class default
        # Translated now: click shows the error after the command's context has closed.
        self.prefix = _("error")

    def show(self, file: Any = None) -> None:
        click.echo(f"{self.prefix}: {self.format_message()}", err=True)


def default_keystore() -> Path:
    """Return the keystore folder: $DANANGCHAIN_KEYSTORE, else ~/.danangchain/keys."""
    configured = os.environ.get("DANANGCHAIN_KEYSTORE")
    return Path(configured) if configured else Path.home() / ".danangchain" / "keys"


def node_option(command: F) -> F:
    """Add --node URL (default $DANANGCHAIN_NODE)."""
    return click.option(
        "--node",
        "node_url",
        envvar="DANANGCHAIN_NODE",
        default=DEFAULT_NODE,
        show_default=True,
        callback=_check_node_url,
        help="Node API URL (env DANANGCHAIN_NODE).",
    )(command)


def is_node_url(text: str) -> bool:
    """Tell whether text is http(s)://host[:port], with nothing after but one slash."""
    try:
        parts = urlsplit(text)
        port = parts.port  # ValueError if not a number from 0 to 65535
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and port != 0
        and bool(parts.hostname)
        and parts.path in ("", "/")
        and not (parts.query or parts.fragment or parts.username)
    )


def _check_node_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise CliError(
            _("node URL {url} must start with http:// or https://").format(url=repr(value))
        )
    if is_node_url(value):
        return value.rstrip("/")
    from_env = ctx.get_parameter_source(param.name or "") == ParameterSource.ENVIRONMENT
    raise CliError(
        _("{option} {url} must be scheme://host:port with no path, e.g. {example}").format(
            option="DANANGCHAIN_NODE" if from_env else "--node",
            url=repr(value),
            example=DEFAULT_NODE,
        )
    )


def keystore_option(command: F) -> F:
    """Add --keystore DIR (default $DANANGCHAIN_KEYSTORE, else ~/.danangchain/keys)."""
    return click.option(
        "--keystore",
        "keystore_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Keystore folder (env DANANGCHAIN_KEYSTORE, else ~/.danangchain/keys).",
    )(command)


def json_option(command: F) -> F:
    """Add --json for machine-readable output."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(command)


def password_option(command: F) -> F:
    """Add --password-file F (else $DANANGCHAIN_PASSWORD, else a prompt)."""
    return click.option(
        "--password-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Read the password from this file (else env DANANGCHAIN_PASSWORD, else a prompt).",
    )(command)


def resolve_keystore_dir(keystore_dir: Path | None) -> Path:
    """Return the keystore folder given, or the default."""
    return keystore_dir if keystore_dir is not None else default_keystore()


def read_password(password_file: Path | None, confirm: bool = False) -> str:
    """Return the password from a file, the environment, or a hidden prompt."""
    if password_file is not None:
        try:
            lines = password_file.read_text().splitlines()
        except OSError as exc:
            raise CliError(
                _("cannot read password file {path}: {reason}").format(
                    path=password_file, reason=exc.strerror
                )
            ) from None
        if not lines or not lines[0]:
            raise CliError(_("password file {path} is empty").format(path=password_file))
        return lines[0]
    from_env = os.environ.get("DANANGCHAIN_PASSWORD")
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise CliError(_("no password: give --password-file or set DANANGCHAIN_PASSWORD"))
    return str(click.prompt(_("Password"), hide_input=True, confirmation_prompt=confirm))


def key_path(keystore_dir: Path | None, name: str) -> Path:
    """Return the file of a key: a path as given, or NAME.json in the keystore folder."""
    if name.endswith(".json") or os.sep in name:
        return Path(name)
    return resolve_keystore_dir(keystore_dir) / f"{name}.json"


def load_keystore(keystore_dir: Path | None, name: str) -> Keystore:
    """Read a keystore by name or path; a missing or malformed file is a usage error."""
    from node.keyfile import read_keystore

    path = key_path(keystore_dir, name)
    try:
        return read_keystore(path)
    except KeystoreError as exc:
        message = describe_error(exc)
        if not path.exists() and path.parent == resolve_keystore_dir(keystore_dir):
            message += suggest_key_names(path.parent, name)
        raise CliError(message) from None


def suggest_key_names(folder: Path, name: str) -> str:
    """Return ' (did you mean …?)' naming the keys of a folder close to a mistyped name."""
    names = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    if not close:
        return ""
    return " " + _("(did you mean {names}?)").format(names=", ".join(close))


def load_signing_key(
    keystore_dir: Path | None, name: str, password_file: Path | None
) -> ed25519.SigningKey:
    """Read and decrypt a key; a wrong password is a one-line usage error."""
    from node.keyfile import unlock_key

    keystore = load_keystore(keystore_dir, name)
    try:
        return unlock_key(keystore, read_password(password_file))
    except KeystoreError as exc:
        raise CliError(
            _("cannot unlock key {name}: {reason}").format(
                name=repr(name), reason=describe_error(exc)
            )
        ) from None


def parse_address(text: str) -> bytes:
    """Parse a dn1... address, or fail with the reason (typos are caught by the checksum)."""
    try:
        return decode_address(text)
    except AddressError as exc:
        raise CliError(
            _("bad address {address}: {reason}").format(
                address=repr(text), reason=describe_error(exc)
            )
        ) from None


def parse_public_key(text: str) -> bytes:
    """Parse a 32-byte Ed25519 public key in hex, refusing unsafe keys."""
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise CliError(_("a public key must be 64 hex characters (an Ed25519 public key)"))
    return key


def parse_hex_id(text: str, what: str) -> bytes:
    """Parse a 32-byte hex id."""
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise CliError(_("{what} must be 64 hex characters").format(what=what))
    return value


def hash_file(path: Path, buffer: bytearray | None = None) -> tuple[int, bytes]:
    """Return the size and SHA-256 of a file, streamed through a buffer (any size; one
    buffer can serve many files); raise OSError if it cannot be read."""
    digest = hashlib.sha256()
    buffer = bytearray(1 << 20) if buffer is None else buffer
    view = memoryview(buffer)
    size = 0
    with path.open("rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
            size += count
    return size, digest.digest()


def hash_document(path: Path) -> bytes:
    """Return the SHA-256 of a document, read in chunks; one that cannot be read is a usage
    error."""
    try:
        return hash_file(path)[1]
    except OSError as exc:
        raise CliError(
            _("cannot read document {path}: {reason}").format(path=path, reason=exc.strerror)
        ) from None


def emit(as_json: bool, data: Any, lines: list[str]) -> None:
    """Print data as JSON for scripts, or as readable lines for people."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        for line in lines:
            click.echo(line)
