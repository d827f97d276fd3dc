"""Shell completion offers the keystore's key names for --from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from cli.main import cli


def complete(words: str, cword: int, **env: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main"],
        env={**os.environ, "_DANANGCHAIN_COMPLETE": "bash_complete", "COMP_WORDS": words,
             "COMP_CWORD": str(cword), **env},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return [line.split(",", 1)[1] for line in result.stdout.splitlines()]


def test_from_completes_the_key_names_of_the_keystore_in_use(tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("correct horse\n")
    keystore = tmp_path / "keys"
    for name in ("shop", "shelf", "household"):
        made = CliRunner().invoke(
            cli,
            ["keys", "new", name, "--keystore", str(keystore), "--password-file", str(password)],
        )
        assert made.exit_code == 0, made.output
    words = f"danangchain tx endorse {'00' * 32} --keystore {keystore} --from sh"
    assert complete(words, 7) == ["shelf", "shop"]
    by_env = complete("danangchain member admit x --from h", 5, DANANGCHAIN_KEYSTORE=str(keystore))
    assert by_env == ["household"]
