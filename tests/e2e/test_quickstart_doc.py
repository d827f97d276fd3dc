"""Getting started (docs/index.md) shows `danangchain quickstart`'s output line for line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

INDEX = Path(__file__).resolve().parents[2] / "docs" / "index.md"
TEXT_BLOCK = re.compile(r"^```text\n(.*?)^```$", re.DOTALL | re.MULTILINE)
# The only parts of the output that change from run to run: the two new members'
# addresses (bech32, 38 characters after "dn1"), transaction ids and the block hash
# (64 hex digits, or their first 16 and an ellipsis), and timings. Chain id, validator
# count, labels and heights are the same on every run, and are compared as they are.
MASKS = (
    (re.compile(r"\bdn1[02-9ac-hj-np-z]{38}\b"), "dn1<address>"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "<id>"),
    (re.compile(r"\b[0-9a-f]{16}…"), "<id>…"),
    (re.compile(r"\b\d+\.\d\ds\b"), "<seconds>s"),
)


def mask(line: str) -> str:
    """Replace the variable parts of a line of quickstart's output."""
    for pattern, placeholder in MASKS:
        line = pattern.sub(placeholder, line)
    return line


def read_documented_output() -> list[str]:
    """Return the lines of the one ```text block of docs/index.md: quickstart's output."""
    blocks = TEXT_BLOCK.findall(INDEX.read_text(encoding="utf-8"))
    assert len(blocks) == 1, "docs/index.md must show exactly one ```text block"
    return blocks[0].splitlines()


def test_getting_started_shows_quickstart_output_line_for_line() -> None:
    documented = [mask(line) for line in read_documented_output()]
    # The sample itself must have every variable part in a maskable form (a real address,
    # real-looking ids): otherwise the comparison below would fail on the sample, not on
    # quickstart.
    masked_sample = "\n".join(documented)
    assert masked_sample.count("dn1<address>") == 2, masked_sample
    assert not re.search(r"[0-9a-f]{8}", masked_sample), masked_sample

    result = run_cli("--lang", "en", "quickstart", timeout=240)
    assert result.returncode == 0, result.stderr[-4000:]
    printed = [mask(line) for line in result.stdout.splitlines()]

    assert len(printed) == len(documented), (
        f"quickstart printed {len(printed)} lines, docs/index.md shows {len(documented)}:\n"
        + result.stdout
    )
    for number, (shown, actual) in enumerate(zip(documented, printed, strict=True), start=1):
        assert actual == shown, f"line {number} differs from docs/index.md:\n{result.stdout}"
