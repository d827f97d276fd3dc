"""Messages in the user's language: English by default, Vietnamese on request.

Translations live in gettext catalogues (`cli/locale/<lang>/LC_MESSAGES/danangchain.po`),
kept as text in the repository and read at run time, so there is no build step and no
compiled `.mo` file to keep in sync. `_()` looks its catalogue up in the click context
(set once by the root group's `--lang`), else in the environment (LANGUAGE, LC_ALL,
LC_MESSAGES, LANG, as gettext does). Message ids are the English text itself, written
with `{name}` placeholders and formatted after translation.

Help pages translate the same way: a command made with `TranslatedCommand` or
`TranslatedGroup` (and every command a `TranslatedGroup` makes) passes its help text, the
short help of the commands it lists and each option's help through `_()` when it formats
its help, so the catalogue's keys are the English help strings. A page is translated only
when the catalogue has the command's own help text: otherwise it is exactly click's.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import inspect
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import click

DOMAIN = "danangchain"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "vi")
ENVIRONMENT_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
_CATALOGUE_KEY = "danangchain.catalogue"
_LANGUAGE_KEY = "danangchain.language"


def catalogue_path(language: str) -> Path:
    """Return the .po file of a language."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def parse_po(text: str) -> dict[str, str]:
    """Return msgid -> msgstr of a .po file (plain entries; fuzzy and empty ones left out)."""
    entries: dict[str, str] = {}
    msgid: list[str] = []
    msgstr: list[str] = []
    current: list[str] | None = None
    fuzzy = False

    def close() -> None:
        if "".join(msgid) and "".join(msgstr) and not fuzzy:
            entries["".join(msgid)] = "".join(msgstr)

    for line in text.splitlines() + [""]:
        stripped = line.strip()
        if stripped.startswith("msgid "):
            close()
            msgid, msgstr = [_unquote(stripped[6:])], []
            current = msgid
        elif stripped.startswith("msgstr "):
            msgstr = [_unquote(stripped[7:])]
            current = msgstr
        elif stripped.startswith('"') and current is not None:
            current.append(_unquote(stripped))
        elif stripped.startswith("#,"):
            close()
            msgid, msgstr, current = [], [], None
            fuzzy = "fuzzy" in stripped
            continue
        elif not stripped:
            close()
            msgid, msgstr, current, fuzzy = [], [], None, False
    return entries


def _unquote(text: str) -> str:
    value = ast.literal_eval(text)
    if not isinstance(value, str):
        raise ValueError(f"not a quoted string: {text}")
    return value


def choose_language(option: str | None, environ: Mapping[str, str]) -> str:
    """Return 'vi' or 'en': the --lang option, else the first locale variable that is set."""
    if option:
        return option
    for name in ENVIRONMENT_VARIABLES:
        value = environ.get(name, "")
        if value:
            return "vi" if value.lower().startswith("vi") else "en"
    return "en"


def load_catalogue(language: str) -> dict[str, str]:
    """Return the translations of a language (English: none)."""
    if language == "en":
        return {}
    return parse_po(catalogue_path(language).read_text(encoding="utf-8"))


def use_language(ctx: click.Context, language: str | None) -> None:
    """Choose the language of this command's messages, from --lang or the environment."""
    chosen = choose_language(language, os.environ)
    ctx.meta[_LANGUAGE_KEY] = chosen
    ctx.meta[_CATALOGUE_KEY] = load_catalogue(chosen)


def current_language() -> str:
    """Return the chosen language's code (en or vi), for formats that depend on it."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or _LANGUAGE_KEY not in ctx.meta:
        return choose_language(None, os.environ)
    return str(ctx.meta[_LANGUAGE_KEY])


def set_language(ctx: click.Context, param: click.Parameter, language: str | None) -> str | None:
    """Callback of the eager --lang option: choose the language before --help prints."""
    use_language(ctx, language)
    return language


def current_catalogue() -> dict[str, str]:
    """Return the translations of the chosen language (English: none)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return load_catalogue(choose_language(None, os.environ))
    if _CATALOGUE_KEY not in ctx.meta:
        use_language(ctx, None)
    catalogue: dict[str, str] = ctx.meta[_CATALOGUE_KEY]
    return catalogue


def _(message: str) -> str:
    """Return a message in the chosen language (the English text if it has no translation)."""
    return current_catalogue().get(message, message)


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


# Usage errors (click's own messages), as one line in the chosen language

