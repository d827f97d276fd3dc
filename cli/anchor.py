"""`danangchain anchor`: one transaction for a whole dataset, or for each window of a stream.

The files are hashed here (streamed, any size), the tree and the manifest are made by
the core (`danangchain/dataset.py`), and the transaction goes through the same signing
tail as every other submitting command (`cli/submit.py`).
"""

from __future__ import annotations

import json
import os
import re
import select
import stat
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import msgpack

from cli.client import NodeClient
from cli.common import EXIT_INTERRUPTED, EXIT_REFUSED, CliError, hash_file, load_signing_key
from cli.i18n import TranslatedCommand, _, describe_error
from cli.progress import progress
from cli.submit import post_signed, sign_next, submission_options, wait_for_outcome
from danangchain import ed25519
from danangchain.dataset import (
    DatasetEntry,
    DatasetError,
    Manifest,
    encode_manifest_json,
    make_dataset_manifest,
    make_stream_manifest,
    normalise_path,
    sort_entries,
)
from danangchain.errors import DecodeError
from danangchain.transaction import ANCHOR_CATEGORIES, check_anchor_name, compute_tx_id
from danangchain.transaction import encode_transaction as encode_tx

MAX_WINDOW_S = 24 * 3600
MAX_READING_SIZE = 1024 * 1024
READ_SIZE = 1 << 16
_WINDOW = re.compile(r"([1-9][0-9]*)([sm])")


@click.command("anchor", cls=TranslatedCommand)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PATH]...")
@click.option("--name", required=True, help="The dataset's or sensor's name (1 to 64 bytes).")
@click.option(
    "--category",
    type=click.Choice(ANCHOR_CATEGORIES),
    default=None,
    help="What the data is (default: dataset; iot with --stream).",
)
@click.option(
    "--manifest",
    "manifest_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the manifest (default: NAME.anchor.json here).",
)
@click.option("--stream", is_flag=True, help="Anchor readings from standard input, per window.")
@click.option("--window", default=None, help="With --stream: the window, e.g. 10s or 5m.")
@click.option(
    "--format",
    "reading_format",
    type=click.Choice(("lines", "msgpack")),
    default=None,
    help="With --stream: one reading a line (default), or a stream of msgpack values.",
)
@click.option(
    "--manifest-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --stream: the folder of the windows' manifests (default: here).",
)
@submission_options
def anchor(
    paths: tuple[Path, ...],
    name: str,
    category: str | None,
    manifest_file: Path | None,
    stream: bool,
    window: str | None,
    reading_format: str | None,
    manifest_dir: Path | None,
    **submission: Any,
) -> None:
    """Anchor every file under PATH... with one transaction, and write the manifest that
    proves any one of them later; or, with --stream, anchor standard input's readings,
    one transaction per window.

    Example: danangchain anchor opendata/air-2026 --from city-data --name air-2026 --wait
    """
    check_name(name)
    if stream:
        if paths or manifest_file:
            raise CliError(_("--stream reads standard input: give no PATH and no --manifest"))
        run_stream(
            name,
            category or "iot",
            parse_window(window or "10s"),
            reading_format or "lines",
            manifest_dir or Path("."),
            **submission,
        )
        return
    if window or reading_format or manifest_dir:
        raise CliError(_("--window, --format and --manifest-dir go with --stream"))
    if not paths:
        raise CliError(_("give the files or folders to anchor (PATH...), or --stream"))
    anchor_dataset(
        paths,
        name,
        category or "dataset",
        manifest_file or Path(f"{name}.anchor.json"),
        **submission,
    )


def check_name(name: str) -> None:
    """Refuse a name the ledger would refuse, before anything is hashed."""
    try:
        check_anchor_name(name)
    except DecodeError:
        raise CliError(
            _("--name {name} must be 1 to 64 bytes of printable text without / or \\").format(
                name=repr(name)
            )
        ) from None


def parse_window(text: str) -> int:
    """Return a window like 10s or 5m in milliseconds."""
    match = _WINDOW.fullmatch(text.strip())
    seconds = 0 if match is None else int(match[1]) * (60 if match[2] == "m" else 1)
    if not 1 <= seconds <= MAX_WINDOW_S:
        raise CliError(
            _(
                "--window {window} must be whole seconds or minutes, e.g. 10s or 5m, at most 1440m"
            ).format(window=repr(text))
        )
    return seconds * 1000


# Datasets of files


