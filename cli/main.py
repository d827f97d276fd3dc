"""The `danangchain` command: one group, one module per command group."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click

from cli.common import EXIT_REFUSED, EXIT_USAGE
from cli.i18n import (
    TranslatedGroup,
    _,
    command_line_language,
    describe_usage_error,
    language_scope,
)
from danangchain import __version__


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """A root command known by where it lives and the short help `--help` lists it with,
    so that listing the commands imports none of them."""

    module: str
    attribute: str
    short_help: str  # the first sentence of the command's help, in English (the message id)
    extended_by: tuple[str, ...] = ()  # modules that add subcommands to it

    def load(self) -> click.Command:
        """Import the command's module, and those adding to it, and return the command."""
        command = getattr(importlib.import_module(self.module), self.attribute)
        for module in self.extended_by:
            importlib.import_module(module)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.module}.{self.attribute} is not a click command")
        return command


# Each command group's module is imported only when that group runs: the node's server
# (aiohttp, the store, TLS) and the auditor cost more to import than `--help` takes.
COMMANDS: Mapping[str, LazyCommand] = {
    "anchor": LazyCommand(
        "cli.anchor",
        "anchor",
        "Anchor every file under PATH... with one transaction, and write the manifest that"
        " proves any one of them later; or, with --stream, anchor standard input's"
        " readings, one transaction per window.",
    ),
    "audit": LazyCommand(
        "cli.audit",
        "audit",
        "Check the ledger without trusting any node (auditors).",
        extended_by=("cli.audit_file",),
    ),
    "bench": LazyCommand(
        "cli.bench",
        "bench",
        "Start a local network in a temporary folder, submit pre-signed transactions (at"
        " --rate, or as fast as the network admits them), and print committed throughput,"
        " submission-to-commit latency and this machine's Ed25519 verification bound.",
    ),
    "chain": LazyCommand(
        "cli.chain",
        "chain",
        "Export a chain to a file, or seed a node from an export (operators, auditors).",
    ),
    "genesis": LazyCommand(
        "cli.registry_cmd",
        "genesis",
        "Make a network's genesis from its organisations' cards (operators).",
    ),
    "keys": LazyCommand(
        "cli.keys",
        "keys",
        "Create and inspect your signing keys (kept encrypted under a password).",
    ),
    "member": LazyCommand("cli.member", "member", "Admit and revoke members (registrars)."),
    "network": LazyCommand("cli.network", "network", "Create a network (operators)."),
    "node": LazyCommand(
        "cli.node_cmd", "node", "Run a node (operators).", extended_by=("cli.registry_cmd",)
    ),
    "query": LazyCommand(
        "cli.query", "query", "Look up the chain, transactions, accounts and records."
    ),
    "quickstart": LazyCommand(
        "cli.quickstart",
        "quickstart",
        "Run a local ledger network in a temporary folder: admit a household and a"
        " business, record an invoice, endorse it, and print what happened.",
    ),
    "testnet": LazyCommand(
        "cli.testnet",
        "testnet",
        "Start every node of the network in FOLDER, each as its own process, print each"
        " API URL as it comes up, and stop them all on Ctrl-C.",
    ),
    "tx": LazyCommand(
        "cli.tx", "tx", "Record documents and transactions, and endorse records about you."
    ),
    "validator": LazyCommand(
        "cli.validator", "validator", "Change the validator set by vote (validators)."
    ),
    "watch": LazyCommand(
        "cli.watch",
        "watch",
        "Print new blocks and committed transactions as they arrive; Ctrl-C ends.",
    ),
    "witness": LazyCommand(
        "cli.witness",
        "witness",
        "Run a witness that checks the chain and cosigns checkpoints (outside bodies).",
    ),
}


class RootGroup(TranslatedGroup):
    """The root command: every error is one line on stderr, usage errors with exit code 2
    and in the chosen language (click would print the usage and a hint on three lines).
    Its commands are `COMMANDS`, each imported when it runs (click's lazy group pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.add_command(COMMANDS[cmd_name].load(), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands with their short help, in the chosen language, importing none."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            text = COMMANDS[name].short_help if name in COMMANDS else None
            if text is None:
                command = super().get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                text = command.get_short_help_str(10**6)
            rows.append((name, click.Command(name, help=_(text)).get_short_help_str(limit)))
        with formatter.section(_("Commands")):
            formatter.write_dl(rows)

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
        with language_scope(command_line_language(args)):  # errors too are in the language
            try:
                returned = super().main(args, prog_name, complete_var, False, **extra)
            except click.UsageError as exc:
                click.echo(describe_usage_error(exc), err=True)
                sys.exit(EXIT_USAGE)
            except click.ClickException as exc:
                exc.show()
                sys.exit(exc.exit_code)
            except click.Abort:
                click.echo(_("aborted"), err=True)
                sys.exit(EXIT_REFUSED)
        sys.exit(returned if isinstance(returned, int) else 0)


def print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """Print the version, in the chosen language, and exit (click's version_option words
    its message once, when this module is imported)."""
    if value and not ctx.resilient_parsing:
        click.echo(
            _("%(prog)s, version %(version)s") % {"prog": "danangchain", "version": __version__}
        )
        ctx.exit()


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=print_version,
    help="Show the version and exit.",  # click's message id, translated when shown
)
def cli() -> None:
    """DanangChain: a permissioned, tamper-evident ledger for households and businesses.

    Start with: danangchain quickstart

    Tiếng Việt: danangchain --lang vi ... (or LANG=vi_VN.UTF-8).
    """


def main() -> None:
    """Run the CLI; any unexpected failure is one line and exit code 2, never a traceback."""
    with language_scope(command_line_language(None)):
        try:
            cli.main(prog_name="danangchain", standalone_mode=True)
        except SystemExit:
            raise
        except KeyboardInterrupt:
            click.echo(_("interrupted"), err=True)
            sys.exit(130)
        except Exception as exc:  # the last line of defence for the one-line promise
            if os.environ.get("DANANGCHAIN_DEBUG"):
                raise
            click.echo(f"{_('error')}: {type(exc).__name__}: {exc}", err=True)
            sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