_SUGGESTION = re.compile(r"(?P<message>.*?) Did you mean (?P<suggestion>.+)\?")
_USAGE_MESSAGES: tuple[tuple[re.Pattern[str], Callable[[], str]], ...] = (
    (re.compile(r"Missing option (?P<name>\S+)\. Choose from: (?P<choices>.*)"),
     lambda: _("Missing option {name}. Choose from: {choices}")),
    (re.compile(r"Missing option (?P<name>\S+)\."), lambda: _("Missing option {name}.")),
    (re.compile(r"Missing argument (?P<name>\S+)\."), lambda: _("Missing argument {name}.")),
    (re.compile(r"No such option:? (?P<name>\S+?)\.?"), lambda: _("No such option {name}.")),
    (re.compile(r"No such command (?P<name>\S+)\."), lambda: _("No such command {name}.")),
    (re.compile(r"Option (?P<name>\S+) requires an argument\."),
     lambda: _("Option {name} requires an argument.")),
    (re.compile(r"Got unexpected extra arguments? \((?P<extra>.*)\)"),
     lambda: _("Got unexpected extra arguments ({extra})")),
    (re.compile(r"Invalid value for (?P<name>\S+): (?P<value>.+) is not one of (?P<choices>.*)\."),
     lambda: _("Invalid value for {name}: {value} is not one of {choices}.")),
    (re.compile(r"Invalid value for (?P<name>\S+): (?P<value>.+) is not in the range "
                r"(?P<range>\S+)\."),
     lambda: _("Invalid value for {name}: {value} is not in the range {range}.")),
    (re.compile(r"Invalid value for (?P<name>\S+): (?P<reason>.*)"),
     lambda: _("Invalid value for {name}: {reason}")),
)  # fmt: skip


def describe_usage_error(error: click.UsageError) -> str:
    """Return a click usage error as one line in the chosen language, with where to look:
    "error: Missing option '--from'. (see 'danangchain tx record --help')"."""
    scope = error.ctx.scope(cleanup=False) if error.ctx else contextlib.nullcontext()
    with scope:
        message = " ".join(error.format_message().split())
        suggestion = _SUGGESTION.fullmatch(message)
        if suggestion:
            message = suggestion["message"]
        for pattern, template in _USAGE_MESSAGES:
            match = pattern.fullmatch(message)
            if match:
                message = template().format(**match.groupdict())
                break
        if suggestion:
            message += " " + _("Did you mean {suggestion}?").format(
                suggestion=suggestion["suggestion"]
            )
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


class TranslatedHelpFormatter(click.HelpFormatter):
    """Writes click's own words (the usage prefix, section headings) in the chosen language."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, _("Usage:") + " " if prefix is None else prefix)

    def write_heading(self, heading: str) -> None:
        super().write_heading(_(heading))


def option_help_record(param: click.Parameter, ctx: click.Context) -> tuple[str, str] | None:
    """Return an option's help line, its help and click's notes ([required; default: ...])
    in the chosen language."""
    if not isinstance(param, click.Option):
        return param.get_help_record(ctx)
    translated = copy.copy(param)
    if param.help:
        translated.help = _(help_id(param.help))
    record = translated.get_help_record(ctx)
    if record is None:
        return None
    spec, line = record
    # click writes its notes after the help as "  [note; note]"; only known notes translate.
    start = f"{translated.help}  [" if translated.help else "["
    if line.startswith(start) and line.endswith("]"):
        notes = line[len(start) : -1].split("; ")
        line = start + "; ".join(_translate_note(note) for note in notes) + "]"
    return spec, line


def _translate_note(note: str) -> str:
    if note == "required":
        return _("required")
    if note.startswith("default: "):
        return _("default: {default}").format(default=note.removeprefix("default: "))
    if note.startswith("env var: "):
        return _("env var: {var}").format(var=note.removeprefix("env var: "))
    return note


class TranslatedCommand(click.Command):
    """A command whose --help speaks the chosen language when the catalogue has its help."""

    def get_help(self, ctx: click.Context) -> str:
        if not self.help or help_id(self.help) not in current_catalogue():
            return super().get_help(ctx)
        formatter = TranslatedHelpFormatter(
            width=ctx.terminal_width, max_width=ctx.max_content_width
        )
        self.format_help(ctx, formatter)
        return formatter.getvalue().rstrip("\n")

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        page = in_language(self) if isinstance(formatter, TranslatedHelpFormatter) else self
        click.Command.format_help_text(page, ctx, formatter)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Write the options (not, for a group, its commands) as click.Command does."""
        if not isinstance(formatter, TranslatedHelpFormatter):
            click.Command.format_options(self, ctx, formatter)
            return
        records = [
            record
            for param in self.get_params(ctx)
            if not isinstance(param, click.Argument)
            and (record := option_help_record(param, ctx)) is not None
        ]
        if records:
            with formatter.section("Options"):
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
        if not isinstance(formatter, TranslatedHelpFormatter):
            super().format_commands(ctx, formatter)
            return
        listed = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                listed.append((name, command))
        if listed:
            limit = formatter.width - 6 - max(len(name) for name, _command in listed)
            with formatter.section("Commands"):
                formatter.write_dl(
                    [
                        (name, in_language(command).get_short_help_str(limit))
                        for name, command in listed
                    ]
                )
