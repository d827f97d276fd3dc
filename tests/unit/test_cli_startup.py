"""`danangchain --help`, `keys list` and `query status` start without the node's server,
the auditor or the keystore's ciphers: the root group imports a command's module only
when that command runs."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from cli.main import COMMANDS
from cli.main import cli as root

# Modules `import cli.main` must not load: the node's server and aiohttp, the store, TLS,
# the auditor's chain sources and the keystore's ciphers.
HEAVY = (
    "aiohttp",
    "node.http",
    "node.wiring",
    "node.storage",
    "node.tls",
    "node.keyfile",
    "cli.chain_sources",
    "cli.audit",
    "cli.network",
    "danangchain.keystore",
    "danangchain.audit",
    "cryptography.hazmat.primitives.ciphers.aead",
    "cryptography.hazmat.primitives.kdf.scrypt",
    "cryptography.x509",
)


def loaded_modules(code: str) -> set[str]:
    """Return the modules a fresh interpreter has loaded after running code."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return set(json.loads(completed.stdout.splitlines()[-1]))


def heavy_among(modules: set[str]) -> list[str]:
    return sorted(
        name for name in modules if any(name == h or name.startswith(h + ".") for h in HEAVY)
    )


def test_importing_the_cli_loads_none_of_the_node_s_server_modules() -> None:
    assert heavy_among(loaded_modules("import cli.main")) == []


def test_help_loads_no_command_module() -> None:
    modules = loaded_modules(
        "from click.testing import CliRunner\n"
        "from cli.main import cli\n"
        "assert CliRunner().invoke(cli, ['--help']).exit_code == 0"
    )
    assert heavy_among(modules) == []
    assert sorted(name for name in modules if name.startswith("cli.")) == [
        "cli.common",
        "cli.i18n",
        "cli.main",
    ]


@pytest.mark.parametrize(
    ("arguments", "loaded", "not_loaded"),
    [
        (["keys", "list", "--keystore", "/nonexistent"], "cli.keys", ["aiohttp", "node.http"]),
        (["query", "--help"], "cli.query", ["aiohttp", "node.http", "node.storage"]),
        (["audit", "--help"], "cli.audit", ["node.http", "node.wiring"]),
    ],
)
def test_a_command_loads_its_own_module_and_not_the_others(
    arguments: list[str], loaded: str, not_loaded: list[str]
) -> None:
    modules = loaded_modules(
        "from click.testing import CliRunner\n"
        "from cli.main import cli\n"
        f"CliRunner().invoke(cli, {arguments!r})"
    )
    assert loaded in modules
    assert [name for name in not_loaded if name in modules] == []
    others = {entry.module for entry in COMMANDS.values()} - {loaded}
    assert sorted(others & modules) == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_short_help_listed_beside_each_command_is_its_own(name: str) -> None:
    command = COMMANDS[name].load()
    assert COMMANDS[name].short_help == command.get_short_help_str(10**6)


def test_the_lazy_root_lists_and_finds_every_command() -> None:
    ctx = click.Context(root)
    assert root.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = root.get_command(ctx, name)
        assert command is not None and command.name == name
    assert root.get_command(ctx, "no-such-command") is None


def test_node_lists_the_commands_of_both_its_modules() -> None:
    node = COMMANDS["node"].load()
    assert isinstance(node, click.Group)
    assert {"start", "wait-synced", "init", "join", "announce", "admit", "remove"} <= set(
        node.list_commands(click.Context(node))
    )


def test_a_query_loads_neither_the_read_signing_nor_the_sealing_code() -> None:
    modules = loaded_modules("import cli.query")
    for name in ("danangchain.read_access", "danangchain.rules", "cli.sealed", "cli.submit"):
        assert name not in modules, name
