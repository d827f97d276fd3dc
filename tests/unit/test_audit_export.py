"""The export format: framing, refusals, and tampered export files caught at the right height."""

from __future__ import annotations

import io
import struct

import pytest

from danangchain.audit import AuditFailure
from danangchain.block import encode_block
from danangchain.encoding import pack
from danangchain.errors import DecodeError
from danangchain.export import (
    EXPORT_SIGNATURE,
    MAX_RECORD_SIZE,
    ExportFormatError,
    ExportReader,
    NotAnExport,
    encode_export_header,
    frame_record,
)
from danangchain.genesis import encode_genesis_json
from danangchain.validators import encode_certificate
from tests.unit.audit_fixtures import BuiltChain, audit_export, build_chain, export_of


@pytest.fixture(scope="module")
def chain() -> BuiltChain:
    """A one-validator chain of six blocks."""
    return build_chain(4)


@pytest.fixture(scope="module")
def export(chain: BuiltChain) -> bytes:
    """The export bytes of the chain."""
    return export_of(chain)


def record_spans(data: bytes) -> list[tuple[int, int]]:
    """Return (start, end) of every record after the signature: header, blocks, end."""
    spans = []
    position = len(EXPORT_SIGNATURE)
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        spans.append((position, position + 4 + length))
        position += 4 + length
    return spans


def read_all(data: bytes) -> tuple[ExportReader, list[tuple[bytes, bytes]]]:
    """Read every block record of an export."""
    reader = ExportReader(io.BytesIO(data).read)
    return reader, [(r.block_bytes, r.certificate_bytes) for r in reader]


def bin_header_size(length: int) -> int:
    """Return the size of the msgpack bin header of a byte string of this length."""
    return 2 if length < 2**8 else 3 if length < 2**16 else 5


def flip(data: bytes, position: int, bit: int = 0) -> bytes:
    """Return data with one bit flipped."""
    return data[:position] + bytes([data[position] ^ (1 << bit)]) + data[position + 1 :]


# The format


def test_export_reads_back_the_blocks_certificates_and_tip(
    chain: BuiltChain, export: bytes
) -> None:
    reader, records = read_all(export)
    assert reader.header.genesis == chain.genesis
    assert reader.header.height == len(chain.blocks)
    assert records == [
        (encode_block(b), encode_certificate(c))
        for b, c in zip(chain.blocks, chain.certificates, strict=True)
    ]
    assert reader.claimed_tip == chain.tip


def test_export_starts_readable(export: bytes) -> None:
    assert export.startswith(b"DANANGCHAIN EXPORT\n")
    assert b'"chain_id": "danang-test"' in export[:2000]


def test_a_file_that_is_not_an_export_is_refused(export: bytes) -> None:
    for data in (b"", b"{}", b"PK\x03\x04" + export[4:], export[:10]):
        with pytest.raises(NotAnExport):
            ExportReader(io.BytesIO(data).read)


def test_unknown_export_version_is_refused(chain: BuiltChain) -> None:
    header = frame_record(["danangchain/export", 2, encode_genesis_json(chain.genesis), 0])
    with pytest.raises(ExportFormatError, match="version 2 is not supported"):
        ExportReader(io.BytesIO(EXPORT_SIGNATURE + header).read)


def test_genesis_not_in_canonical_form_is_refused(chain: BuiltChain) -> None:
    # Same genesis, same hash, other bytes: refused so that no byte can change unnoticed.
    text = encode_genesis_json(chain.genesis).replace('": ', '":  ', 1)
    header = frame_record(["danangchain/export", 1, text, 0])
    with pytest.raises(ExportFormatError, match="canonical"):
        ExportReader(io.BytesIO(EXPORT_SIGNATURE + header).read)


def test_oversized_record_length_is_refused_before_reading_it(chain: BuiltChain) -> None:
    data = encode_export_header(chain.genesis, 1) + struct.pack(">I", MAX_RECORD_SIZE + 1)
    with pytest.raises(ExportFormatError, match="over the limit"):
        read_all(data)


