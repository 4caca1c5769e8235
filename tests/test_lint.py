"""ruff and mypy hold for the whole tree (both come with the test extras)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff():
    result = _run(str(BIN / "ruff"), "check", "app", "tests", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format():
    result = _run(str(BIN / "ruff"), "format", "--check", "app", "tests", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy():
    result = _run(str(BIN / "mypy"), "app")
    assert result.returncode == 0, result.stdout + result.stderr
