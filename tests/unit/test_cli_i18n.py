"""The CLI speaks Vietnamese on request: every message id has a translation."""

from __future__ import annotations

import ast
import os
import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import cli
import danangchain
import node
from cli.i18n import (
    LANGUAGES,
    TranslatedCommand,
    catalogue_path,
    choose_language,
    compiled_catalogue_path,
    help_id,
    language_scope,
    requested_language,
)
from cli.main import COMMANDS
from cli.main import cli as root

CLI_FOLDER = Path(cli.__file__).parent
CORE_FOLDER = Path(danangchain.__file__).parent
NODE_FOLDER = Path(node.__file__).parent


def load_catalogue(language: str) -> dict[str, str]:
    """Return msgid -> msgstr of a language's .po file (plural entries and fuzzy ones left
    out), read with Babel."""
    with catalogue_path(language).open("rb") as file:
        catalogue = read_po(file)
    return {
        message.id: message.string
        for message in catalogue
        if message.id and isinstance(message.id, str) and message.string and not message.fuzzy
    }


def message_ids() -> set[str]:
    """Return every constant string passed to _() in the cli package, and every error
    template the core and the node make with `SomeError.of(...)` (the CLI shows those
    through describe_error)."""
    found = set()
    paths = [*CLI_FOLDER.glob("*.py"), *CORE_FOLDER.glob("*.py"), *NODE_FOLDER.glob("*.py")]
    for path in paths:
        for item in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(item, ast.Call)
                and _is_translated_call(item.func, path.parent == CLI_FOLDER)
                and item.args
                and isinstance(item.args[0], ast.Constant)
                and isinstance(item.args[0].value, str)
            ):
                found.add(item.args[0].value)
    return found


def _is_translated_call(function: ast.expr, in_cli: bool) -> bool:
    if in_cli and isinstance(function, ast.Name):
        return function.id == "_"
    return isinstance(function, ast.Attribute) and function.attr == "of"


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


def test_the_compiled_catalogue_is_the_po_file_compiled() -> None:
    """gettext reads the .mo: it must say what the .po says (after editing the .po, run
    `pybabel compile -d cli/locale -D danangchain`)."""
    for language in LANGUAGES:
        if not catalogue_path(language).exists():
            continue
        with catalogue_path(language).open("rb") as file:
            source = read_po(file)
        with compiled_catalogue_path(language).open("rb") as file:
            compiled = read_mo(file)
        expected = {
            _hashable(m.id): _hashable(m.string)
            for m in source
            if m.id and m.string and not m.fuzzy
        }
        found = {_hashable(m.id): _hashable(m.string) for m in compiled if m.id}
        assert found == expected, "run: pybabel compile -d cli/locale -D danangchain"


def _hashable(text: str | tuple[str, ...] | list[str]) -> str | tuple[str, ...]:
    """Return a message id or string; plural ones (lists or tuples in Babel) as tuples."""
    return text if isinstance(text, str) else tuple(text)


WORDS = st.sampled_from(["keys", "new", "shop", "--json", "-h", "--help", "--memo", "x", "-"])


@given(
    before=st.lists(WORDS),
    after=st.lists(WORDS),
    language=st.sampled_from(LANGUAGES),
    joined=st.booleans(),
)
def test_a_lang_anywhere_before_a_double_dash_chooses_the_language(
    before: list[str], after: list[str], language: str, joined: bool
) -> None:
    option = [f"--lang={language}"] if joined else ["--lang", language]
    assert requested_language([*before, *option, *after]) == language
    assert requested_language([*before, "--", *option, *after]) is None
    assert requested_language([*before, *after]) is None


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["query", "status"], None),
        (["query", "status", "--lang", "vi"], "vi"),
        (["--lang", "vi", "keys", "new", "shop", "--lang", "en"], "en"),
        (["keys", "new", "shop", "--lang=vi"], "vi"),
        (["keys", "new", "--", "--lang", "vi"], None),
        (["keys", "new", "shop", "--lang"], None),
        (["keys", "new", "shop", "--lang", "fr"], None),
    ],
)
def test_requested_language(arguments: list[str], expected: str | None) -> None:
    assert requested_language(arguments) == expected


