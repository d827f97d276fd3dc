"""Output for people: dates in the local time zone, amounts in đồng as each language
writes them, labels translated, and no line for a field without a value."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import click
import pytest

from cli.i18n import use_language
from cli.output import format_amount, format_time_ms, labelled


@pytest.fixture
def in_language() -> Iterator[Callable[[str], None]]:
    def choose(language: str) -> None:
        ctx = click.Context(click.Command("x"))
        ctx.__enter__()
        contexts.append(ctx)
        use_language(ctx, language)

    contexts: list[click.Context] = []
    yield choose
    for ctx in reversed(contexts):
        ctx.__exit__(None, None, None)


def test_amounts_are_grouped_as_each_language_writes_them(
    in_language: Callable[[str], None],
) -> None:
    in_language("en")
    assert format_amount(1_500_000) == "1,500,000 VND"
    in_language("vi")
    assert format_amount(1_500_000).replace("\xa0", " ") == "1.500.000 ₫"
    assert format_amount(0).replace("\xa0", " ") == "0 ₫"


def test_times_are_shown_in_the_local_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Ho_Chi_Minh")
    time.tzset()
    try:
        assert format_time_ms(1_796_108_661_685) == "2026-12-01 14:04:21 UTC+07:00"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_fields_without_a_value_print_nothing_and_labels_are_translated(
    in_language: Callable[[str], None],
) -> None:
    in_language("vi")
    document = {"memo": "", "amount": 1500, "counterparty": None, "endorsed": False, "height": 3}
    fields = [
        ("memo", "Memo", None),
        ("amount", "Amount", format_amount),
        ("counterparty", "Counterparty", None),
        ("endorsed", "Endorsed at height", None),
        ("height", "Recorded at height", None),
    ]
    lines = [line.replace("\xa0", " ") for line in labelled(document, fields)]
    assert lines == ["Số tiền: 1.500 ₫", "Được ghi ở khối: 3"]