@dataclass(frozen=True, slots=True)
class Submission:
    """The signing options every submitting command shares."""

    from_key: str
    wait: bool
    timeout: float
    node_url: str
    keystore_dir: Path | None
    password_file: Path | None
    as_json: bool
    # Not used: an anchor's manifest file, which must not exist yet, already keeps a
    # second run from anchoring the same dataset twice.
    again: bool = False


def anchor_dataset(
    paths: Sequence[Path], name: str, category: str, manifest_file: Path, **options: Any
) -> None:
    """Hash the files, anchor their root, write the manifest and report."""
    submission = Submission(**options)
    if manifest_file.exists():
        raise CliError(
            _("{path} exists: move it, or give --manifest FILE").format(path=manifest_file)
        )
    if not manifest_file.absolute().parent.is_dir():
        raise CliError(_("{path} is not a folder").format(path=manifest_file.parent))
    started = time.perf_counter()
    files = collect_files(paths)
    walking_s = time.perf_counter() - started
    key = load_signing_key(submission.keystore_dir, submission.from_key, submission.password_file)
    started = time.perf_counter()
    entries = hash_files(files)
    hashing_s = walking_s + time.perf_counter() - started  # the key's unlocking left out
    try:
        manifest = make_dataset_manifest(name, category, entries)
    except DatasetError as exc:
        raise CliError(describe_error(exc)) from None
    result = anchor_manifest(
        NodeClient(submission.node_url), key, manifest, manifest_file, submission
    )
    total = manifest.total_bytes
    result.update(
        name=name,
        category=category,
        root=manifest.root.hex(),
        file_count=len(manifest.entries),
        total_bytes=total,
        manifest=str(manifest_file),
        hashing_seconds=round(hashing_s, 3),
    )
    report_anchor(result, submission.as_json)


def collect_files(paths: Sequence[Path]) -> list[tuple[str, Path]]:
    """Return each file under the paths with its path in the dataset: a file given is
    named by its name, a file in a folder given by its path inside that folder."""
    found: list[tuple[str, Path]] = []
    for given in paths:
        mode = stat_path(given).st_mode
        if stat.S_ISREG(mode):
            found.append((entry_path((given.resolve().name,), given), given))
        elif stat.S_ISDIR(mode):
            found.extend((entry_path(parts, path), path) for parts, path in walk_folder(given))
        else:
            raise CliError(_("{path} is not a file or a folder").format(path=given))
    if not found:
        listed = " ".join(map(str, paths))
        raise CliError(_("no files to anchor under {paths}").format(paths=listed))
    try:  # refuse two files with one path now, before a file is read
        sort_entries([DatasetEntry(path, 0, b"") for path, _file in found])
    except DatasetError as exc:
        raise CliError(describe_error(exc)) from None
    return found


def entry_path(parts: Sequence[str], path: Path) -> str:
    """Return a file's path in the dataset, or fail naming the file."""
    try:
        return normalise_path(parts)
    except DatasetError as exc:
        raise CliError(f"{path}: {describe_error(exc)}") from None


def stat_path(path: Path) -> os.stat_result:
    """Return a path's status (following links), or fail in one line."""
    try:
        return path.stat()
    except FileNotFoundError:
        raise CliError(_("{path} does not exist").format(path=path)) from None
    except OSError as exc:
        raise CliError(
            _("cannot read {path}: {reason}").format(path=path, reason=exc.strerror)
        ) from None


def walk_folder(folder: Path) -> Iterator[tuple[tuple[str, ...], Path]]:
    """Yield every regular file under a folder; refuse what cannot be anchored faithfully."""

    def refuse(error: OSError) -> None:
        raise CliError(
            _("cannot read {path}: {reason}").format(path=error.filename, reason=error.strerror)
        )

    for here, folders, names in os.walk(folder, onerror=refuse):
        for sub in folders:
            if os.path.islink(os.path.join(here, sub)):
                raise CliError(
                    _("{path} is a link to a folder: anchor the folder itself").format(
                        path=os.path.join(here, sub)
                    )
                )
        for name in names:
            path = Path(here, name)
            if not stat.S_ISREG(stat_path(path).st_mode):
                raise CliError(_("{path} is not a regular file").format(path=path))
            yield tuple(path.relative_to(folder).parts), path


