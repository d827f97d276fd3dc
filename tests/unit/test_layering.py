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


def node_imports(path: Path) -> set[str]:
    """Return the node sub-packages (node.X) and top modules a file imports."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for item in ast.walk(tree):
        names: list[str] = []
        if isinstance(item, ast.Import):
            names = [alias.name for alias in item.names]
        elif isinstance(item, ast.ImportFrom) and item.module and item.level == 0:
            names = [item.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "node" and len(parts) > 1:
                found.add(parts[1])
            elif parts[0] == "cli":
                found.add("cli")
    return found


# What each sub-package of node/ may import from node/ (besides itself): arrows point down.
NODE_LAYERS = {
    "storage": set(),
    "chain": {"storage"},
    "p2p": {"chain"},
    "consensus": {"chain", "p2p", "tls"},
    "http": {"chain", "p2p", "config"},
    "witness": set(),
}


def test_node_sub_packages_import_only_the_layers_below_them() -> None:
    root = Path(danangchain.__file__).parent.parent / "node"
    for package, allowed in NODE_LAYERS.items():
        for path in (root / package).rglob("*.py"):
            reached = node_imports(path) - {package}
            assert reached <= allowed, f"node/{package}/{path.name} imports {sorted(reached)}"


def test_only_the_wiring_module_joins_every_layer_and_node_never_imports_cli() -> None:
    root = Path(danangchain.__file__).parent.parent / "node"
    for path in root.rglob("*.py"):
        assert "cli" not in node_imports(path), f"{path} imports cli"
    joiners = [
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if {"storage", "consensus", "http"} <= node_imports(p)
    ]
    assert joiners == ["wiring.py"]