def test_the_language_scope_puts_the_environment_back() -> None:
    before = os.environ.get("LANGUAGE")
    with language_scope("vi"):
        assert os.environ["LANGUAGE"] == "vi"
        with language_scope("en"):
            assert os.environ["LANGUAGE"] == "en"
        assert os.environ["LANGUAGE"] == "vi"
    assert os.environ.get("LANGUAGE") == before


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


# Help pages

ENGLISH = {"LANGUAGE": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": "C.UTF-8"}
VIETNAMESE = {**ENGLISH, "LANG": "vi_VN.UTF-8"}


def translated_commands() -> Iterator[tuple[list[str], click.Command]]:
    """Yield the path and command of every help page: the root, every command group and
    every command (the root group imports each group as it is asked for it)."""

    def walk(command: click.Command, path: list[str]) -> Iterator[tuple[list[str], click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, [*path, name]
                yield from walk(sub, [*path, name])

    yield from walk(root, [])


def help_strings(command: click.Command) -> set[str]:
    """Return the help texts a command's --help page shows: its own, its options' and
    those its list of subcommands is made from."""
    # command.params, not get_params(): that would cache a help option made without the
    # root's context settings (-h) on the command, for the tests that follow.
    texts = [command.help, command.short_help, "Show this message and exit."]
    texts += [param.help for param in command.params if isinstance(param, click.Option)]
    if command is root:
        texts += [entry.short_help for entry in COMMANDS.values()]
    elif isinstance(command, click.Group):
        texts += [sub.help for sub in command.commands.values()]
        texts += [sub.short_help for sub in command.commands.values()]
    return {help_id(text) for text in texts if text}


def test_every_help_string_of_the_translated_pages_has_a_vietnamese_translation() -> None:
    catalogue = load_catalogue("vi")
    missing = sorted(
        {text for _path, command in translated_commands() for text in help_strings(command)}
        - catalogue.keys()
    )
    assert missing == [], f"add these to cli/locale/vi/LC_MESSAGES/danangchain.po: {missing}"
    assert len(list(translated_commands())) >= 40  # every page, not a chosen few


def test_help_translations_keep_the_paragraphs_and_the_example_command() -> None:
    catalogue = load_catalogue("vi")
    for _path, command in translated_commands():
        assert command.help is not None
        english = help_id(command.help)
        vietnamese = catalogue[english]
        assert vietnamese.count("\n\n") == english.count("\n\n"), english
        if "Example: " in english:
            example = english.split("Example: ")[1].split()
            assert "Ví dụ: " in vietnamese, english
            assert vietnamese.split("Ví dụ: ")[1].split() == example, english


def flat(text: str) -> str:
    """Return text with every run of whitespace as one space (help is wrapped at 80)."""
    return " ".join(text.split())


def test_tx_record_help_speaks_vietnamese_with_lang_vi_or_lang_environment() -> None:
    example = (
        "Ví dụ: danangchain tx record --from shop --category invoice --doc inv.pdf"
        " --amount 1500000 --counterparty dn1... --wait"
    )
    for arguments, environ in (
        (["--lang", "vi", "tx", "record", "--help"], ENGLISH),
        (["tx", "record", "--help"], VIETNAMESE),
    ):
        result = CliRunner().invoke(root, arguments, env=environ, prog_name="danangchain")
        assert result.exit_code == 0, result.output
        output = flat(result.output)
        assert "Cách dùng: danangchain tx record [OPTIONS]" in output
        assert "Ghi một tài liệu (qua mã băm của nó) hoặc một giao dịch lên sổ cái." in output
        assert example in output
        assert "Tùy chọn:" in output
        assert "--memo TEXT Ghi chú ngắn (tối đa 512 byte)." in output
        assert "Tên hoặc tệp của khóa ký. [bắt buộc]" in output
        assert "[mặc định: 60.0]" in output
        assert "-h, --help Hiện hướng dẫn này rồi thoát." in output


def test_help_stays_english_by_default() -> None:
    result = CliRunner().invoke(
        root, ["tx", "record", "--help"], env=ENGLISH, prog_name="danangchain"
    )
    assert result.exit_code == 0
    output = flat(result.output)
    assert "Usage: danangchain tx record [OPTIONS]" in output
    assert "Record a document (by its hash) or a transaction on the ledger." in output
    assert "Example: danangchain tx record --from shop" in output
    assert "Name or file of the signing key. [required]" in output
    assert "-h, --help Show this message and exit." in output
    for vietnamese in ("Cách dùng", "Tùy chọn", "Ví dụ", "bắt buộc"):
        assert vietnamese not in output


def test_root_help_speaks_vietnamese_with_lang_vi() -> None:
    result = CliRunner().invoke(
        root, ["--lang", "vi", "--help"], env=ENGLISH, prog_name="danangchain"
    )
    assert result.exit_code == 0
    output = flat(result.output)
    assert "Cách dùng: danangchain [OPTIONS] COMMAND [ARGS]..." in output
    assert "DanangChain: sổ cái cấp phép" in output
    assert "Bắt đầu với: danangchain quickstart" in output
    assert "Lệnh:" in output
    for listed in (
        "keys Tạo và xem các khóa ký của bạn",
        "query Tra cứu chuỗi khối, giao dịch, tài khoản và bản ghi.",
        "tx Ghi tài liệu và giao dịch",
        "audit Kiểm tra sổ cái",
    ):
        assert listed in output
    english = CliRunner().invoke(root, ["--help"], env=ENGLISH, prog_name="danangchain")
    assert "DanangChain: a permissioned, tamper-evident ledger" in english.output


@pytest.mark.parametrize(
    "path",
    [path for path, _command in translated_commands()],
    ids=lambda path: " ".join(path) or "danangchain",
)
def test_translated_help_pages_leave_no_english_word_of_click(path: list[str]) -> None:
    result = CliRunner().invoke(
        root, ["--lang", "vi", *path, "--help"], env=ENGLISH, prog_name="danangchain"
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Cách dùng: danangchain {' '.join(path)}".rstrip())
    for english in (
        "Usage:",
        "Options:",
        "Commands:",
        "Show this message",
        "[required",
        "[default",
    ):
        assert english not in result.output


@pytest.mark.parametrize(
    "path",
    [path for path, _command in translated_commands()],
    ids=lambda path: " ".join(path) or "danangchain",
)
def test_every_help_page_speaks_vietnamese_with_lang_vi_after_the_command(path: list[str]) -> None:
    command = dict((" ".join(p), c) for p, c in translated_commands())[" ".join(path)]
    assert isinstance(command, TranslatedCommand), f"{path}: make it with cls=Translated..."
    assert command.help is not None
    english_help = help_id(command.help)
    vietnamese_help = load_catalogue("vi")[english_help]
    result = CliRunner().invoke(
        root, [*path, "--help", "--lang", "vi"], env=ENGLISH, prog_name="danangchain"
    )
    assert result.exit_code == 0, result.output
    output = flat(result.output)
    assert output.startswith(flat(f"Cách dùng: danangchain {' '.join(path)}"))
    assert flat(vietnamese_help.split("\n\n")[0]) in output
    assert "Tùy chọn:" in output and "Hiện hướng dẫn này rồi thoát." in output
    english = CliRunner().invoke(root, [*path, "--help"], env=ENGLISH, prog_name="danangchain")
    assert flat(english_help.split("\n\n")[0]) in flat(english.output)
    assert flat(english.output) != output


def test_a_help_text_with_no_translation_shows_as_written() -> None:
    json_option = click.Option(["--json"], is_flag=True, help="Print JSON for scripts.")
    command = TranslatedCommand("demo", help="Not translated yet.", params=[json_option])
    result = CliRunner().invoke(command, ["--help"], env=VIETNAMESE)
    assert result.exit_code == 0
    assert result.output.startswith("Cách dùng: demo [OPTIONS]\n\n  Not translated yet.")
    assert "In kết quả dạng JSON" in result.output  # the option's help is translated
    english = CliRunner().invoke(command, ["--help"], env=ENGLISH)
    assert english.output.startswith("Usage: demo [OPTIONS]\n\n  Not translated yet.")
    assert "Show this message and exit." in english.output


def test_the_core_s_errors_reach_the_user_in_vietnamese(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        root, ["--lang", "vi", "query", "account", "dn1xyz", "--node", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        "lỗi: địa chỉ 'dn1xyz' không hợp lệ: sai độ dài: 6 ký tự, một địa chỉ có 41"
    )
    missing = tmp_path / "nobody.json"
    result = CliRunner().invoke(
        root, ["--lang", "vi", "keys", "show", str(missing)], env={"LANG": "C.UTF-8"}
    )
    assert result.exit_code == 2
    assert result.output.strip() == f"lỗi: không tìm thấy tệp khóa {missing}"
    english = CliRunner().invoke(root, ["keys", "show", str(missing)], env={"LANG": "C.UTF-8"})
    assert english.output.strip() == f"error: key file {missing} not found"


@pytest.mark.parametrize(
    ("arguments", "english", "vietnamese"),
    [
        (
            ["tx", "record", "--from", "shop", "--category", "receipt"],
            "error: Invalid value for '--category': 'receipt' is not one of 'invoice',",
            "lỗi: Giá trị không hợp lệ cho '--category': 'receipt' không phải một trong",
        ),
        (
            ["query", "tx"],
            "error: Missing argument 'TX_ID'. (see 'danangchain query tx --help')",
            "lỗi: Thiếu đối số 'TX_ID'. (xem 'danangchain query tx --help')",
        ),
        (
            ["tx", "recrod"],
            "error: No such command 'recrod'. Did you mean 'record'? (see 'danangchain tx --help')",
            "lỗi: Không có lệnh 'recrod'. Có phải ý bạn là 'record'? (xem 'danangchain tx --help')",
        ),
    ],
)
def test_usage_errors_are_one_line_exit_2_in_the_chosen_language(
    arguments: list[str], english: str, vietnamese: str
) -> None:
    for invocation, expected in ((arguments, english), (["--lang", "vi", *arguments], vietnamese)):
        result = CliRunner().invoke(root, invocation, prog_name="danangchain", env={"LANG": "C"})
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(expected), result.output


# --lang wherever it stands


def test_lang_after_the_subcommand_chooses_the_language(tmp_path: Path) -> None:
    password = tmp_path / "pw.txt"
    password.write_text("correct horse\n")
    keystore = ["--keystore", str(tmp_path / "keys"), "--password-file", str(password)]
    result = CliRunner().invoke(
        root, ["keys", "new", "shop", *keystore, "--lang", "vi"], env=ENGLISH
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("đã tạo khóa shop\n")
    result = CliRunner().invoke(
        root, ["query", "status", "--node", "http://127.0.0.1:1", "--lang", "vi"], env=ENGLISH
    )
    assert result.exit_code == 2
    assert result.output.startswith("lỗi: không kết nối được tới nút mạng http://127.0.0.1:1")
    result = CliRunner().invoke(root, ["keys", "list", "--lang=vi", "--keystore", str(tmp_path)])
    assert f"không có khóa nào trong {tmp_path}" in result.output


def test_lang_en_speaks_english_under_a_vietnamese_environment(tmp_path: Path) -> None:
    for arguments in (
        ["--lang", "en", "keys", "list", "--keystore", str(tmp_path)],
        ["keys", "list", "--keystore", str(tmp_path), "--lang", "en"],
    ):
        result = CliRunner().invoke(root, arguments, env=VIETNAMESE)
        assert result.output == f"no keys in {tmp_path}\n"
    result = CliRunner().invoke(root, ["query", "tx", "--lang", "en"], env=VIETNAMESE)
    assert result.output.startswith("error: Missing argument 'TX_ID'.")


def test_an_unknown_language_is_a_usage_error_after_the_subcommand_too() -> None:
    result = CliRunner().invoke(
        root, ["keys", "list", "--lang", "fr"], env=ENGLISH, prog_name="danangchain"
    )
    assert result.exit_code == 2
    assert result.output == (
        "error: Invalid value for '--lang': 'fr' is not one of 'en', 'vi'."
        " (see 'danangchain keys list --help')\n"
    )


def test_version_speaks_the_chosen_language() -> None:
    english = CliRunner().invoke(root, ["--version"], env=ENGLISH)
    assert english.output.startswith("danangchain, version ")
    vietnamese = CliRunner().invoke(root, ["--version", "--lang", "vi"], env=ENGLISH)
    assert vietnamese.output.startswith("danangchain, phiên bản ")


def test_a_command_leaves_the_environment_as_it_found_it(tmp_path: Path) -> None:
    before = os.environ.get("LANGUAGE")
    CliRunner().invoke(root, ["--lang", "vi", "keys", "list", "--keystore", str(tmp_path)])
    assert os.environ.get("LANGUAGE") == before


# Operators' and auditors' messages


@pytest.mark.parametrize(
    ("arguments", "vietnamese"),
    [
        (["network", "init", "{full}"], "lỗi: {full} không trống; hãy chọn một thư mục mới"),
        (
            ["testnet", "{empty}"],
            "lỗi: {empty} không chứa thư mục home của nút nào; hãy tạo bằng"
            " 'danangchain network init'",
        ),
        (
            ["genesis", "create", "--chain-id", "x", "--validator", "{full}/pw"]
            + ["--registrar", "00", "--out", "{full}/pw"],
            "lỗi: {full}/pw đã tồn tại; hãy chọn --out khác",
        ),
        (
            ["node", "init", "{empty}/n", "--name", "n", "--p2p-url", "http://h:1"]
            + ["--api-url", "https://h:2", "--password-file", "{full}/pw"],
            "lỗi: 'https://h:2' không phải URL API dạng http://máy:cổng",
        ),
        (
            ["audit", "verify", "--home", "{empty}", "--file", "{out}"],
            "lỗi: hãy dùng đúng một trong: --home DIR, --node URL hoặc --file F",
        ),
        (
            ["audit", "check-proof", "{out}", "--file", "{out}"],
            "lỗi: không đọc được {out}: No such file or directory",
        ),
    ],
)
def test_operator_and_audit_refusals_speak_vietnamese(
    tmp_path: Path, arguments: list[str], vietnamese: str
) -> None:
    places = {"full": tmp_path / "full", "empty": tmp_path / "empty", "out": tmp_path / "g.json"}
    places["full"].mkdir()
    (places["full"] / "pw").write_text("correct horse\n")
    places["empty"].mkdir()
    invocation = [argument.format(**places) for argument in arguments]
    result = CliRunner().invoke(root, [*invocation, "--lang", "vi"], env=ENGLISH)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(vietnamese.format(**places)), result.output
    english = CliRunner().invoke(root, invocation, env=ENGLISH)
    assert english.output.startswith("error: "), english.output


def test_an_audit_report_speaks_vietnamese() -> None:
    from cli.audit import describe_report

    report = {
        "valid": True,
        "heights_checked": 12,
        "transactions_checked": 1,
        "validators_seen": 4,
        "seconds": 0.5,
        "chain_id": "danang",
        "genesis_hash": "ab" * 32,
        "genesis_pinned": False,
        "tip_height": 12,
        "tip_hash": "cd" * 32,
    }
    with language_scope("vi"):
        lines = describe_report(report)
    assert lines == [
        "hợp lệ: 12 khối, 1 giao dịch, 4 nút xác thực, kiểm tra trong 0.5 giây",
        f"chuỗi danang, khối khởi tạo {'ab' * 32} (CHƯA cố định: hãy dùng --genesis-hash"
        " để cố định)",
        f"khối mới nhất: độ cao 12, khối {'cd' * 32}",
    ]
    with language_scope("en"):
        assert describe_report(report)[0] == (
            "valid: 12 blocks, 1 transaction, 4 validators, checked in 0.5 s"
        )
        failed = describe_report({**report, "valid": False, "failed_height": 3, "reason": "x"})
    assert failed == [
        "INVALID at height 3: x",
        "checked before the fault: 12 blocks, 1 transaction, 4 validators",
    ]


def test_a_node_s_last_error_is_found_in_the_language_it_inherited(tmp_path: Path) -> None:
    from cli.localnet import describe_exit

    log = tmp_path / "node.log"
    log.write_text("2026-12-01 INFO node: starting\nlỗi: không đọc được tệp cấu hình\n")
    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"])
    exited.wait(timeout=60)
    with language_scope("vi"):
        said = describe_exit(exited, log)
    assert said == f"nút đã thoát với mã 2: lỗi: không đọc được tệp cấu hình (xem {log})"


@pytest.mark.parametrize(
    ("arguments", "vietnamese"),
    [
        (
            ["chain", "export", "--out", "{out}"],
            "lỗi: hãy dùng đúng một trong: --node URL hoặc --home DIR",
        ),
        (
            ["validator", "propose", "add", "--from", "nobody"],
            "lỗi: hãy đưa PUBKEY của nút xác thực, hoặc --card CARD để thêm một nút",
        ),
    ],
)
def test_chain_and_validator_refusals_speak_vietnamese(
    tmp_path: Path, arguments: list[str], vietnamese: str
) -> None:
    invocation = [argument.format(out=tmp_path / "chain.dnx") for argument in arguments]
    result = CliRunner().invoke(root, [*invocation, "--lang", "vi"], env=ENGLISH)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(vietnamese), result.output
