"""The OpenAPI 3 description of the client API, served at /openapi.json.

Written by hand next to the handlers it describes; tests/integration/test_openapi.py
checks that every registered route is described and every described route exists, and
schemathesis checks the answers of a live node against it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from danangchain import __version__
from node.http.openapi_schemas import (
    ADDRESS,
    BAD_ID,
    HEX,
    HEX32,
    NOT_FOUND,
    SCHEMAS,
    STRING,
    TX_ID,
    answer,
    obj,
    path_param,
    query_param,
    ref,
)

SECURITY_SCHEMES = {
    "signedRead": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "DanangChain key=<public key hex>, time=<ms>, nonce=<16 to 64 hex>, "
        'signature=<Ed25519 over the canonical msgpack of ["danangchain/read/v1", chain id, '
        "method, path with query, time, nonce]>; the key signs for an active member, the time "
        "is within 60 s of the node's clock and the nonce is not used twice. See "
        "docs/privacy.md.",
    }
}
SIGNED_READ: list[dict[str, list[str]]] = [{"signedRead": []}]
OPTIONAL_SIGNED_READ: list[dict[str, list[str]]] = [{}, {"signedRead": []}]
UNSIGNED = answer(
    "Not signed (`auth_required`), or a signed read refused: `bad_signature`, "
    "`stale_request`, `replayed_request`, `unknown_key`, `revoked_key`."
)
BAD_SIGNED_READ = answer(
    "A signed read refused: `bad_signature`, `stale_request`, `replayed_request`, "
    "`unknown_key`, `revoked_key`."
)
NOT_ALLOWED = answer("Signed by a member it does not concern, not an auditor (`not_allowed`).")


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
                        "application/json": {
                            "schema": {
                                **obj({"tx": HEX}, {"sealed": HEX}),
                                "description": "`sealed`: a sealed record's encrypted "
                                "content, which the node keeps beside the chain "
                                "(docs/privacy.md); required with a sealed_record.",
                            }
                        },
                    },
                },
                "responses": {
                    "202": answer("Admitted to the mempool.", ref("Submitted")),
                    "400": answer(
                        "Malformed or breaking a rule; `error` says which (for a sealed "
                        "record also `bad_sealed_content`, `missing_recipient`)."
                    ),
                    "409": answer(
                        "Already pending or committed (`duplicate`), or a record of a document"
                        " its creator already recorded in that category and not cancelled"
                        " (`duplicate_record`: `values` name the record or pending transaction)."
                    ),
                    "413": answer("Larger than 4096 bytes (sealed content: 3072 bytes)."),
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
                "description": "Open to anyone, but a record's private fields (amount, "
                "counterparty, doc_hash, memo) are `withheld` unless the read is signed by a "
                "member the record concerns or an auditor (anyone else signed: 403).",
                "security": OPTIONAL_SIGNED_READ,
                "parameters": [
                    TX_ID,
                    query_param(
                        "wait",
                        {"type": "number", "minimum": 0, "maximum": 60},
                        "For a pending transaction, answer only once it is committed or"
                        " rejected, or after this many seconds (a long poll instead of polling).",
                    ),
                ],
                "responses": {
                    "401": BAD_SIGNED_READ,
                    "403": NOT_ALLOWED,
                    "200": answer("Its status.", ref("TxStatus")),
                    "400": answer("The id is not 64 hex characters, or `wait` is not 0 to 60."),
                    "404": NOT_FOUND,
                },
            }
        },
        "/blocks/{height}": {
            "get": {
                "summary": "A block with its transactions and certificates.",
                "description": "Open to anyone; each record's private fields are `withheld` "
                "except for a signed reader the record concerns, or an auditor.",
                "security": OPTIONAL_SIGNED_READ,
                "parameters": [
                    path_param(
                        "height",
                        {"type": "string", "pattern": "^(latest|[0-9]+)$"},
                        "A height, or `latest`.",
                    )
                ],
                "responses": {
                    "401": BAD_SIGNED_READ,
                    "200": answer("The block.", ref("Block")),
                    "400": answer("Not a height."),
                    "404": NOT_FOUND,
                },
            }
        },
        "/accounts/{address}": {
            "get": {
                "summary": "A member's role, nonces and records.",
                "description": "Signed by the member itself or an auditor.",
                "security": SIGNED_READ,
                "parameters": [path_param("address", ADDRESS, "A dn1... address.")],
                "responses": {
                    "401": UNSIGNED,
                    "403": NOT_ALLOWED,
                    "200": answer("The account.", ref("Account")),
                    "400": answer("Not an address."),
                    "404": answer("Not a member."),
                },
            }
        },
        "/records/{record_id}": {
            "get": {
                "summary": "A committed record and whether it was endorsed.",
                "description": "Signed by its creator, its counterparty or an auditor; "
                "each read by another member is in the parties' access log.",
                "security": SIGNED_READ,
                "parameters": [path_param("record_id", HEX32, "A record id (64 hex).")],
                "responses": {
                    "401": UNSIGNED,
                    "403": NOT_ALLOWED,
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
        "/nodes": {
            "get": {
                "summary": "The node registry at the tip: every validator and admitted full node.",
                "description": "Who the nodes are and where peers reach them: each node's "
                "name, key, role, peer URLs and the digest of the TLS certificate it presents. "
                "Nodes dial exactly these peers and accept exactly these keys.",
                "responses": {"200": answer("The registry.", ref("Nodes"))},
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
                "summary": "The address a public key signs for, with the chain id and, for a"
                " member, its role and next nonce: all a client needs to sign.",
                "parameters": [path_param("public_key", HEX32, "An Ed25519 public key.")],
                "responses": {
                    "200": answer("The binding.", ref("KeyBinding")),
                    "400": answer("Not 64 hex characters."),
                },
            }
        },
        "/encryption-keys/{address}": {
            "get": {
                "summary": "The X25519 key a member's sealed records are encrypted to (null if "
                "none was published); open to anyone, as membership is.",
                "parameters": [path_param("address", ADDRESS, "A member's address.")],
                "responses": {
                    "200": answer(
                        "The member's encryption key.",
                        obj({"address": ADDRESS, "encryption_key": {**HEX32, "nullable": True}}),
                    ),
                    "400": answer("Not an address (`bad_address`)."),
                    "404": answer("Not a member."),
                },
            }
        },
        "/proofs/tx/{tx_id}": {
            "get": {
                "summary": "The inclusion proof of a committed transaction.",
                "description": "It holds the whole transaction: a record's proof is signed by "
                "a member the record concerns or an auditor; other kinds' are open.",
                "security": OPTIONAL_SIGNED_READ,
                "parameters": [TX_ID],
                "responses": {
                    "401": UNSIGNED,
                    "403": NOT_ALLOWED,
                    "200": answer("The proof.", ref("Proof")),
                    "400": BAD_ID,
                    "404": answer("Pending or unknown."),
                },
            }
        },
        "/chain/export": {
            "get": {
                "summary": "The chain up to the tip as an export stream.",
                "security": SIGNED_READ,
                "description": "Every member's data: signed by an auditor, a witness or a "
                "node's own key (a validator's, an admitted full node's: online backups). "
                "With `from=H`, only blocks H up to the tip follow the header "
                "(which still names the tip's height): how a follower such as a witness reads "
                "the blocks it has not seen yet.",
                "parameters": [
                    query_param("from", {"type": "string"}, "The first block's height (default 1).")
                ],
                "responses": {
                    "401": UNSIGNED,
                    "403": NOT_ALLOWED,
                    "400": answer("A height that is not a whole number from 1 to the tip + 1."),
                    "200": {
                        "description": "Header, blocks with certificates, trailer.",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
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
                    "Messages: `hello` first, then `block` and `tx` events, a record's private "
                    "fields withheld and only its sender among its `addresses`. With `address` "
                    "only the transactions concerning that address are sent: signed by that "
                    "member or an auditor."
                ),
                "security": OPTIONAL_SIGNED_READ,
                "parameters": [
                    query_param("address", ADDRESS, "Only this address's transactions."),
                    query_param(
                        "types", {"type": "string"}, "block, tx or block,tx (the default)."
                    ),
                ],
                "responses": {
                    "101": {"description": "Switching to the websocket protocol."},
                    "400": answer("Not a websocket request, a bad address or bad types."),
                    "401": UNSIGNED,
                    "403": NOT_ALLOWED,
                    "503": answer("Too many subscribers."),
                },
            }
        },
        "/access-log": {
            "get": {
                "summary": "Who read the signing member's data through this node, newest first.",
                "description": "Each signed read of the member's records, account, "
                "transactions or proofs by another member, and every chain export (all "
                "members' data), as this node served them; the member's own reads are not "
                "logged.",
                "security": SIGNED_READ,
                "parameters": [
                    query_param(
                        "limit", {"type": "string"}, "At most this many entries (default 1000)."
                    )
                ],
                "responses": {
                    "200": answer("The member's access log.", ref("AccessLog")),
                    "400": answer("A limit that is not a whole number."),
                    "401": UNSIGNED,
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
        "components": {"schemas": SCHEMAS, "securitySchemes": SECURITY_SCHEMES},
    }


async def handle_openapi(request: web.Request) -> web.Response:
    """GET /openapi.json: this API's OpenAPI 3 document."""
    return web.json_response(build_openapi())
