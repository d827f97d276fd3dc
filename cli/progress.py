"""Progress bars for long operations: drawn on a terminal, silent in pipes and logs.

One helper for every long command (audit, export, import, bench, waiting for a sync), so
they all behave alike: the bar goes to stderr (stdout stays clean for `--json` and for
pipes), only when stderr is a terminal, and never when the length is unknown (0).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import click

Advance = Callable[[int], None]


def _ignore(steps: int) -> None:
    """Advance nothing: no bar is drawn."""


@contextlib.contextmanager
def progress(length: int, label: str) -> Iterator[Advance]:
    """Yield `advance(steps)`, which moves a bar of `length` steps on a terminal only."""
    if length <= 0 or not sys.stderr.isatty():
        yield _ignore
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update
