"""The chain export format: a versioned, self-describing stream of genesis, blocks, certificates.

An export is the 19-byte signature b"DANANGCHAIN EXPORT\\n", then records. A record is a
4-byte big-endian length and one canonical msgpack array of that many bytes:

    header  ["danangchain/export", 1, genesis_json, height]
    block   ["block", block_bytes, certificate_bytes]       one per height, 1..height
    end     ["end", height, block_hash, time_ms, state_root]

The genesis is the canonical text `encode_genesis_json` writes, so no byte of it can
change without changing the genesis hash. The end record names the tip, so a truncated
export is refused, and nothing may follow it. Nothing here is trusted: the auditor
replays every block; this module only frames and unframes records.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from danangchain.block import MAX_BLOCK_SIZE
from danangchain.encoding import expect_bytes, expect_int, expect_list, expect_str, pack, unpack
from danangchain.errors import DecodeError
from danangchain.genesis import Genesis, decode_genesis_json, encode_genesis_json
from danangchain.ledger import ChainTip

EXPORT_SIGNATURE = b"DANANGCHAIN EXPORT\n"
EXPORT_FORMAT = "danangchain/export"
EXPORT_VERSION = 1
RECORD_BLOCK = "block"
RECORD_END = "end"
MAX_GENESIS_SIZE = 1024 * 1024
MAX_CERTIFICATE_SIZE = 64 * 1024
MAX_RECORD_SIZE = MAX_BLOCK_SIZE + MAX_CERTIFICATE_SIZE + 64
_LENGTH = struct.Struct(">I")

ReadBytes = Callable[[int], bytes]


class ExportFormatError(DecodeError):
    """An export stream that is truncated or malformed."""

    code = "bad_export"


class NotAnExport(ExportFormatError):
    """A stream that does not start with the export file signature."""

    code = "not_an_export"


@dataclass(frozen=True, slots=True)
class ExportHeader:
    """What an export opens with: its genesis and the number of blocks that follow."""

    genesis: Genesis
    height: int


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """One block of an export as stored: its canonical bytes and its own certificate's."""

    height: int
    block_bytes: bytes
    certificate_bytes: bytes


def frame_record(fields: list[Any]) -> bytes:
    """Return one record: its length and its canonical encoding."""
    body = pack(fields)
    return _LENGTH.pack(len(body)) + body


def encode_export_header(genesis: Genesis, height: int) -> bytes:
    """Return the file signature and the header record of an export of `height` blocks."""
    header = [EXPORT_FORMAT, EXPORT_VERSION, encode_genesis_json(genesis), height]
    return EXPORT_SIGNATURE + frame_record(header)


def encode_block_record(block_bytes: bytes, certificate_bytes: bytes) -> bytes:
    """Return the record of one block and its certificate, both as stored."""
    return frame_record([RECORD_BLOCK, block_bytes, certificate_bytes])


def encode_end_record(tip: ChainTip) -> bytes:
    """Return the end record: the tip that the exported chain claims."""
    return frame_record([RECORD_END, tip.height, tip.block_hash, tip.time_ms, tip.state_root])


class ExportReader:
    """Read an export stream record by record, in constant memory; raise ExportFormatError."""

    def __init__(self, read: ReadBytes, first_height: int = 1) -> None:
        self._read = read
        # A stream asked for from a height (GET /chain/export?from=H) holds blocks H..height.
        self.first_height = first_height
        self.claimed_tip: ChainTip | None = None
        try:
            signature = self._read_exact(len(EXPORT_SIGNATURE), "the file signature")
        except ExportFormatError:
            signature = b""
        if signature != EXPORT_SIGNATURE:
            raise NotAnExport("not a DanangChain export (it does not start with the signature)")
        self.header = decode_export_header(self._next_record("the header"))

    def __iter__(self) -> Iterator[BlockRecord]:
        """Yield the block records in order, then read the end record into `claimed_tip`."""
        for height in range(self.first_height, self.header.height + 1):
            fields = self._next_record(f"block {height}")
            kind, block_bytes, certificate_bytes = expect_list(fields, 3, f"block {height} record")
            if kind != RECORD_BLOCK:
                raise ExportFormatError(
                    f"record {kind!r} where block {height} of {self.header.height} should be"
                )
            yield BlockRecord(
                height,
                expect_bytes(block_bytes, "block", max_size=MAX_BLOCK_SIZE),
                expect_bytes(certificate_bytes, "certificate", max_size=MAX_CERTIFICATE_SIZE),
            )
        self.claimed_tip = decode_end_record(self._next_record("the end record"))
        if self._read(1):
            raise ExportFormatError("bytes follow the end record")

    def _next_record(self, what: str) -> Any:
        """Read and decode the next record."""
        (length,) = _LENGTH.unpack(self._read_exact(_LENGTH.size, what))
        if length > MAX_RECORD_SIZE:
            raise ExportFormatError(f"{what}: a record of {length} bytes is over the limit")
        try:
            return unpack(self._read_exact(length, what), max_size=MAX_RECORD_SIZE)
        except ExportFormatError:
            raise
        except DecodeError as exc:
            raise ExportFormatError(f"{what}: {exc}") from None

    def _read_exact(self, size: int, what: str) -> bytes:
        """Read exactly `size` bytes, however the stream splits them; refuse an early end."""
        parts = []
        remaining = size
        while remaining:
            part = self._read(remaining)
            if not part:
                raise ExportFormatError(f"the export is truncated in {what}")
            parts.append(part)
            remaining -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)


def decode_export_header(value: Any) -> ExportHeader:
    """Check a header record's format, version and genesis."""
    if not isinstance(value, list) or not value or value[0] != EXPORT_FORMAT:
        raise ExportFormatError("the first record is not a DanangChain export header")
    name, version, genesis_json, height = expect_list(value, 4, "export header")
    if expect_int(version, "export version") != EXPORT_VERSION:
        raise ExportFormatError(f"export version {version} is not supported (only 1)")
    text = expect_str(genesis_json, "genesis", MAX_GENESIS_SIZE)
    genesis = decode_genesis_json(text)
    # Verify the genesis text is canonical: whitespace or escapes could otherwise change
    # bytes of the file without changing the genesis hash.
    if encode_genesis_json(genesis) != text:
        raise ExportFormatError("the genesis document is not in its canonical form")
    return ExportHeader(genesis, expect_int(height, "export height"))


def decode_end_record(value: Any) -> ChainTip:
    """Check the end record and return the tip it claims."""
    kind, height, block_hash, time_ms, state_root = expect_list(value, 5, "end record")
    if kind != RECORD_END:
        raise ExportFormatError(f"record {kind!r} where the end record should be")
    # The auditor compares the claimed tip, height included, with the replayed one.
    return ChainTip(
        expect_int(height, "end height"),
        expect_bytes(block_hash, "end block hash", size=32),
        expect_int(time_ms, "end time"),
        expect_bytes(state_root, "end state root", size=32),
    )
