"""Sign and submit a transaction: pick the nonce, post, optionally wait, print the outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

from cli.client import NodeClient, NotFound
from cli.common import (
    EXIT_REFUSED,
    CliError,
    F,
    emit,
    json_option,
    keystore_option,
    load_signing_key,
    node_option,
    password_option,
    resolve_keystore_dir,
)
from cli.i18n import _
from danangchain import ed25519
from danangchain.address import decode_address, encode_address
from danangchain.transaction import Body, Transaction, encode_transaction, sign_transaction


def get_next_nonce(client: NodeClient, address: bytes) -> int:
    """Return the sender's next nonce, counting its transactions still pending on the node."""
    try:
        account = client.get(f"/accounts/{encode_address(address)}")
    except NotFound:
        raise CliError(
            _("{address} is not a member: a registrar must admit it first").format(
                address=encode_address(address)
            ),
            EXIT_REFUSED,
        ) from None
    if account.get("revoked"):
        raise CliError(
            _("{address} has been revoked").format(address=encode_address(address)),
            EXIT_REFUSED,
        )
    return int(account["next_nonce"])


def sign_next(client: NodeClient, key: ed25519.SigningKey, body: Body) -> Transaction:
    """Sign a body with the sender's next nonce, for the node's chain."""
    chain_id = client.get("/status")["chain_id"]
    # A rotated key signs for the member it was bound to, not for its own address.
    address = decode_address(client.get(f"/keys/{key.public_key.hex()}")["address"])
    return sign_transaction(key, chain_id, get_next_nonce(client, address), body)


def post_signed(
    client: NodeClient, tx: Transaction, wait: bool, timeout_s: float = 60.0
) -> dict[str, Any]:
    """Post a signed transaction, and wait for its outcome when asked."""
    answer = client.post_tx(encode_transaction(tx))
    result: dict[str, Any] = {
        "tx_id": answer["tx_id"],
        "status": answer["status"],
        "nonce": tx.nonce,
        "kind": tx.kind,
    }
    return wait_for_outcome(client, result, timeout_s) if wait else result


def wait_for_outcome(
    client: NodeClient, result: dict[str, Any], timeout_s: float
) -> dict[str, Any]:
    """Wait until a posted transaction is committed (where) or rejected (why)."""
    outcome = client.wait_for_tx(result["tx_id"], timeout_s)
    result = {**result, "status": outcome["status"]}
    if outcome["status"] == "committed":
        result.update(
            height=outcome["height"], index=outcome["index"], block_hash=outcome["block_hash"]
        )
    else:
        result["reason"] = outcome.get("reason")
    return result


def submit(
    client: NodeClient, key: ed25519.SigningKey, body: Body, wait: bool, timeout_s: float = 60.0
) -> dict[str, Any]:
    """Sign a body with the next nonce, post it, and wait for its outcome when asked."""
    return post_signed(client, sign_next(client, key, body), wait, timeout_s)


def report_submission(result: dict[str, Any], as_json: bool) -> None:
    """Print a submission's outcome; exit 1 if the ledger refused it."""
    status = _(result["status"])
    lines = [f"{result['kind']} {result['tx_id']}: {status}"]
    if result["status"] == "committed":
        lines[0] += _(" at height {height}, index {index}").format(
            height=result["height"], index=result["index"]
        )
    emit(as_json, result, lines)
    if result["status"] == "rejected":
        raise CliError(
            _("transaction rejected: {reason}").format(reason=result.get("reason")), EXIT_REFUSED
        )


def complete_key_names(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Complete --from with the names of the keys in the keystore the command will use."""
    folder = resolve_keystore_dir(ctx.params.get("keystore_dir"))
    names = sorted(path.stem for path in folder.glob("*.json")) if folder.is_dir() else []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def submission_options(command: F) -> F:
    """Add the options every submitting command shares."""
    for option in (
        click.option(
            "--from",
            "from_key",
            required=True,
            help="Name or file of the signing key.",
            shell_complete=complete_key_names,
        ),
        click.option("--wait", is_flag=True, help="Wait until the transaction is committed."),
        click.option(
            "--timeout", type=float, default=60.0, show_default=True, help="Seconds --wait waits."
        ),
        node_option,
        keystore_option,
        password_option,
        json_option,
    ):
        command = option(command)
    return command


def sign_submit_and_report(
    body: Body,
    *,
    from_key: str,
    wait: bool,
    timeout: float,
    node_url: str,
    keystore_dir: Path | None,
    password_file: Path | None,
    as_json: bool,
) -> None:
    """Unlock the sender's key, submit the body and print the outcome: every submitting
    command ends this way, passing on the options `submission_options` added."""
    key = load_signing_key(keystore_dir, from_key, password_file)
    report_submission(submit(NodeClient(node_url), key, body, wait, timeout), as_json)
