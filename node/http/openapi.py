"""The OpenAPI 3 description of the client API, served at /openapi.json.

Written by hand next to the handlers it describes; tests/integration/test_openapi.py
checks that every registered route is described and every described route exists, and
schemathesis checks the answers of a live node against it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from danangchain import __version__

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
            "enum": ["record", "endorse", "member_admit", "member_revoke", "validator_vote"],
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
        {"node_name": STRING, "node_address": ADDRESS, "node_public_key": HEX32},
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
        }
    ),
    "Record": obj(
        {
            "record_id": HEX32,
            "creator": ADDRESS,
            "category": STRING,
            "doc_hash": HEX32,
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
    "KeyBinding": obj({"public_key": HEX32, "address": ADDRESS}),
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


def _paths() -> dict[str, Any]:
    return {
        "/status": {
            "get": {
                "summary": "The chain and this node at a glance.",
                "responses": {"200": answer("Status.", ref("Status"))},
            }
        },
        "/txs": {
            "post": {
                "summary": "Submit one signed transaction.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                        "application/json": {"schema": obj({"tx": HEX})},
                    },
                },
                "responses": {
                    "202": answer("Admitted to the mempool.", ref("Submitted")),
                    "400": answer("Malformed or breaking a rule; `error` says which."),
                    "409": answer("Already pending or committed."),
                    "413": answer("Larger than 4096 bytes."),
                    "503": answer("The mempool is full."),
                },
            }
        },
        "/txs/batch": {
            "post": {
                "summary": "Submit a msgpack array of signed transactions; each is answered.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/msgpack": {
                            "schema": {
                                "type": "array",
                                "maxItems": 256,
                                "items": {"type": "string", "format": "binary"},
                            }
                        }
                    },
                },
                "responses": {
                    "200": answer("One result per transaction.", ref("BatchSubmitted")),
                    "400": answer("Not a msgpack array of byte strings."),
                    "413": answer("Too many transactions or bytes."),
                },
            }
        },
        "/txs/{tx_id}": {
            "get": {
                "summary": "Whether a transaction is committed, pending or rejected.",
                "parameters": [TX_ID],
                "responses": {
                    "200": answer("Its status.", ref("TxStatus")),
                    "400": BAD_ID,
                    "404": NOT_FOUND,
                },
            }
        },
        "/blocks/{height}": {
            "get": {
                "summary": "A block with its transactions and certificates.",
                "parameters": [
                    path_param(
                        "height",
                        {"type": "string", "pattern": "^(latest|[0-9]+)$"},
                        "A height, or `latest`.",
                    )
                ],
                "responses": {
                    "200": answer("The block.", ref("Block")),
                    "400": answer("Not a height."),
                    "404": NOT_FOUND,
                },
            }
        },
        "/accounts/{address}": {
            "get": {
                "summary": "A member's role, nonces and records.",
                "parameters": [path_param("address", ADDRESS, "A dn1... address.")],
                "responses": {
                    "200": answer("The account.", ref("Account")),
                    "400": answer("Not an address."),
                    "404": answer("Not a member."),
                },
            }
        },
        "/records/{record_id}": {
            "get": {
                "summary": "A committed record and whether it was endorsed.",
                "parameters": [path_param("record_id", HEX32, "A record id (64 hex).")],
                "responses": {
                    "200": answer("The record.", ref("Record")),
                    "400": BAD_ID,
                    "404": NOT_FOUND,
                },
            }
        },
        "/validators": {
            "get": {
                "summary": "The validator set that signs a height, and pending votes.",
                "parameters": [
                    query_param("height", {"type": "string"}, "Default: the next block's height.")
                ],
                "responses": {
                    "200": answer("The set.", ref("Validators")),
                    "400": answer("Not a height the set is known for."),
                },
            }
        },
        "/evidence": {
            "get": {
                "summary": "Conflicting votes this node caught, oldest heights first.",
                "description": "Each entry is one validator's two signed votes of the same "
                "type, height and round for different blocks, with each signature and whether "
                "it verifies.",
                "parameters": [
                    query_param(
                        "limit", {"type": "string"}, "At most this many entries (default 100)."
                    )
                ],
                "responses": {
                    "200": answer("The evidence.", ref("EvidenceList")),
                    "400": answer("A limit that is not a whole number."),
                },
            }
        },
        "/keys/{public_key}": {
            "get": {
                "summary": "The address a public key signs for.",
                "parameters": [path_param("public_key", HEX32, "An Ed25519 public key.")],
                "responses": {
                    "200": answer("The binding.", ref("KeyBinding")),
                    "400": answer("Not 64 hex characters."),
                },
            }
        },
        "/proofs/tx/{tx_id}": {
            "get": {
                "summary": "The inclusion proof of a committed transaction.",
                "parameters": [TX_ID],
                "responses": {
                    "200": answer("The proof.", ref("Proof")),
                    "400": BAD_ID,
                    "404": answer("Pending or unknown."),
                },
            }
        },
        "/chain/export": {
            "get": {
                "summary": "The chain up to the tip as an export stream.",
                "responses": {
                    "200": {
                        "description": "Header, blocks with certificates, trailer.",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    }
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics in the text exposition format.",
                "responses": {
                    "200": {
                        "description": "Metrics.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/health": {
            "get": {
                "summary": "Liveness: 200 while the process serves.",
                "responses": {"200": answer("Alive.", obj({"status": STRING}))},
            }
        },
        "/readiness": {
            "get": {
                "summary": "Readiness: 200 only when synced and connected, else 503.",
                "parameters": [
                    query_param(
                        "max_blocks_behind",
                        {"type": "string"},
                        "Blocks behind the highest peer allowed (default 2).",
                    ),
                    query_param(
                        "min_peers",
                        {"type": "string"},
                        "Peers that must answer (default 1 with peers, else 0).",
                    ),
                ],
                "responses": {
                    "200": answer("Ready.", ref("Readiness")),
                    "400": answer("A parameter is not a whole number."),
                    "503": answer("Not ready; `reasons` says why.", ref("Readiness")),
                },
            }
        },
        "/events": {
            "get": {
                "summary": "A websocket of new blocks and committed transactions (JSON texts).",
                "description": (
                    "Messages: `hello` first, then `block` and `tx` events. With `address` "
                    "only the transactions concerning that address are sent."
                ),
                "parameters": [
                    query_param("address", ADDRESS, "Only this address's transactions."),
                    query_param(
                        "types", {"type": "string"}, "block, tx or block,tx (the default)."
                    ),
                ],
                "responses": {
                    "101": {"description": "Switching to the websocket protocol."},
                    "400": answer("Not a websocket request, a bad address or bad types."),
                    "503": answer("Too many subscribers."),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document.",
                "responses": {"200": answer("OpenAPI 3.", {"type": "object"})},
            }
        },
    }


def build_openapi() -> dict[str, Any]:
    """Return the OpenAPI document of the client API."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "DanangChain client API",
            "version": __version__,
            "description": (
                "JSON over HTTP, served by every node. Bytes are lowercase hex; addresses "
                'are dn1...; errors are {"error": CODE, "message": TEXT}.'
            ),
        },
        "paths": _paths(),
        "components": {"schemas": SCHEMAS},
    }


async def handle_openapi(request: web.Request) -> web.Response:
    """GET /openapi.json: this API's OpenAPI 3 document."""
    return web.json_response(build_openapi())