def hash_files(files: Sequence[tuple[str, Path]]) -> list[DatasetEntry]:
    """Return the entries of the files: path, size and SHA-256, each streamed from disk."""
    buffer = bytearray(1 << 20)
    entries = []
    with progress(len(files), _("hashing")) as advance:
        for path_in_dataset, path in files:
            try:
                size, digest = hash_file(path, buffer)
            except OSError as exc:
                raise CliError(
                    _("cannot read {path}: {reason}").format(path=path, reason=exc.strerror)
                ) from None
            entries.append(DatasetEntry(path_in_dataset, size, digest))
            advance(1)
    return entries


def anchor_manifest(
    client: NodeClient,
    key: ed25519.SigningKey,
    manifest: Manifest,
    manifest_file: Path,
    submission: Submission,
) -> dict[str, Any]:
    """Sign the manifest's anchor, write the manifest (naming the transaction), post it;
    the manifest is removed again if the ledger does not take the transaction."""
    tx = sign_next(client, key, manifest.body())
    tx_id = compute_tx_id(encode_tx(tx))
    named = replace(manifest, chain_id=tx.chain_id, tx_id=tx_id)
    write_manifest(manifest_file, named)
    try:
        result = post_signed(client, tx, wait=False)
    except CliError as exc:  # refused, or the node could not be reached
        if exc.exit_code != EXIT_INTERRUPTED:  # Ctrl-C: it may have been posted, keep it
            manifest_file.unlink(missing_ok=True)
        raise
    # Once posted, the manifest stays until the ledger says it rejected the transaction.
    if submission.wait:
        result.update(wait_for_outcome(client, result["tx_id"], submission.timeout))
    if result["status"] == "rejected":
        manifest_file.unlink(missing_ok=True)
    return result


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Write a manifest to a file that must not exist yet."""
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(encode_manifest_json(manifest))
    except FileExistsError:
        raise CliError(
            _("{path} exists: move it, or give --manifest FILE").format(path=path)
        ) from None
    except OSError as exc:
        raise CliError(
            _("cannot write {path}: {reason}").format(path=path, reason=exc.strerror)
        ) from None


def report_anchor(result: dict[str, Any], as_json: bool) -> None:
    """Print an anchor's outcome; exit 1 if the ledger refused it."""
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        line = f"anchor {result['tx_id']}: {_(result['status'])}"
        if result["status"] == "committed":
            line += _(" at height {height}, index {index}").format(
                height=result["height"], index=result["index"]
            )
        click.echo(line)
        click.echo(
            _("{name}: {count} files, {size} bytes, root {root}").format(
                name=result["name"],
                count=result["file_count"],
                size=result["total_bytes"],
                root=result["root"],
            )
        )
        if result["status"] != "rejected":
            click.echo(_("manifest: {path}").format(path=result["manifest"]))
    if result["status"] == "rejected":
        raise CliError(
            _("transaction rejected: {reason}").format(reason=result.get("reason")), EXIT_REFUSED
        )


# Streams


class ReadingSource:
    """Readings from a file descriptor: one per line (without its newline; empty lines
    are skipped), or one per msgpack value (its bytes as they came)."""

    def __init__(self, fd: int, reading_format: str) -> None:
        self.fd = fd
        self.lines = reading_format == "lines"
        self.pending = bytearray()
        self.offset = 0  # bytes of the input before `pending`
        self.unpacker = msgpack.Unpacker(
            raw=True, strict_map_key=False, max_buffer_size=MAX_READING_SIZE
        )
        self.error: CliError | None = None

    def read(self, timeout_s: float) -> list[bytes] | None:
        """Return the readings completed within timeout_s (maybe none); None at the end."""
        if self.error is not None:
            raise self.error
        ready, _unused, _unused = select.select([self.fd], [], [], max(0.0, timeout_s))
        if not ready:
            return []
        data = os.read(self.fd, READ_SIZE)
        if not data:
            return self.finish()
        return self.split_lines(data) if self.lines else self.unpack(data)

    def split_lines(self, data: bytes) -> list[bytes]:
        self.pending += data
        *lines, rest = bytes(self.pending).split(b"\n")
        self.pending = bytearray(rest)
        if len(rest) > MAX_READING_SIZE:
            raise CliError(
                _("a reading is longer than {limit} bytes").format(limit=MAX_READING_SIZE)
            )
        return [line for line in lines if line]

    def unpack(self, data: bytes) -> list[bytes]:
        """Return the msgpack values completed by data; a malformed one is refused at the
        next read, so the readings before it still count."""
        self.pending += data
        readings: list[bytes] = []
        try:
            self.unpacker.feed(data)
            for _value in self.unpacker:
                end = self.unpacker.tell()
                readings.append(bytes(self.pending[: end - self.offset]))
                del self.pending[: end - self.offset]
                self.offset = end
        except (ValueError, msgpack.UnpackException) as exc:
            self.error = CliError(
                _("standard input is not msgpack after byte {offset}: {reason}").format(
                    offset=self.offset, reason=str(exc) or type(exc).__name__
                )
            )
        return readings

    def finish(self) -> list[bytes] | None:
        """Flush what the end of the input completes; None once nothing is left."""
        if not self.pending:
            return None
        rest, self.pending = bytes(self.pending), bytearray()
        if not self.lines:
            raise CliError(
                _("standard input ends inside a msgpack value, after byte {offset}").format(
                    offset=self.offset
                )
            )
        return [rest]


