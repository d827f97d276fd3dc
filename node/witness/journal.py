"""A witness's home folder: what it signed, durably, before anyone sees it.

    witness.json        the chain (id, genesis hash) and the witness key this home serves
    genesis.json        the genesis the witness replays from
    checkpoints.jsonl   one line per cosigned checkpoint, with the block's header and
                        certificate: appended and fsynced before the checkpoint is served
                        or submitted
    evidence.json       written (atomically) when the chain contradicted a checkpoint
    LOCK                held while a witness runs, so two processes never sign for one home

A crash can tear only the last line of the journal, and only one that was never served
(the line is served after its fsync): reading drops such a line. Any other damage stops
the witness, since it could no longer prove what it signed.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from danangchain.block import Header
from danangchain.checkpoint import (
    Cosignature,
    decode_cosignature_json,
    encode_cosignature_json,
)
from danangchain.errors import DanangChainError
from danangchain.genesis import Genesis, decode_genesis_json, encode_genesis_json
from danangchain.proof import (
    decode_header_json,
    encode_certificate_json,
    encode_header_json,
)
from danangchain.validators import CommitCertificate

IDENTITY_FILE = "witness.json"
GENESIS_FILE = "genesis.json"
JOURNAL_FILE = "checkpoints.jsonl"
EVIDENCE_FILE = "evidence.json"
LOCK_FILE = "LOCK"


class JournalError(Exception):
    """A witness home that cannot be used: locked, unreadable, or for another chain or key."""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One cosigned checkpoint and the certified header it names."""

    cosignature: Cosignature
    header: Header
    certificate: dict[str, Any]  # as encode_certificate_json writes it


def write_atomically(path: Path, text: str) -> None:
    """Replace a file with new text: write a temporary file, fsync, rename, fsync the folder."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Make a folder's entries (a new or renamed file) durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class WitnessJournal:
    """The durable record of one witness home; open it with `open_journal`."""

    def __init__(self, home: Path, lock: IO[bytes]) -> None:
        self.home = home
        self._lock = lock
        self._journal: IO[str] | None = None

    @property
    def journal_path(self) -> Path:
        return self.home / JOURNAL_FILE

    def close(self) -> None:
        """Close the journal and release the home's lock."""
        if self._journal is not None:
            self._journal.close()
        self._lock.close()

    # Identity and genesis

    def read_genesis(self) -> Genesis | None:
        """Return the genesis this home follows, or None on first start."""
        path = self.home / GENESIS_FILE
        if not path.exists():
            return None
        try:
            return decode_genesis_json(path.read_text())
        except (OSError, UnicodeDecodeError, DanangChainError) as exc:
            raise JournalError(f"cannot read {path}: {exc}") from None

    def bind(self, genesis: Genesis, witness: bytes) -> None:
        """Record, on first start, the chain and key of this home; refuse another later."""
        identity = {
            "chain_id": genesis.chain_id,
            "genesis_hash": genesis.hash.hex(),
            "witness": witness.hex(),
        }
        path = self.home / IDENTITY_FILE
        if path.exists():
            try:
                stored = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise JournalError(f"cannot read {path}: {exc}") from None
            if stored.get("witness") != identity["witness"]:
                raise JournalError(
                    f"{self.home} holds the checkpoints of witness key {stored.get('witness')}, "
                    f"not of {identity['witness']}: give that key, or another --home"
                )
            if stored.get("genesis_hash") != identity["genesis_hash"]:
                raise JournalError(
                    f"{self.home} follows the chain of genesis {stored.get('genesis_hash')}, "
                    f"not {identity['genesis_hash']}"
                )
            return
        write_atomically(self.home / GENESIS_FILE, encode_genesis_json(genesis))
        write_atomically(path, json.dumps(identity, indent=2) + "\n")

    # Checkpoints

    def read_entries(self) -> list[JournalEntry]:
        """Return the journal's entries; drop a torn last line (never served)."""
        path = self.journal_path
        if not path.exists():
            return []
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise JournalError(f"cannot read {path}: {exc.strerror}") from None
        lines = data.split(b"\n")
        complete, torn = lines[:-1], lines[-1]
        entries = []
        for number, line in enumerate(complete, start=1):
            try:
                entries.append(decode_entry(json.loads(line)))
            except (ValueError, KeyError, TypeError, DanangChainError) as exc:
                raise JournalError(
                    f"{path} line {number} is damaged ({exc}): the witness cannot tell what "
                    "it signed; restore the file from a backup"
                ) from None
        if torn:
            with path.open("r+b") as handle:  # the torn tail was never fsynced whole
                handle.truncate(len(data) - len(torn))
                os.fsync(handle.fileno())
        return entries

    def append(self, entry: JournalEntry) -> None:
        """Append one entry and fsync it: only then may the checkpoint be shown."""
        if self._journal is None:
            created = not self.journal_path.exists()
            self._journal = self.journal_path.open("a")
            if created:
                sync_folder(self.home)
        self._journal.write(json.dumps(encode_entry(entry), separators=(",", ":")) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def find_entry(self, height: int) -> JournalEntry | None:
        """Return the journal entry of a height (a scan: only evidence needs it)."""
        for entry in self.read_entries():
            if entry.cosignature.height == height:
                return entry
        return None

    # Evidence

    def read_evidence(self) -> dict[str, Any] | None:
        """Return the evidence kept by an earlier run, if the chain contradicted it."""
        path = self.home / EVIDENCE_FILE
        if not path.exists():
            return None
        try:
            evidence = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise JournalError(f"cannot read {path}: {exc}") from None
        if not isinstance(evidence, dict):
            raise JournalError(f"{path} is not an evidence document")
        return evidence

    def write_evidence(self, evidence: dict[str, Any]) -> Path:
        """Keep the evidence durably; return its file."""
        path = self.home / EVIDENCE_FILE
        write_atomically(path, json.dumps(evidence, indent=2) + "\n")
        return path


def open_journal(home: Path) -> WitnessJournal:
    """Open (creating) a witness home and take its lock; raise JournalError if another
    witness process holds it."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        lock = (home / LOCK_FILE).open("ab")
    except OSError as exc:
        raise JournalError(f"cannot use {home} as a witness home: {exc.strerror}") from None
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise JournalError(
            f"another witness is running on {home}: two would sign for one home"
        ) from None
    return WitnessJournal(home, lock)


def encode_entry(entry: JournalEntry) -> dict[str, Any]:
    """Return a journal line's JSON."""
    return {
        "cosignature": encode_cosignature_json(entry.cosignature),
        "header": encode_header_json(entry.header),
        "certificate": entry.certificate,
    }


def decode_entry(fields: dict[str, Any]) -> JournalEntry:
    """Build a journal entry from its JSON line."""
    return JournalEntry(
        decode_cosignature_json(fields["cosignature"]),
        decode_header_json(fields["header"]),
        dict(fields["certificate"]),
    )


def make_entry(
    cosignature: Cosignature, header: Header, certificate: CommitCertificate
) -> JournalEntry:
    """Return the journal entry of a checkpoint of a certified block."""
    return JournalEntry(cosignature, header, encode_certificate_json(certificate))
