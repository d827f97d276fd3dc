"""Every command's --help shows an example."""

from __future__ import annotations

from collections.abc import Iterator

import click
from click.testing import CliRunner

from cli.main import cli


def walk(command: click.Command, path: list[str]) -> Iterator[list[str]]:
    """Yield the path of every leaf command."""
    if isinstance(command, click.Group):
        ctx = click.Context(command)  # the root group imports a command when asked for it
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            yield from walk(sub, [*path, name])
    else:
        yield path


def test_every_command_help_shows_an_example() -> None:
    lacking = []
    for path in walk(cli, []):
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        if "Example" not in result.output:
            lacking.append(" ".join(path))
    assert lacking == []
