"""The CLI speaks Vietnamese on request: every message id has a translation."""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
from cli.i18n import choose_language, load_catalogue, parse_po
from cli.main import cli as root

CLI_FOLDER = Path(cli.__file__).parent


def message_ids() -> set[str]:
    """Return every constant string passed to _() in the cli package."""
    found = set()
    for path in CLI_FOLDER.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "_"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


def placeholders(text: str) -> set[str]:
    """Return the {names} a message is formatted with."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_the_cli_marks_messages_for_translation() -> None:
    assert len(message_ids()) > 30


def test_every_message_id_has_a_vietnamese_translation_with_the_same_placeholders() -> None:
    catalogue = load_catalogue("vi")
    missing = sorted(message_ids() - catalogue.keys())
    assert missing == [], f"add these to cli/locale/vi/LC_MESSAGES/danangchain.po: {missing}"
    for message in message_ids():
        assert placeholders(catalogue[message]) == placeholders(message), message


@pytest.mark.parametrize(
    ("option", "environ", "expected"),
    [
        (None, {}, "en"),
        (None, {"LANG": "vi_VN.UTF-8"}, "vi"),
        (None, {"LANG": "en_US.UTF-8"}, "en"),
        (None, {"LANGUAGE": "vi", "LANG": "en_US.UTF-8"}, "vi"),
        (None, {"LC_ALL": "C.UTF-8", "LANG": "vi_VN.UTF-8"}, "en"),
        ("en", {"LANG": "vi_VN.UTF-8"}, "en"),
        ("vi", {}, "vi"),
    ],
)
def test_language_comes_from_the_option_else_the_environment(
    option: str | None, environ: dict[str, str], expected: str
) -> None:
    assert choose_language(option, environ) == expected


def test_po_parser_joins_continued_lines_and_skips_fuzzy_and_empty_entries() -> None:
    text = '\n'.join([
        'msgid ""', 'msgstr "Language: vi\\n"', "",
        'msgid "two "', '"lines"', 'msgstr "hai "', '"dòng"', "",
        "#, fuzzy", 'msgid "unsure"', 'msgstr "chưa chắc"', "",
        'msgid "untranslated"', 'msgstr ""',
    ])  # fmt: skip
    assert parse_po(text) == {"two lines": "hai dòng"}


def test_errors_speak_vietnamese_with_lang_vi(tmp_path: Path) -> None:
    arguments = ["keys", "new", ".hidden", "--keystore", str(tmp_path)]
    english = CliRunner().invoke(root, arguments, env={"LANG": "C.UTF-8"})
    assert english.exit_code == 2
    assert "error: key name '.hidden' must be a plain file name" in english.output
    for invocation, environ in (
        (["--lang", "vi", *arguments], {"LANG": "C.UTF-8"}),
        (arguments, {"LANG": "vi_VN.UTF-8"}),
    ):
        result = CliRunner().invoke(root, invocation, env=environ)
        assert result.exit_code == 2
        assert "lỗi: tên khóa '.hidden' phải là một tên tệp đơn giản" in result.output


def test_messages_speak_vietnamese_with_lang_vi(tmp_path: Path) -> None:
    result = CliRunner().invoke(root, ["--lang", "vi", "keys", "list", "--keystore", str(tmp_path)])
    assert result.exit_code == 0
    assert f"không có khóa nào trong {tmp_path}" in result.output
