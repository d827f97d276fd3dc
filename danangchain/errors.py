"""Typed errors of the ledger core; each message tells the reader what to fix."""

from __future__ import annotations

from typing import Any, Self


class DanangChainError(Exception):
    """Base of every error the core raises on bad input.

    Errors made with `of(template, **params)` also keep their message's template and
    values, so a user interface can show the message in the user's language (the English
    template is the message id) without the core knowing about languages."""

    code = "invalid"
    template: str | None = None
    params: dict[str, Any] = {}  # noqa: RUF012 - replaced per instance by of()

    @classmethod
    def of(cls, template: str, /, rule: str | None = None, **params: Any) -> Self:
        """Return an error whose message is `template.format(**params)`; `rule` sets the
        error's code (InvalidTransaction's rule name)."""
        error = cls(template.format(**params))
        error.template = template
        error.params = params
        if rule is not None:
            error.code = rule
        return error


class DecodeError(DanangChainError):
    """Bytes that are not the one canonical encoding of a value."""

    code = "bad_encoding"


class AddressError(DanangChainError):
    """A textual address that is malformed or fails its checksum."""

    code = "bad_address"


class KeystoreError(DanangChainError):
    """A keystore file that cannot be opened: malformed, or the wrong password."""

    code = "bad_keystore"


class SealedError(DanangChainError):
    """A sealed record's content that is malformed, or does not open with the key given."""

    code = "bad_sealed_content"


class InvalidSignature(DanangChainError):
    """A signature or public key that strict Ed25519 verification refuses."""

    code = "bad_signature"


class InvalidTransaction(DanangChainError):
    """A transaction that breaks a ledger rule; `code` names the rule."""

    def __init__(self, message: str, code: str = "invalid_transaction") -> None:
        super().__init__(message)
        self.code = code


class InvalidBlock(DanangChainError):
    """A block or certificate that breaks a chain rule; when one of its transactions
    breaks a ledger rule, which one (index and id) and why."""

    code = "invalid_block"

    def __init__(
        self,
        message: str,
        tx_index: int | None = None,
        tx_id: bytes | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.tx_index = tx_index
        self.tx_id = tx_id
        self.reason = reason
