"""The documentation site builds with `mkdocs build --strict`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mkdocs_builds_strictly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "monitoring" / "index.html").exists()
    # The Vietnamese members' guide and the architecture page are in the site.
    assert (tmp_path / "members.vi" / "index.html").exists()
    assert "Tiếng Việt" in (tmp_path / "members" / "index.html").read_text(encoding="utf-8")
    assert (tmp_path / "design" / "index.html").exists()
