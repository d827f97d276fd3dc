"""Messages in the user's language: English by default, Vietnamese on request.

Translations live in one stdlib gettext domain, `danangchain`: the catalogue
`cli/locale/<lang>/LC_MESSAGES/danangchain.po`, compiled with Babel to the `.mo` beside
it (`pybabel compile -d cli/locale -D danangchain`; tests/unit/test_cli_i18n.py fails
when the two differ). Message ids are the English text, written with `{name}`
placeholders and formatted after translation.

click wraps its own messages (usage, headings, errors, the confirmation prompt) in
`gettext.gettext`, which reads the process's current domain: importing this module makes
`danangchain` that domain, so one catalogue translates our messages and click's. gettext
takes the language from the environment only, so a command runs inside
`language_scope`, which sets LANGUAGE to the language chosen by `--lang` (accepted
before or after the subcommand) or else by the environment (LANGUAGE, LC_ALL,
LC_MESSAGES, LANG), and puts it back afterwards. Child processes (testnet's nodes) speak
the same language.

Help pages translate the same way: a command made with `TranslatedCommand` or
`TranslatedGroup` (and every command a `TranslatedGroup` makes) passes its help text, the
short help of the commands it lists and each option's help through `_()` when it formats
its help, so the catalogue's keys are the English help strings.
"""

from __future__ import annotations

import contextlib
import copy
import gettext
import inspect
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

DOMAIN = "danangchain"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "vi")
ENVIRONMENT_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
LANGUAGE_OPTION = "--lang"

gettext.bindtextdomain(DOMAIN, str(LOCALE_DIR))
gettext.textdomain(DOMAIN)  # the domain click's gettext.gettext calls look in


def catalogue_path(language: str) -> Path:
    """Return the .po file of a language (the text translators edit)."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def compiled_catalogue_path(language: str) -> Path:
    """Return the .mo file of a language (what gettext reads)."""
    return catalogue_path(language).with_suffix(".mo")


def choose_language(option: str | None, environ: Mapping[str, str]) -> str:
    """Return 'vi' or 'en': the --lang option, else the first locale variable that is set."""
    if option:
        return option
    for name in ENVIRONMENT_VARIABLES:
        value = environ.get(name, "")
        if value:
            return "vi" if value.lower().startswith("vi") else "en"
    return "en"


def requested_language(args: Sequence[str]) -> str | None:
    """Return the language a command line asks for with --lang (the last one wins), wherever
    it stands before a `--`; a value that is not a language is left for click to refuse."""
    found = None
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg == LANGUAGE_OPTION and index + 1 < len(args):
            found = args[index + 1]
        elif arg.startswith(LANGUAGE_OPTION + "="):
            found = arg.partition("=")[2]
    return found if found in LANGUAGES else None


@contextlib.contextmanager
def language_scope(language: str) -> Iterator[None]:
    """Speak a language (ours and click's messages) until the block ends."""
    previous = os.environ.get("LANGUAGE")
    os.environ["LANGUAGE"] = language
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("LANGUAGE", None)
        else:
            os.environ["LANGUAGE"] = previous


def current_language() -> str:
    """Return the chosen language's code (en or vi), for formats that depend on it."""
    return choose_language(None, os.environ)


def command_line_language(args: Sequence[str] | None) -> str:
    """Return the language of a command line: its --lang, else the environment's."""
    arguments = sys.argv[1:] if args is None else args
    return choose_language(requested_language(arguments), os.environ)


def _(message: str) -> str:
    """Return a message in the chosen language (the English text if it has no translation)."""
    return gettext.dgettext(DOMAIN, message)


def describe_error(error: BaseException) -> str:
    """Return an error's message in the chosen language: errors the core made with
    `DanangChainError.of` keep their template (the message id) and values; the values
    that are errors themselves are described the same way. Others show as they are."""
    template = getattr(error, "template", None)
    if template is None:
        return str(error)
    params = {
        name: describe_error(value) if isinstance(value, BaseException) else value
        for name, value in getattr(error, "params", {}).items()
    }
    return _(template).format(**params)


def describe_usage_error(error: click.UsageError) -> str:
    """Return a click usage error (worded by click, in the chosen language) as one line,
    with where to look: "error: Missing option '--from'. (see 'danangchain tx record --help')"."""
    message = " ".join(error.format_message().split())
    where = error.ctx.command_path if error.ctx else "danangchain"
    return _("error: {message} (see '{command} --help')").format(message=message, command=where)


# Help pages


def help_id(text: str) -> str:
    """Return the message id of a help text: the text as click shows it (dedented, cut at \\f)."""
    return inspect.cleandoc(text).partition("\f")[0]


def in_language(command: click.Command) -> click.Command:
    """Return a copy of a command whose help and short help are in the chosen language."""
    page = copy.copy(command)
    if command.help:
        page.help = _(help_id(command.help))
    if command.short_help:
        page.short_help = _(help_id(command.short_help))
    return page


def option_help_record(param: click.Parameter, ctx: click.Context) -> tuple[str, str] | None:
    """Return an option's help line with its help in the chosen language (click words its
    own notes, [required; default: ...], through gettext)."""
    if isinstance(param, click.Option) and param.help:
        translated = copy.copy(param)
        translated.help = _(help_id(param.help))
        return translated.get_help_record(ctx)
    return param.get_help_record(ctx)


def language_option() -> click.Option:
    """Return the --lang option every command accepts; `TranslatedCommand.main` reads it
    from the command line before click parses it, so it is in force for --help and for
    usage errors wherever it stands."""
    return click.Option(
        [LANGUAGE_OPTION],
        type=click.Choice(LANGUAGES),
        expose_value=False,
        help="Language of messages and help: en or vi (default: vi when LANG starts with vi,"
        " else en).",
    )


class TranslatedCommand(click.Command):
    """A command whose --help speaks the chosen language and that accepts --lang."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not any(param.name == "lang" for param in self.params):
            self.params.append(language_option())

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        with language_scope(command_line_language(args)):
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)
        if option is not None:
            # click words it once and keeps the option: keep the message id, translated
            # when each page is written, instead of the first command's language.
            option.help = "Show this message and exit."
        return option

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        click.Command.format_help_text(in_language(self), ctx, formatter)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Write the options (not, for a group, its commands) as click.Command does."""
        records = [
            record
            for param in self.get_params(ctx)
            if not isinstance(param, click.Argument)
            and (record := option_help_record(param, ctx)) is not None
        ]
        if records:
            with formatter.section(_("Options")):
                formatter.write_dl(records)


class TranslatedGroup(TranslatedCommand, click.Group):
    """A group whose --help speaks the chosen language, and whose new subcommands and
    subgroups are translated too."""

    command_class = TranslatedCommand
    group_class = type  # subgroups are TranslatedGroups

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        TranslatedCommand.format_options(self, ctx, formatter)
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the subcommands, each with its short help in the chosen language."""
        listed = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                listed.append((name, command))
        if listed:
            limit = formatter.width - 6 - max(len(name) for name, _command in listed)
            with formatter.section(_("Commands")):
                formatter.write_dl(
                    [
                        (name, in_language(command).get_short_help_str(limit))
                        for name, command in listed
                    ]
                )
