"""The password prompts speak the chosen language on a real terminal: `keys new` run as
its own process on a pseudo-terminal, typed at as a person would."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time
from collections.abc import Sequence
from pathlib import Path

DEADLINE_S = 60.0


class Terminal:
    """A command running on a pseudo-terminal of its own (its controlling terminal, so that
    getpass reads from it and Ctrl-C interrupts it)."""

    def __init__(self, args: Sequence[str], environ: dict[str, str]) -> None:
        self.master, slave = pty.openpty()

        def take_the_terminal() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=environ,
            preexec_fn=take_the_terminal,
        )
        os.close(slave)
        self.output = ""
        self.deadline = time.monotonic() + DEADLINE_S

    def _read(self) -> bool:
        """Read what the command wrote; return False once it closed the terminal."""
        remaining = self.deadline - time.monotonic()
        assert remaining > 0, f"no answer in {DEADLINE_S}s; the terminal shows: {self.output!r}"
        ready, _, _ = select.select([self.master], [], [], remaining)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: every copy of the terminal's other end is closed
            return False
        self.output += chunk.decode("utf-8", "replace")
        return bool(chunk)

    def expect(self, text: str, times: int = 1) -> None:
        """Wait until the terminal shows text (at least `times` times)."""
        while self.output.count(text) < times:
            assert self._read(), f"the command ended before showing {text!r}: {self.output!r}"

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def finish(self) -> int:
        """Read the rest until the command exits; return its exit code."""
        while self._read():
            pass
        code = self.process.wait(timeout=max(1.0, self.deadline - time.monotonic()))
        os.close(self.master)
        return code


def environment(**language: str) -> dict[str, str]:
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG", "DANANGCHAIN_PASSWORD")
    }
    return {**environ, "LANG": "C.UTF-8", **language}


def test_the_confirmation_prompt_and_its_mismatch_speak_vietnamese(tmp_path: Path) -> None:
    terminal = Terminal(
        ["keys", "new", "shop", "--keystore", str(tmp_path), "--lang", "vi"], environment()
    )
    terminal.expect("Mật khẩu: ")
    terminal.type(b"first try\n")
    terminal.expect("Nhập lại để xác nhận: ")
    terminal.type(b"second try\n")
    terminal.expect("Lỗi: hai lần nhập không khớp nhau.")
    terminal.expect("Mật khẩu: ", times=2)
    terminal.type(b"correct horse\n")
    terminal.expect("Nhập lại để xác nhận: ", times=2)
    terminal.type(b"correct horse\n")
    assert terminal.finish() == 0, terminal.output
    assert "đã tạo khóa shop" in terminal.output
    assert "Repeat for confirmation" not in terminal.output
    assert (tmp_path / "shop.json").exists()


def test_ctrl_c_at_the_prompt_says_aborted_in_the_language_of_lang_environment(
    tmp_path: Path,
) -> None:
    terminal = Terminal(
        ["keys", "new", "shop", "--keystore", str(tmp_path)], environment(LANG="vi_VN.UTF-8")
    )
    terminal.expect("Mật khẩu: ")
    terminal.type(b"\x03")  # Ctrl-C
    assert terminal.finish() == 1, terminal.output
    assert terminal.output.strip().endswith("đã hủy")
    assert not (tmp_path / "shop.json").exists()


def test_the_prompts_stay_english_by_default(tmp_path: Path) -> None:
    terminal = Terminal(["keys", "new", "shop", "--keystore", str(tmp_path)], environment())
    terminal.expect("Password: ")
    terminal.type(b"correct horse\n")
    terminal.expect("Repeat for confirmation: ")
    terminal.type(b"\x03")
    assert terminal.finish() == 1, terminal.output
    assert terminal.output.strip().endswith("aborted")
