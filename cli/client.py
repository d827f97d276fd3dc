"""A small client of the node API over aiohttp, with CLI-shaped errors."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import click

from cli.common import (
    EXIT_REFUSED,
    EXIT_USAGE,
    CliError,
    F,
    keystore_option,
    load_signing_key,
    password_option,
)
from cli.i18n import _
from danangchain import ed25519

MAX_WAIT_S = 30.0  # one long poll; the node allows up to 60


class NotFound(CliError):
    """The node does not know the thing asked for."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_REFUSED)


def translate_refusal(document: dict[str, Any]) -> str:
    """Return a node's error message in the user's language when the node sent its
    template and values (a broken ledger rule), else the message as sent."""
    message = str(document.get("message", document))
    template, values = document.get("template"), document.get("values")
    if not isinstance(template, str) or not isinstance(values, dict):
        return message
    try:
        return _(template).format(**values)
    except (KeyError, IndexError, ValueError):  # a template this CLI version does not know
        return message


class ReadSigner:
    """Signs a member's reads with its key: the node learns who reads and logs it; the
    key never leaves this machine."""

    def __init__(self, key: ed25519.SigningKey) -> None:
        self.key = key
        self.chain_id: str | None = None

    def authorization(self, method: str, path: str) -> str:
        """Return the Authorization header of one request, signed now with a fresh nonce."""
        if self.chain_id is None:
            raise ValueError("ask the node for its chain id before signing a read")
        # Loaded by the commands that sign reads: it brings the core's rules with it.
        from danangchain.read_access import NONCE_SIZE, encode_authorization, sign_read

        time_ms = time.time_ns() // 1_000_000
        nonce = os.urandom(NONCE_SIZE)
        read = sign_read(self.key, self.chain_id, method, path, time_ms, nonce)
        return encode_authorization(read)


def reader_options(command: F) -> F:
    """Add the options of a command that may sign its reads: --from, keystore, password."""
    for option in (
        click.option(
            "--from",
            "from_key",
            default=None,
            help="Sign the read with this key: a member reads its own data, an auditor all.",
        ),
        keystore_option,
        password_option,
    ):
        command = option(command)
    return command


def load_reader(
    from_key: str | None, keystore_dir: Path | None, password_file: Path | None
) -> ReadSigner | None:
    """Unlock the reader's key when --from was given."""
    if from_key is None:
        return None
    return ReadSigner(load_signing_key(keystore_dir, from_key, password_file))


def describe_read_refusal(status: int, document: dict[str, Any]) -> str | None:
    """Return what to do about a refused read (401, 403), or None for other answers."""
    code = document.get("error")
    if status == 401 and code == "auth_required":
        return _("this is a member's data: sign the read with --from KEY (the member's key)")
    if status == 401:
        return _("the node refused the signed read ({code}): {message}").format(
            code=code, message=document.get("message", "")
        )
    if status == 403:
        # The node's reason is one of a few sentences: shown in the user's language.
        return _("not allowed: {reason}").format(reason=_(str(document.get("message", ""))))
    return None


