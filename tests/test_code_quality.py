"""The linters and the type checker are part of the test run, so CI enforces them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing():
    result = run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes_on_the_packages():
    result = run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_public_api_type_checks_strictly():
    result = run(sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "tests/typing/public_api.py")
    assert result.returncode == 0, result.stdout + result.stderr
