"""Long commands draw a progress bar on a terminal and stay silent in pipes."""

from __future__ import annotations

import io

import pytest

from cli.progress import progress


class Terminal(io.StringIO):
    """A captured stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_a_bar_is_drawn_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with progress(4, "verifying") as advance:
        for _ in range(4):
            advance(1)
    drawn = terminal.getvalue()
    assert "verifying" in drawn
    assert "100%" in drawn


@pytest.mark.parametrize(("stream", "length"), [(io.StringIO(), 4), (Terminal(), 0)])
def test_nothing_is_drawn_in_a_pipe_or_for_an_unknown_length(
    monkeypatch: pytest.MonkeyPatch, stream: io.StringIO, length: int
) -> None:
    monkeypatch.setattr("sys.stderr", stream)
    with progress(length, "exporting") as advance:
        advance(1)
    assert stream.getvalue() == ""
