"""The `danangchain` command: one group, one module per command group."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from cli.audit import audit
from cli.bench import bench
from cli.chain import chain
from cli.common import EXIT_REFUSED, EXIT_USAGE
from cli.i18n import (
    LANGUAGES,
    TranslatedGroup,
    describe_usage_error,
    set_language,
    use_language,
)
from cli.keys import keys
from cli.member import member
from cli.network import network
from cli.node_cmd import node
from cli.query import query
from cli.quickstart import quickstart
from cli.registry_cmd import genesis
from cli.testnet import testnet
from cli.tx import tx
from cli.validator import validator
from cli.watch import watch
from cli.witness import witness
from danangchain import __version__


class RootGroup(TranslatedGroup):
    """The root command: every error is one line on stderr, usage errors with exit code 2
    and in the chosen language (click would print the usage and a hint on three lines)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            returned = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            click.echo(describe_usage_error(exc), err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(EXIT_REFUSED)
        sys.exit(returned if isinstance(returned, int) else 0)


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="danangchain")
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default=None,
    is_eager=True,  # chosen before --help prints
    callback=set_language,
    help=(
        "Language of messages and help: en or vi (default: vi when LANG starts with vi, else en)."
    ),
)
@click.pass_context
def cli(ctx: click.Context, lang: str | None) -> None:
    """DanangChain: a permissioned, tamper-evident ledger for households and businesses.

    Start with: danangchain quickstart

    Tiếng Việt: danangchain --lang vi ... (or LANG=vi_VN.UTF-8).
    """
    use_language(ctx, lang)


for group in (
    keys,
    network,
    node,
    genesis,
    member,
    tx,
    query,
    quickstart,
    bench,
    testnet,
    validator,
):
    cli.add_command(group)
cli.add_command(audit)
cli.add_command(chain)
cli.add_command(watch)
cli.add_command(witness)


def main() -> None:
    """Run the CLI; any unexpected failure is one line and exit code 2, never a traceback."""
    try:
        cli.main(prog_name="danangchain", standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the last line of defence for the one-line promise
        if os.environ.get("DANANGCHAIN_DEBUG"):
            raise
        click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
