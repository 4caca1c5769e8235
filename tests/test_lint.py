"""ruff and mypy hold for the whole tree (both come with the test extras)."""

from __future__ import annotations

import ast
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


def test_mypy_strict_on_the_app():
    result = _run(str(BIN / "mypy"), "--strict", "app")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_on_tests_and_scripts():
    result = _run(str(BIN / "mypy"), "tests", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr


MAX_FUNCTION_LINES = 40
MAX_MODULE_LINES = 300


def test_functions_and_modules_of_the_app_stay_small():
    # Migrations are generated history: left out.
    too_long = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {size} lines")
    assert too_long == []
