"""Every key of the node's store, in one place.

Tables are one leading byte; heights are big-endian, so keys sort in height order:
  b"b" height               -> block bytes
  b"c" height               -> commit certificate of that block
  b"t" tx_id                -> [height, index]
  b"p" tx_id                -> a transaction admitted to the mempool, not yet committed
  b"v" height               -> the validator set that signs from that height on
  b"s" key                  -> state value (the core's own schema, danangchain/state.py)
  b"a" address height index -> record id (records made by or about an address)
  b"e" height digest        -> two conflicting signed votes of one validator
  b"d" address doc category -> record id (a member's standing record of a document)
  b"x" tx_id                -> a sealed record's encrypted content (kept beside the chain,
                               deleted when an erase commits)
  b"l" owner time seq       -> access log: who read the owner's data, what and when (not
                               consensus state: each node logs the reads it served)
  b"m" name                 -> metadata: schema version, genesis hash, tip, signing record
"""

from __future__ import annotations

import struct

from danangchain.encoding import expect_bytes, expect_int, expect_list, pack, unpack
from danangchain.ledger import ChainTip

SCHEMA_VERSION = 1

TABLE_BLOCK = b"b"
TABLE_CERTIFICATE = b"c"
TABLE_TX = b"t"
TABLE_PENDING = b"p"
TABLE_VALIDATOR_SET = b"v"
TABLE_STATE = b"s"
TABLE_ADDRESS_RECORD = b"a"
TABLE_EVIDENCE = b"e"
TABLE_DOCUMENT = b"d"
TABLE_SEALED = b"x"
TABLE_ACCESS_LOG = b"l"
# The access log's owner of reads of every member's data at once (a chain export).
EVERY_MEMBER = bytes(20)

META_SCHEMA = b"mschema"
META_GENESIS = b"mgenesis"
META_TIP = b"mtip"
META_SIGNING = b"msigning"
# Set once the document index covers every record (stores made before it get it built).
META_DOCUMENT_INDEX = b"mdocuments"


def _height(height: int) -> bytes:
    return struct.pack(">Q", height)


def decode_height(key: bytes) -> int | None:
    """Return the height a table key (without its table byte) holds, or None if malformed."""
    return int(struct.unpack(">Q", key)[0]) if len(key) == 8 else None


def block_key(height: int) -> bytes:
    """Return the key of the block at a height."""
    return TABLE_BLOCK + _height(height)


def certificate_key(height: int) -> bytes:
    """Return the key of the certificate of the block at a height."""
    return TABLE_CERTIFICATE + _height(height)


def tx_key(tx_id: bytes) -> bytes:
    """Return the key of a transaction's location."""
    return TABLE_TX + tx_id


def pending_key(tx_id: bytes) -> bytes:
    """Return the key of a transaction admitted to the mempool and not yet committed."""
    return TABLE_PENDING + tx_id


def validator_set_key(height: int) -> bytes:
    """Return the key of the validator set that signs from a height on."""
    return TABLE_VALIDATOR_SET + _height(height)


def state_key(key: bytes) -> bytes:
    """Return the store key of a state entry."""
    return TABLE_STATE + key


def address_records_prefix(address: bytes) -> bytes:
    """Return the prefix of every record index entry of an address."""
    return TABLE_ADDRESS_RECORD + address


def address_record_key(address: bytes, height: int, index: int) -> bytes:
    """Return the key of an address-to-record index entry."""
    return address_records_prefix(address) + _height(height) + struct.pack(">I", index)


def document_key(document: bytes) -> bytes:
    """Return the key of a document index entry (creator address, digest, category)."""
    return TABLE_DOCUMENT + document


def sealed_key(tx_id: bytes) -> bytes:
    """Return the key of a sealed record's encrypted content."""
    return TABLE_SEALED + tx_id


def access_log_prefix(owner: bytes) -> bytes:
    """Return the prefix of every access log entry of an owner (an address, EVERY_MEMBER)."""
    return TABLE_ACCESS_LOG + owner


def access_log_key(owner: bytes, time_ms: int, sequence: int) -> bytes:
    """Return the key of one access log entry: by owner, then in time order."""
    return access_log_prefix(owner) + _height(time_ms) + struct.pack(">I", sequence & 0xFFFFFFFF)


def evidence_key(height: int, digest: bytes) -> bytes:
    """Return the key of a piece of evidence of equivocation."""
    return TABLE_EVIDENCE + _height(height) + digest[:8]


def encode_tip(tip: ChainTip) -> bytes:
    """Encode the tip metadata."""
    return pack([tip.height, tip.block_hash, tip.time_ms, tip.state_root])


def decode_tip(data: bytes) -> ChainTip:
    """Decode the tip metadata."""
    height, block_hash, time_ms, state_root = expect_list(unpack(data), 4, "tip")
    return ChainTip(
        expect_int(height, "tip height"),
        expect_bytes(block_hash, "tip hash", size=32),
        expect_int(time_ms, "tip time"),
        expect_bytes(state_root, "tip state root", size=32),
    )


def encode_tx_location(height: int, index: int) -> bytes:
    """Return the stored form of a transaction's location."""
    return pack([height, index])
