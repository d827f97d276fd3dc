"""The parts of the client API's OpenAPI document: schema helpers, the component schemas
and the shared parameters and answers. node/http/openapi.py puts them together."""

from __future__ import annotations

from typing import Any

from danangchain.transaction import KINDS

HEX32 = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
HEX = {"type": "string", "pattern": "^([0-9a-f]{2})*$"}
ADDRESS = {"type": "string", "pattern": "^dn1[02-9ac-hj-np-z]+$", "example": "dn1..."}
INT = {"type": "integer", "minimum": 0}
NULL_INT = {"type": "integer", "minimum": 0, "nullable": True}
STRING = {"type": "string"}


def ref(name: str) -> dict[str, str]:
    """Return a reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return an object schema with required and optional properties."""
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    """Return a JSON content map."""
    return {"application/json": {"schema": schema}}


def answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return a response: a JSON document of `schema`, or an Error."""
    return {"description": description, "content": json_content(schema or ref("Error"))}


def path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """Return a path parameter."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
    }


def query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """Return an optional query parameter."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


CERTIFICATE = obj(
    {
        "height": INT,
        "round": INT,
        "block_hash": HEX32,
        "signatures": {
            "type": "array",
            "items": obj({"validator": HEX32, "signature": HEX}),
        },
    }
)
HEADER = obj(
    {
        "chain_id": STRING,
        "height": INT,
        "time_ms": INT,
        "previous_hash": HEX32,
        "tx_root": HEX32,
        "tx_count": INT,
        "state_root": HEX32,
        "validators_hash": HEX32,
        "next_validators_hash": HEX32,
        "proposer": HEX32,
        "last_commit_hash": HEX32,
    }
)
TRANSACTION = obj(
    {
        "tx_id": HEX32,
        "chain_id": STRING,
        "kind": {
            "type": "string",
            "enum": list(KINDS),  # every kind the core decodes, from its one list
        },
        "sender": {
            **ADDRESS,
            "description": "The member who signed: after a key rotation, the member the key "
            "signs for, not the key's own address.",
        },
        "key_address": {**ADDRESS, "description": "The signing key's own address."},
        "sender_public_key": HEX32,
        "nonce": INT,
        "body": {"type": "object", "description": "The fields of the kind's body."},
        "signature": HEX,
    }
)
MESSAGE_TEMPLATE: dict[str, Any] = {
    "template": {
        "type": "string",
        "description": "For a broken ledger rule: the message with {name} placeholders, "
        "in English, so a client can show it in its user's language.",
    },
    "values": {
        "type": "object",
        "description": "The values of the template's placeholders (strings and integers).",
    },
}
SCHEMAS: dict[str, Any] = {
    "Error": obj({"error": STRING, "message": STRING}, MESSAGE_TEMPLATE),
    "Certificate": CERTIFICATE,
    "Header": HEADER,
    "Transaction": TRANSACTION,
    "Status": obj(
        {
            "chain_id": STRING,
            "height": INT,
            "latest_block_hash": HEX32,
            "latest_block_time_ms": INT,
            "state_root": HEX32,
            "genesis_hash": HEX32,
            "mempool_size": INT,
            "validators": {"type": "array", "items": HEX32},
            "version": STRING,
            "counters": {"type": "object", "additionalProperties": INT},
        },
        {
            "node_name": STRING,
            "node_address": ADDRESS,
            "node_public_key": HEX32,
            "audit_keys": {
                "type": "array",
                "items": HEX32,
                "description": "The network's audit keys (X25519): every sealed record is "
                "also encrypted to each of them.",
            },
        },
    ),
    "Submitted": obj({"tx_id": HEX32, "status": {"type": "string", "enum": ["pending"]}}),
    "BatchSubmitted": obj(
        {
            "admitted": INT,
            "results": {
                "type": "array",
                "items": obj(
                    {"status": {"type": "string", "enum": ["pending", "refused"]}},
                    {"tx_id": HEX32, "error": STRING, "message": STRING, **MESSAGE_TEMPLATE},
                ),
            },
        }
    ),
    "TxStatus": obj(
        {"status": {"type": "string", "enum": ["committed", "pending", "rejected"]}},
        {
            "tx_id": HEX32,
            "height": INT,
            "index": INT,
            "block_hash": HEX32,
            "tx": ref("Transaction"),
            "reason": STRING,
        },
    ),
    "Block": obj(
        {
            "hash": HEX32,
            "height": INT,
            "header": ref("Header"),
            "tx_count": INT,
            "txs": {"type": "array", "items": ref("Transaction")},
            "last_commit": {**ref("Certificate"), "nullable": True},
            "certificate": {**ref("Certificate"), "nullable": True},
        }
    ),
    "Account": obj(
        {
            "address": ADDRESS,
            "role": STRING,
            "nonce": INT,
            "next_nonce": INT,
            "pending_txs": INT,
            "revoked": {"type": "boolean"},
            "admitted_height": INT,
            "revoked_height": NULL_INT,
            "records": {"type": "array", "items": HEX32},
        },
        {
            "encryption_key": {
                **HEX32,
                "nullable": True,
                "description": "The X25519 key sealed records are encrypted to for this "
                "member (published at admission); null if none was published.",
            }
        },
    ),
    "Record": obj(
        {
            "record_id": HEX32,
            "creator": ADDRESS,
            "category": STRING,
            "doc_hash": {
                **HEX32,
                "nullable": True,
                "description": "None: a payment without a document.",
            },
            "amount": NULL_INT,
            "counterparty": {**ADDRESS, "nullable": True},
            "memo": STRING,
            "reference": {**HEX32, "nullable": True},
            "reference_kind": {"type": "string", "nullable": True},
            "height": INT,
            "endorsed": {"type": "boolean"},
            "endorsed_height": NULL_INT,
            "cancelled": {"type": "boolean"},
            "cancelled_height": NULL_INT,
            "amended_by": {
                "type": "array",
                "items": HEX32,
                "description": "The records that amend this one, oldest first.",
            },
        },
        {
            "sealed": {
                **obj(
                    {
                        "content_hash": HEX32,
                        "erased": {"type": "boolean"},
                        "erased_height": NULL_INT,
                        "envelope": {**HEX, "nullable": True},
                    }
                ),
                "description": "A sealed record only (its amount and memo are then null and "
                "empty, and doc_hash is a salted commitment): the encrypted content this "
                "node holds, in hex, for the creator, the counterparty and the audit keys "
                "to open; null once erased. See docs/privacy.md.",
            }
        },
    ),
    "AccessLog": obj(
        {
            "address": ADDRESS,
            "count": INT,
            "entries": {
                "type": "array",
                "items": obj(
                    {
                        "reader": ADDRESS,
                        "reader_role": STRING,
                        "route": {
                            "type": "string",
                            "enum": [
                                "record",
                                "account",
                                "tx",
                                "block",
                                "proof",
                                "chain_export",
                                "events",
                            ],
                        },
                        "target": {
                            "type": "string",
                            "description": "The record or transaction id, address, height, or "
                            "the exported heights (first-last).",
                        },
                        "time_ms": INT,
                    }
                ),
            },
        }
    ),
    "Validators": obj(
        {
            "height": INT,
            "validators": {
                "type": "array",
                "items": obj(
                    {"public_key": HEX32, "address": ADDRESS, "name": STRING, "power": INT}
                ),
            },
            "total_power": INT,
            "quorum": INT,
            "pending_votes": {"type": "array", "items": {"type": "object"}},
        }
    ),
    "Nodes": obj(
        {
            "height": INT,
            "count": INT,
            "nodes": {
                "type": "array",
                "items": obj(
                    {
                        "name": STRING,
                        "public_key": HEX32,
                        "address": ADDRESS,
                        "role": {"type": "string", "enum": ["validator", "full"]},
                        "p2p_urls": {"type": "array", "items": STRING},
                        "tls_certificate_sha256": {**HEX32, "nullable": True},
                        "since_height": INT,
                    }
                ),
            },
        }
    ),
    "KeyBinding": obj(
        {
            "public_key": HEX32,
            "address": ADDRESS,
            "chain_id": STRING,
            "member": {"type": "boolean"},
        },
        {"role": STRING, "revoked": {"type": "boolean"}, "next_nonce": INT},
    ),
    "EvidenceList": obj(
        {
            "count": INT,
            "evidence": {
                "type": "array",
                "items": obj(
                    {
                        "validator": HEX32,
                        "height": INT,
                        "round": INT,
                        "vote_type": {"type": "string", "enum": ["prevote", "precommit"]},
                        "votes": {
                            "type": "array",
                            "items": obj(
                                {
                                    "block_hash": {**HEX32, "nullable": True},
                                    "signature": HEX,
                                    "signature_valid": {"type": "boolean"},
                                }
                            ),
                        },
                    }
                ),
            },
        }
    ),
    "Proof": obj(
        {
            "format": STRING,
            "version": INT,
            "tx_id": HEX32,
            "height": INT,
            "block_hash": HEX32,
            "tx": HEX,
            "index": INT,
            "merkle_path": {"type": "array", "items": HEX32},
            "header": ref("Header"),
            "certificate": ref("Certificate"),
            "genesis": {"type": "object"},
            "handovers": {
                "type": "array",
                "description": "For each validator set change below the height, in height "
                "order: the certified header after which the next set signs, and that set.",
                "items": obj(
                    {
                        "header": ref("Header"),
                        "certificate": ref("Certificate"),
                        "next_validators": {
                            "type": "array",
                            "items": obj({"public_key": HEX32, "name": STRING, "power": INT}),
                        },
                    }
                ),
            },
        }
    ),
    "Readiness": obj(
        {
            "ready": {"type": "boolean"},
            "height": INT,
            "blocks_behind": INT,
            "peers_answering": INT,
            "peers_configured": INT,
            "reasons": {"type": "array", "items": STRING},
        }
    ),
}

TX_ID = path_param("tx_id", HEX32, "A transaction id (64 hex).")
BAD_ID = answer("The id is not 64 hex characters.")
NOT_FOUND = answer("Not known to this node.")
