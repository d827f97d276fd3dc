"""DanangChain ledger core: pure, deterministic, no I/O."""

__version__ = "0.1.0"
