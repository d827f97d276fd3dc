"""`danangchain anchor`: windows of a stream, reading framing, and bad input refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from click.testing import CliRunner

from cli.anchor import ReadingSource, parse_window, run_windows
from cli.common import CliError
from cli.main import cli

NO_NODE = ["--from", "nobody", "--node", "http://127.0.0.1:9"]


@pytest.mark.parametrize(("text", "ms"), [("10s", 10_000), ("1s", 1000), ("5m", 300_000)])
def test_a_window_is_whole_seconds_or_minutes(text: str, ms: int) -> None:
    assert parse_window(text) == ms


@pytest.mark.parametrize("text", ["0s", "10", "1.5s", "2h", "1441m", "-1s", "s"])
def test_invalid_windows_are_refused(text: str) -> None:
    with pytest.raises(CliError, match="--window"):
        parse_window(text)


class ScriptedSource:
    """Batches of readings, each read at a given clock time; then the end."""

    def __init__(self, clock: list[int], batches: list[tuple[int, list[bytes]]]) -> None:
        self.clock, self.batches = clock, batches

    def read(self, timeout_s: float) -> list[bytes] | None:
        if not self.batches:
            return None
        at, readings = self.batches.pop(0)
        self.clock[0] = at
        return readings


def windows_of(batches: list[tuple[int, list[bytes]]], start: int = 10_500) -> list[object]:
    clock = [start]
    anchored: list[object] = []
    run_windows(
        ScriptedSource(clock, batches),  # type: ignore[arg-type]
        1000,
        lambda: clock[0],
        lambda readings, begin, end: anchored.append((list(readings), begin, end)),
    )
    return anchored


def test_readings_go_to_the_aligned_window_they_arrive_in() -> None:
    anchored = windows_of(
        [(10_600, [b"a", b"b"]), (10_999, [b"c"]), (11_000, [b"d"]), (13_200, [b"e"])]
    )
    assert anchored == [
        ([b"a", b"b", b"c"], 10_000, 11_000),
        ([b"d"], 11_000, 12_000),
        ([b"e"], 13_000, 14_000),
    ]


def test_a_window_without_readings_costs_no_transaction() -> None:
    assert windows_of([(10_600, []), (12_100, []), (14_000, [])]) == []


def pipe_with(data: bytes) -> int:
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    return read_end


def read_all(source: ReadingSource) -> Iterator[bytes]:
    while (got := source.read(1.0)) is not None:
        yield from got


def test_lines_are_readings_without_their_newline_and_the_last_needs_none() -> None:
    fd = pipe_with(b"t=1 21.5\n\nt=2 21.7\r\nt=3 22.0")
    assert list(read_all(ReadingSource(fd, "lines"))) == [b"t=1 21.5", b"t=2 21.7\r", b"t=3 22.0"]
    os.close(fd)


def test_msgpack_readings_keep_the_bytes_they_came_as() -> None:
    values = [{"t": 1, "v": 21.5}, [1, 2, 3], b"\x00raw"]
    packed = [msgpack.packb(value) for value in values]
    fd = pipe_with(b"".join(packed))
    assert list(read_all(ReadingSource(fd, "msgpack"))) == packed
    os.close(fd)


def test_malformed_msgpack_ends_the_stream_after_the_readings_before_it() -> None:
    fd = pipe_with(msgpack.packb([1]) + b"\xc1")
    source = ReadingSource(fd, "msgpack")
    assert source.read(1.0) == [msgpack.packb([1])]
    with pytest.raises(CliError, match="not msgpack after byte 2"):
        source.read(1.0)
    os.close(fd)


def test_msgpack_cut_short_is_refused() -> None:
    fd = pipe_with(b"\x93\x01")
    with pytest.raises(CliError, match="ends inside a msgpack value"):
        list(read_all(ReadingSource(fd, "msgpack")))
    os.close(fd)


def invoke(*arguments: str, folder: Path) -> str:
    result = CliRunner().invoke(cli, ["anchor", *arguments, *NO_NODE], env={"LANG": "C.UTF-8"})
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    return line


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing", "--name", "x"], "missing does not exist"),
        (["--name", "x"], "give the files or folders"),
        (["data", "--name", "a/b"], "--name 'a/b' must be"),
        (["data", "--name", "x", "--window", "10s"], "go with --stream"),
        (["data", "--stream", "--name", "x"], "give no PATH"),
        (["empty", "--name", "x"], "no files to anchor under empty"),
        (["data", "other", "--name", "x"], "two files have the path a.csv"),
        (["data", "--name", "x", "--category", "poems"], "Invalid value for '--category'"),
        (["data", "--name", "taken"], "taken.anchor.json exists"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_anything_is_signed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arguments: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    for folder in ("data", "other", "empty"):
        (tmp_path / folder).mkdir()
    (tmp_path / "data" / "a.csv").write_text("1")
    (tmp_path / "other" / "a.csv").write_text("2")
    (tmp_path / "taken.anchor.json").write_text("{}")
    assert message in invoke(*arguments, folder=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "data",
        "empty",
        "other",
        "taken.anchor.json",
    ]


def test_a_manifest_in_a_missing_folder_is_refused_before_hashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("1")
    line = invoke("data", "--name", "x", "--manifest", "nowhere/x.json", folder=tmp_path)
    assert "nowhere is not a folder" in line
