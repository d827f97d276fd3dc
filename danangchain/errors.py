"""Typed errors of the ledger core; each message tells the reader what to fix."""


class DanangChainError(Exception):
    """Base of every error the core raises on bad input."""

    code = "invalid"


class DecodeError(DanangChainError):
    """Bytes that are not the one canonical encoding of a value."""

    code = "bad_encoding"


class AddressError(DanangChainError):
    """A textual address that is malformed or fails its checksum."""

    code = "bad_address"


class KeystoreError(DanangChainError):
    """A keystore file that cannot be opened: malformed, or the wrong password."""

    code = "bad_keystore"


class InvalidSignature(DanangChainError):
    """A signature or public key that strict Ed25519 verification refuses."""

    code = "bad_signature"


class InvalidTransaction(DanangChainError):
    """A transaction that breaks a ledger rule; `code` names the rule."""

    def __init__(self, message: str, code: str = "invalid_transaction") -> None:
        super().__init__(message)
        self.code = code


class InvalidBlock(DanangChainError):
    """A block or certificate that breaks a chain rule."""

    code = "invalid_block"
