"""Sign and submit a transaction: pick the nonce, post, optionally wait, print the outcome."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

from cli.client import NodeClient, NotFound
from cli.common import (
    EXIT_INTERRUPTED,
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
from cli.outbox import Outbox, Sent, compute_fingerprint
from cli.output import format_time_ms
from danangchain import ed25519
from danangchain.transaction import (
    Body,
    Transaction,
    compute_tx_id,
    encode_transaction,
    sign_transaction,
)

# Makes a sealed record's body and encrypted content once the chain id, the creator's
# member address and the nonce are known (the encryption is bound to all three).
Sealer = Callable[[str, str, int], tuple[Body, bytes]]


def describe_signer(client: NodeClient, key: ed25519.SigningKey) -> tuple[str, int]:
    """Return the chain id and the next nonce of the member a key signs for, in one call
    (a rotated key signs for the member it was bound to, not for its own address)."""
    chain_id, nonce, _address = describe_member(client, key)
    return chain_id, nonce


def describe_member(client: NodeClient, key: ed25519.SigningKey) -> tuple[str, int, str]:
    """Return the chain id, next nonce and member address a key signs for."""
    signer = client.get(f"/keys/{key.public_key.hex()}")
    address = signer["address"]
    if "member" not in signer:  # a node older than the one-call answer
        signer = {**signer, **client.get("/status")}
        try:
            signer.update(client.get(f"/accounts/{address}"), member=True)
        except NotFound:
            signer["member"] = False
    if not signer["member"]:
        raise CliError(
            _("{address} is not a member: a registrar must admit it first").format(address=address),
            EXIT_REFUSED,
        )
    if signer.get("revoked"):
        raise CliError(_("{address} has been revoked").format(address=address), EXIT_REFUSED)
    return str(signer["chain_id"]), int(signer["next_nonce"]), str(address)


def sign_next(client: NodeClient, key: ed25519.SigningKey, body: Body) -> Transaction:
    """Sign a body with the sender's next nonce, for the node's chain."""
    chain_id, nonce = describe_signer(client, key)
    return sign_transaction(key, chain_id, nonce, body)


def post_signed(
    client: NodeClient,
    tx: Transaction,
    wait: bool,
    timeout_s: float = 60.0,
    sealed: bytes | None = None,
) -> dict[str, Any]:
    """Post a signed transaction (a sealed record with its encrypted content beside it),
    and wait for its outcome when asked."""
    tx_bytes = encode_transaction(tx)
    try:
        answer = client.post_tx(tx_bytes, sealed)
    except KeyboardInterrupt:
        raise interrupted(compute_tx_id(tx_bytes).hex()) from None
    result: dict[str, Any] = {
        "tx_id": answer["tx_id"],
        "status": answer["status"],
        "nonce": tx.nonce,
        "kind": tx.kind,
    }
    if wait:
        result.update(wait_for_outcome(client, result["tx_id"], timeout_s))
    return result


def submit(
    client: NodeClient,
    key: ed25519.SigningKey,
    body: Body,
    wait: bool,
    timeout_s: float = 60.0,
    outbox: Outbox | None = None,
    again: bool = False,
    sealer: Sealer | None = None,
) -> dict[str, Any]:
    """Sign a body with the next nonce, post it, and wait for its outcome when asked.

    With an outbox, the same transaction sent in the last days is followed instead of
    signing a second one (unless `again`); the new one is kept there before it is sent.
    With a sealer, `body` only names the request (the outbox's fingerprint): the sealer
    makes the body signed and the encrypted content posted beside it."""
    chain_id, nonce, address = describe_member(client, key)
    fingerprint = compute_fingerprint(chain_id, key.public_key, body)
    earlier = None if outbox is None or again else outbox.find(fingerprint)
    if earlier is not None and earlier.chain_id == chain_id:
        followed = follow_earlier(client, earlier, outbox, wait, timeout_s)
        if followed is not None:
            return followed
    sealed = None
    if sealer is not None:
        body, sealed = sealer(chain_id, address, nonce)
    tx = sign_transaction(key, chain_id, nonce, body)
    tx_bytes = encode_transaction(tx)
    tx_id = compute_tx_id(tx_bytes).hex()
    if outbox is not None:
        outbox.save(Sent(fingerprint, chain_id, tx.kind, tx_id, tx_bytes, outbox.now_ms, sealed))
    try:
        result = post_signed(client, tx, wait=False, sealed=sealed)
    except CliError as exc:
        if outbox is not None and exc.exit_code == EXIT_REFUSED:
            outbox.forget(fingerprint)  # refused: a corrected command signs anew
        raise
    if wait:
        result.update(wait_for_outcome(client, tx_id, timeout_s))
    return result


def follow_earlier(
    client: NodeClient, earlier: Sent, outbox: Outbox | None, wait: bool, timeout_s: float
) -> dict[str, Any] | None:
    """Follow a transaction the outbox says was sent: report it when it committed or is
    pending, send the same bytes again when the node lost it; return None when a new one
    must be signed (it was rejected, or refused on sending again)."""
    state = client.tx_status(earlier.tx_id)
    if state["status"] == "unknown":
        try:
            state = client.post_tx(earlier.tx_bytes, earlier.sealed)
        except KeyboardInterrupt:
            raise interrupted(earlier.tx_id) from None
        except CliError as exc:
            if exc.exit_code != EXIT_REFUSED:
                raise
            state = client.tx_status(earlier.tx_id)  # refused as a duplicate: it was there
            if state["status"] == "unknown":
                state = {"status": "rejected"}
    if state["status"] == "rejected":
        if outbox is not None:
            outbox.forget(earlier.fingerprint)
        return None
    result: dict[str, Any] = {
        "tx_id": earlier.tx_id,
        "status": state["status"],
        "kind": earlier.kind,
        "already_sent": True,
        "sent_ms": earlier.sent_ms,
    }
    if state["status"] == "committed":
        result.update(height=state["height"], index=state["index"], block_hash=state["block_hash"])
    elif wait:
        result.update(wait_for_outcome(client, earlier.tx_id, timeout_s))
    return result


def wait_for_outcome(client: NodeClient, tx_id: str, timeout_s: float) -> dict[str, Any]:
    """Wait for a sent transaction; on Ctrl-C say how to follow it instead of "aborted"."""
    try:
        outcome = client.wait_for_tx(tx_id, timeout_s)
    except KeyboardInterrupt:
        raise interrupted(tx_id) from None
    if outcome["status"] == "committed":
        return {
            "status": "committed",
            "height": outcome["height"],
            "index": outcome["index"],
            "block_hash": outcome["block_hash"],
        }
    return {"status": outcome["status"], "reason": outcome.get("reason")}


def interrupted(tx_id: str) -> CliError:
    """Return the error for Ctrl-C once a transaction may have left: it may still commit,
    and running the same command again follows it instead of signing a second one."""
    return CliError(
        _(
            "interrupted: transaction {tx_id} was sent and may still commit; "
            "follow it with: danangchain query tx {tx_id} "
            "(running the same command again waits for it, it does not send a second one)"
        ).format(tx_id=tx_id),
        EXIT_INTERRUPTED,
    )


def report_submission(result: dict[str, Any], as_json: bool) -> None:
    """Print a submission's outcome; exit 1 if the ledger refused it."""
    status = _(result["status"])
    lines = [f"{result['kind']} {result['tx_id']}: {status}"]
    if result["status"] == "committed":
        lines[0] += _(" at height {height}, index {index}").format(
            height=result["height"], index=result["index"]
        )
    if result.get("already_sent"):
        lines.append(
            _(
                "already sent at {time}: nothing new was signed "
                "(to send another one like it, add --again)"
            ).format(time=format_time_ms(result["sent_ms"]))
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
            "--again",
            is_flag=True,
            help="Send it even if the same transaction was sent in the last days.",
        ),
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
    again: bool,
    timeout: float,
    node_url: str,
    keystore_dir: Path | None,
    password_file: Path | None,
    as_json: bool,
    make_sealer: Callable[[NodeClient, ed25519.SigningKey], Sealer] | None = None,
) -> None:
    """Unlock the sender's key, submit the body and print the outcome: every submitting
    command ends this way, passing on the options `submission_options` added. A sealed
    record passes `make_sealer`, which reads what it needs (recipients' keys) first."""
    key = load_signing_key(keystore_dir, from_key, password_file)
    outbox = Outbox(resolve_keystore_dir(keystore_dir))
    with NodeClient(node_url) as client:
        sealer = None if make_sealer is None else make_sealer(client, key)
        result = submit(client, key, body, wait, timeout, outbox, again, sealer)
    report_submission(result, as_json)
