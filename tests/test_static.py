"""The house rules that tools check: ``ruff`` (lint and format) and
``mypy --strict`` over the packages and the tests, with the settings in
pyproject.toml.  Part of the test run so that CI keeps them true."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("command", [("check", "."), ("format", "--check", ".")])
def test_ruff(command: tuple[str, ...]) -> None:
    ruff = shutil.which("ruff") or pytest.skip("ruff is not installed (the test extra has it)")
    result = run(ruff, *command, "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is not installed (the test extra has it)")
    # A cache of our own: nothing is written into the checkout.
    result = run(sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
