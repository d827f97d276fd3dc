"""The outbox: every transaction the CLI signs, kept next to the keystore until it is old.

Before a signing command signs, it looks for the same transaction (same chain, key, kind
and body) sent in the last days: if there is one, it follows that one instead of signing
a second. So a command run again, after Ctrl-C, a lost connection or a crash, never makes
a second record, and it says where the first one is. An entry is written (synced, then
renamed into place) before the transaction leaves, so no instant of a kill can lose it.

The files hold the signed transaction, as the member's own copy: they are readable by
their owner only, like the keys beside them, and deleted after `KEEP_DAYS`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from danangchain.encoding import pack
from danangchain.transaction import Body, encode_body, kind_of

DOMAIN_OUTBOX = "danangchain/outbox/v1"
FOLDER = "outbox"
KEEP_DAYS = 7


@dataclass(frozen=True, slots=True)
class Sent:
    """A transaction the CLI signed and sent (or was about to send)."""

    fingerprint: str
    chain_id: str
    kind: str
    tx_id: str
    tx_bytes: bytes
    sent_ms: int
    # A sealed record's encrypted content, sent beside it (ciphertext only).
    sealed: bytes | None = None


def compute_fingerprint(chain_id: str, public_key: bytes, body: Body) -> str:
    """Return what makes two transactions the same request: chain, signing key, kind, body
    (not the nonce, which a second signature would change)."""
    encoded = pack([DOMAIN_OUTBOX, chain_id, public_key, kind_of(body), encode_body(body)])
    return hashlib.sha256(encoded).hexdigest()


class Outbox:
    """The outbox folder of one keystore."""

    def __init__(self, keystore_dir: Path, clock_ms: int | None = None) -> None:
        self.folder = keystore_dir / FOLDER
        self.now_ms = clock_ms if clock_ms is not None else time.time_ns() // 1_000_000

    def find(self, fingerprint: str) -> Sent | None:
        """Return the entry of the same transaction sent within KEEP_DAYS, else None (an
        unreadable entry counts as none: the ledger's own duplicate check still holds)."""
        self.prune()
        path = self.folder / f"{fingerprint}.json"
        try:
            document = json.loads(path.read_text())
            sent = Sent(
                fingerprint=fingerprint,
                chain_id=str(document["chain_id"]),
                kind=str(document["kind"]),
                tx_id=str(document["tx_id"]),
                tx_bytes=bytes.fromhex(document["tx"]),
                sent_ms=int(document["sent_ms"]),
                sealed=bytes.fromhex(document["sealed"]) if "sealed" in document else None,
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return sent if self._is_fresh(sent.sent_ms) else None

    def save(self, sent: Sent) -> None:
        """Write an entry durably (synced file, atomic rename, synced folder)."""
        from node.keyfile import write_private_file  # the keystore's own safe write

        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        entry = {
            "chain_id": sent.chain_id,
            "kind": sent.kind,
            "tx_id": sent.tx_id,
            "tx": sent.tx_bytes.hex(),
            "sent_ms": sent.sent_ms,
        }
        if sent.sealed is not None:
            entry["sealed"] = sent.sealed.hex()
        text = json.dumps(entry, sort_keys=True)
        write_private_file(self.folder / f"{sent.fingerprint}.json", text, replace=True)

    def forget(self, fingerprint: str) -> None:
        """Drop an entry: its transaction was refused, so a new one may be signed."""
        (self.folder / f"{fingerprint}.json").unlink(missing_ok=True)

    def prune(self) -> None:
        """Delete the entries older than KEEP_DAYS."""
        if not self.folder.is_dir():
            return
        for path in self.folder.glob("*.json"):
            with contextlib.suppress(OSError):
                if not self._is_fresh(int(path.stat().st_mtime * 1000)):
                    path.unlink()

    def _is_fresh(self, sent_ms: int) -> bool:
        return self.now_ms - sent_ms < KEEP_DAYS * 86_400_000