def test_bytes_after_the_end_record_are_refused(export: bytes) -> None:
    with pytest.raises(ExportFormatError, match="follow the end record"):
        read_all(export + b"\x00")


def test_record_of_the_wrong_kind_is_refused(chain: BuiltChain, export: bytes) -> None:
    spans = record_spans(export)
    end = export[spans[-1][0] :]
    # The end record where block 2 should be.
    data = export[: spans[2][0]] + end
    with pytest.raises(DecodeError):
        read_all(data)
    with pytest.raises(AuditFailure) as caught:
        audit_export(data)
    assert caught.value.height == 2


def test_block_record_with_extra_fields_is_refused(chain: BuiltChain) -> None:
    data = encode_export_header(chain.genesis, 1) + frame_record(["block", b"", b"", b""])
    with pytest.raises(DecodeError, match="expected 3 fields"):
        read_all(data)


def test_reader_copes_with_a_stream_that_returns_short_reads(export: bytes) -> None:
    stream = io.BytesIO(export)
    reader = ExportReader(lambda size: stream.read(min(size, 7)))
    assert len(list(reader)) == reader.header.height


# Tampered export files


def test_truncated_export_fails_at_the_height_it_lost(chain: BuiltChain, export: bytes) -> None:
    spans = record_spans(export)
    tip = len(chain.blocks)
    for index, (start, end) in enumerate(spans):
        for cut in (start, start + 2, (start + end) // 2, end - 1):
            if index == 0:
                with pytest.raises(ExportFormatError, match="truncated"):
                    audit_export(export[:cut])
                continue
            with pytest.raises(AuditFailure) as caught:
                audit_export(export[:cut])
            assert "truncated" in caught.value.reason
            assert caught.value.height == min(index, tip), (index, cut)


def test_flipped_bit_in_any_block_fails_at_that_block(chain: BuiltChain, export: bytes) -> None:
    spans = record_spans(export)
    # Every other byte of block 1; a sample of the later ones, which cost a replay of their past.
    for height, stride in ((1, 2), (4, 11), (len(chain.blocks), 5)):
        start, end = spans[height]
        # Every byte of the stored block, past the record's framing (length, array, kind and
        # bin header): the property test covers the framing.
        block_length = len(encode_block(chain.blocks[height - 1]))
        block_start = start + 4 + len(pack(["block"])) + bin_header_size(block_length)
        for position in range(block_start, block_start + block_length, stride):
            with pytest.raises(AuditFailure) as caught:
                audit_export(flip(export, position, position % 8))
            assert caught.value.height == height, (height, position, caught.value)


def test_flipped_bit_in_a_certificate_fails_at_its_block(chain: BuiltChain, export: bytes) -> None:
    spans = record_spans(export)
    for height, stride in ((1, 1), (len(chain.blocks), 5)):
        start, end = spans[height]
        certificate_length = len(encode_certificate(chain.certificates[height - 1]))
        for position in range(end - certificate_length, end, stride):
            with pytest.raises(AuditFailure) as caught:
                audit_export(flip(export, position, position % 8))
            assert caught.value.height == height, (height, position, caught.value)


def test_flipped_bit_in_the_end_record_fails_at_the_tip(chain: BuiltChain, export: bytes) -> None:
    start, end = record_spans(export)[-1]
    tip = len(chain.blocks)
    for position in range(start + 4, end):
        with pytest.raises((AuditFailure, DecodeError)) as caught:
            audit_export(flip(export, position, position % 8))
        if isinstance(caught.value, AuditFailure):
            assert caught.value.height in (tip, tip + 1), (position, caught.value)


def test_flipped_bit_in_the_header_never_passes(chain: BuiltChain, export: bytes) -> None:
    start, end = record_spans(export)[0]
    for position in range(0, end, 3):
        with pytest.raises((AuditFailure, DecodeError)):
            audit_export(flip(export, position, position % 8), chain.genesis.hash)


def test_frame_record_is_length_then_canonical_msgpack() -> None:
    assert frame_record(["end", 0]) == struct.pack(">I", 6) + pack(["end", 0])
