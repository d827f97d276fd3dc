"""The core stays pure: it imports no I/O library and no upper layer."""

from __future__ import annotations

import ast
from pathlib import Path

import danangchain

ALLOWED_TOP_LEVEL = {
    "__future__",
    "collections",
    "dataclasses",
    "enum",
    "functools",
    "hashlib",
    "hmac",
    "itertools",
    "json",
    "math",
    "struct",
    "typing",
    "unicodedata",
    "abc",
    "bisect",
    "cryptography",
    "msgpack",
    "danangchain",
    "re",
    "heapq",
    "operator",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_only_the_standard_library_cryptography_and_msgpack() -> None:
    core = Path(danangchain.__file__).parent
    for path in core.rglob("*.py"):
        forbidden = imported_modules(path) - ALLOWED_TOP_LEVEL
        assert not forbidden, f"{path.name} imports {sorted(forbidden)}"


def test_only_the_store_imports_plyvel() -> None:
    root = Path(danangchain.__file__).parent.parent
    users = [
        p.relative_to(root).as_posix()
        for folder in ("node", "cli", "danangchain")
        for p in (root / folder).rglob("*.py")
        if "plyvel" in imported_modules(p)
    ]
    assert users == ["node/storage/leveldb.py"]