def run_windows(
    source: ReadingSource,
    window_ms: int,
    now_ms: Callable[[], int],
    anchor_window: Callable[[list[bytes], int, int], None],
) -> None:
    """Collect readings into windows aligned to multiples of window_ms by `now_ms`, and
    hand each window that got readings to `anchor_window(readings, start, end)`; the end
    of the input closes the last window."""
    start = now_ms() // window_ms * window_ms
    readings: list[bytes] = []
    while True:
        try:
            got = source.read((start + window_ms - now_ms()) / 1000)
        except CliError:
            # Bad input ends the stream; the readings before it are still anchored.
            if readings:
                anchor_window(readings, start, start + window_ms)
            raise
        if got is None:
            break
        # Readings read after the window closed belong to the window they came in.
        now = now_ms()
        if now >= start + window_ms:
            if readings:
                anchor_window(readings, start, start + window_ms)
            start, readings = now // window_ms * window_ms, []
        readings.extend(got)
    if readings:
        anchor_window(readings, start, start + window_ms)


def wall_clock_ms() -> int:
    """Return the time in ms since the epoch."""
    return time.time_ns() // 1_000_000


def run_stream(
    name: str,
    category: str,
    window_ms: int,
    reading_format: str,
    manifest_dir: Path,
    **options: Any,
) -> None:
    """Anchor standard input's readings, one transaction per window, until it ends."""
    submission = Submission(**options)
    if not manifest_dir.is_dir():
        raise CliError(_("{path} is not a folder").format(path=manifest_dir))
    key = load_signing_key(submission.keystore_dir, submission.from_key, submission.password_file)
    client = NodeClient(submission.node_url)
    refused: list[str] = []

    def anchor_window(readings: list[bytes], start: int, end: int) -> None:
        manifest = make_stream_manifest(name, category, readings, start, end)
        path = free_manifest_path(manifest_dir, name, start)
        result = anchor_manifest(client, key, manifest, path, submission)
        result.update(
            name=name,
            window_start_ms=start,
            window_end_ms=end,
            readings=len(readings),
            root=manifest.root.hex(),
            manifest=None if result["status"] == "rejected" else str(path),
        )
        report_window(result, submission.as_json)
        if result["status"] == "rejected":
            refused.append(str(result.get("reason")))

    run_windows(
        ReadingSource(sys.stdin.fileno(), reading_format), window_ms, wall_clock_ms, anchor_window
    )
    if refused:
        raise CliError(
            _("transaction rejected: {reason}").format(reason="; ".join(refused)), EXIT_REFUSED
        )


def format_window_start(start_ms: int) -> str:
    """Return a window's start as it names files: UTC, e.g. 20261201T101530Z."""
    return datetime.fromtimestamp(start_ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")


def free_manifest_path(folder: Path, name: str, start_ms: int) -> Path:
    """Return NAME.<window start>.anchor.json in the folder, numbered if one exists (the
    same window anchored again after a restart)."""
    stem = f"{name}.{format_window_start(start_ms)}"
    path, number = folder / f"{stem}.anchor.json", 1
    while path.exists():
        path, number = folder / f"{stem}.{number}.anchor.json", number + 1
    return path


def report_window(result: dict[str, Any], as_json: bool) -> None:
    """Print one line (or one JSON object) per anchored window."""
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
        return
    line = _("window {start}: {count} readings, anchor {tx_id} {status}").format(
        start=format_window_start(result["window_start_ms"]),
        count=result["readings"],
        tx_id=result["tx_id"],
        status=_(result["status"]),
    )
    if result["manifest"]:
        line += _(", manifest {path}").format(path=result["manifest"])
    click.echo(line)