class _Connection:
    """One event loop and one HTTP session, kept for the requests made inside a client's
    `with` block, so that a command makes one connection (kept alive), not one per call."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.session: Any = None  # an aiohttp.ClientSession, made in the runner's loop

    def run(self, coroutine: Any) -> Any:
        return self.runner.run(coroutine)

    def close(self) -> None:
        if self.session is not None:
            self.runner.run(self.session.close())
        self.runner.close()


class NodeClient:
    """Talk to one node's client API; every failure becomes a one-line CliError. Inside
    `with NodeClient(url) as client:` every request goes over one kept-alive connection."""

    def __init__(self, url: str, timeout_s: float = 15.0, signer: ReadSigner | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise CliError(
                _("node URL {url} must start with http:// or https://").format(url=repr(url))
            )
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.signer = signer
        self._connection: _Connection | None = None

    def __enter__(self) -> NodeClient:
        self._connection = _Connection()
        return self

    def __exit__(self, *exc_info: object) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def get(self, path: str, timeout_s: float | None = None) -> dict[str, Any]:
        """GET a JSON document; 404 raises NotFound."""
        return self._run(self._request("GET", path, None, None, timeout_s))  # type: ignore[no-any-return]

    def post_tx(self, tx_bytes: bytes, sealed: bytes | None = None) -> dict[str, Any]:
        """POST a signed transaction (a sealed record with its encrypted content beside
        it); a refusal raises CliError with exit code 1."""
        if sealed is not None:
            document = json.dumps({"tx": tx_bytes.hex(), "sealed": sealed.hex()}).encode()
            return self._run(  # type: ignore[no-any-return]
                self._request("POST", "/txs", document, "application/json")
            )
        return self._run(  # type: ignore[no-any-return]
            self._request("POST", "/txs", tx_bytes, "application/octet-stream")
        )

    def authorization(self, path: str) -> dict[str, str]:
        """Return the headers that sign a GET of `path` made by another client (a stream)."""
        signer = self.signer
        if signer is None:
            return {}
        if signer.chain_id is None:
            signer.chain_id = str(self.get("/status").get("chain_id", ""))
        return {"Authorization": signer.authorization("GET", path)}

    def probe(self, path: str) -> tuple[int, dict[str, Any]]:
        """GET a JSON document and its HTTP status, whatever the status (e.g. /readiness)."""
        return self._run(self._fetch("GET", path, None, None))  # type: ignore[no-any-return]

    def _run(self, coroutine: Any) -> Any:
        if self._connection is None:
            return asyncio.run(coroutine)
        return self._connection.run(coroutine)

    async def _request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        content_type: str | None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        status, document = await self._fetch(method, path, body, content_type, timeout_s)
        refusal = describe_read_refusal(status, document) if method == "GET" else None
        if refusal is not None:
            raise CliError(refusal, EXIT_REFUSED if status == 403 else EXIT_USAGE)
        if status == 404:
            raise NotFound(_(document.get("message", "not found")))
        if status >= 400:
            code = document.get("error", "error")
            message = translate_refusal(document)
            exit_code = EXIT_REFUSED if method == "POST" and status < 500 else EXIT_USAGE
            prefix = _("transaction refused") if method == "POST" else _("node error")
            raise CliError(f"{prefix} ({code}): {message}", exit_code)
        return document

    async def _fetch(
        self,
        method: str,
        path: str,
        body: bytes | None,
        content_type: str | None,
        timeout_s: float | None = None,
    ) -> tuple[int, dict[str, Any]]:
        import aiohttp  # loaded by the commands that talk to a node, not by --help

        timeout = aiohttp.ClientTimeout(total=timeout_s or self.timeout_s)
        headers = {"Content-Type": content_type} if content_type else {}
        signer = self.signer
        if signer is not None and method == "GET" and path != "/status":
            if signer.chain_id is None:
                _status, answer = await self._fetch("GET", "/status", None, None, timeout_s)
                signer.chain_id = str(answer.get("chain_id", ""))
            headers["Authorization"] = signer.authorization(method, path)
        connection = self._connection
        if connection is not None and connection.session is None:
            connection.session = aiohttp.ClientSession()
        try:
            if connection is not None:
                status, text = await self._send(
                    connection.session, method, path, body, headers, timeout
                )
            else:
                async with aiohttp.ClientSession() as session:
                    status, text = await self._send(session, method, path, body, headers, timeout)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise CliError(self._describe_unreachable(exc), EXIT_USAGE) from None
        try:
            document = json.loads(text)
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            raise CliError(
                _("the node at {url} answered {status} with no JSON").format(
                    url=self.url, status=status
                )
            ) from None
        if status == 401 and document.get("error") == "unsigned_request":
            # Only a peer server asks for a node's signature: this is not the client API.
            raise CliError(
                _(
                    "{url} is a node's peer port, not its client API: "
                    "use the API port (see config.toml [api] port)"
                ).format(url=self.url),
                EXIT_USAGE,
            )
        return status, document

    async def _send(
        self,
        session: Any,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
        timeout: Any,
    ) -> tuple[int, str]:
        async with session.request(
            method, self.url + path, data=body, headers=headers, timeout=timeout
        ) as response:
            return response.status, await response.text()

    def _describe_unreachable(self, exc: BaseException) -> str:
        """Return what to check when no answer came: the node, the name, TLS or time."""
        import aiohttp

        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return _(
                "cannot reach the node at {url}: its host name does not resolve; check --node"
            ).format(url=self.url)
        if isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(
            exc, aiohttp.ClientSSLError
        ):
            return _("cannot reach the node at {url}: is the node running? check --node").format(
                url=self.url
            )
        if isinstance(exc, TimeoutError):
            return _("the node at {url} did not answer within {seconds}s").format(
                url=self.url, seconds=f"{self.timeout_s:g}"
            )
        reason = str(exc) or type(exc).__name__
        return _("cannot reach the node at {url}: {reason}").format(url=self.url, reason=reason)

    def tx_status(self, tx_id: str, wait_s: float = 0.0) -> dict[str, Any]:
        """Return a transaction's status (`unknown` when the node does not know it); with
        `wait_s`, the node answers once it is final or after that many seconds."""
        query = f"?wait={wait_s:.3f}" if wait_s > 0 else ""
        try:
            return self.get(f"/txs/{tx_id}{query}", timeout_s=wait_s + self.timeout_s)
        except NotFound:
            return {"status": "unknown", "tx_id": tx_id}

    def wait_for_tx(self, tx_id: str, timeout_s: float) -> dict[str, Any]:
        """Wait until a transaction is committed or rejected, within a deadline: long polls
        on one connection (a node that answers at once, being older, is asked again after
        a short pause)."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            asked = time.monotonic()
            state = self.tx_status(tx_id, wait_s=max(0.0, min(remaining, MAX_WAIT_S)))
            if state["status"] in ("committed", "rejected"):
                return state
            if time.monotonic() >= deadline:
                raise CliError(
                    _("transaction {tx_id} still {status} after {seconds}s").format(
                        tx_id=tx_id, status=_(state["status"]), seconds=f"{timeout_s:g}"
                    ),
                    EXIT_REFUSED,
                )
            if time.monotonic() - asked < 0.1:
                time.sleep(0.1)
