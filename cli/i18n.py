"""Messages in the user's language: English by default, Vietnamese on request.

Translations live in gettext catalogues (`cli/locale/<lang>/LC_MESSAGES/danangchain.po`),
kept as text in the repository and read at run time, so there is no build step and no
compiled `.mo` file to keep in sync. `_()` looks its catalogue up in the click context
(set once by the root group's `--lang`), else in the environment (LANGUAGE, LC_ALL,
LC_MESSAGES, LANG, as gettext does). Message ids are the English text itself, written
with `{name}` placeholders and formatted after translation.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Mapping
from pathlib import Path

import click

DOMAIN = "danangchain"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "vi")
ENVIRONMENT_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
_CATALOGUE_KEY = "danangchain.catalogue"


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
    ctx.meta[_CATALOGUE_KEY] = load_catalogue(choose_language(language, os.environ))


def _(message: str) -> str:
    """Return a message in the chosen language (the English text if it has no translation)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and _CATALOGUE_KEY not in ctx.meta:
        use_language(ctx, None)
    catalogue = (
        ctx.meta[_CATALOGUE_KEY]
        if ctx is not None
        else load_catalogue(choose_language(None, os.environ))
    )
    return catalogue.get(message, message)
