"""Output for people: dates in the user's time zone, amounts in đồng, labels in their
language, and nothing for a field that has no value. `--json` prints the raw values.

Numbers and currency are formatted by Babel, the CLDR's locale data for Python: "1,500,000
VND" in English and "1.500.000 ₫" in Vietnamese are its patterns, not ours.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from cli.i18n import _, current_language

Formatter = Callable[[Any], str]
Field = tuple[str, str, Formatter | None]  # JSON name, English label, how to show it


def format_time_ms(time_ms: int) -> str:
    """Return a Unix time in milliseconds as a date and time in the local time zone."""
    moment = datetime.datetime.fromtimestamp(time_ms / 1000, tz=datetime.UTC).astimezone()
    offset = moment.strftime("%z")
    return moment.strftime("%Y-%m-%d %H:%M:%S") + f" UTC{offset[:3]}:{offset[3:]}"


def format_amount(amount: int) -> str:
    """Return an amount of đồng with the user's language's digit grouping."""
    from babel.numbers import format_currency, format_decimal  # loaded when amounts print

    if current_language() == "vi":
        return str(format_currency(amount, "VND", locale="vi_VN"))
    return f"{format_decimal(amount, locale='en_US')} VND"


def format_yes(value: Any) -> str:
    """Return a true flag as a word (false flags are not printed at all)."""
    return _("yes")


def labelled(
    document: dict[str, Any], fields: list[tuple[str, str, Formatter | None]]
) -> list[str]:
    """Return "Label: value" lines for the fields that hold a value: `fields` gives each
    one's JSON name, its English label (a message id) and how to show its value. A field
    that is absent, None, False or empty prints nothing."""
    lines = []
    for name, label, formatter in fields:
        value = document.get(name)
        if value is None or value is False or value == "" or value == []:
            continue
        shown = formatter(value) if formatter is not None else str(value)
        lines.append(f"{_(label)}: {shown}")
    return lines
