"""Run the installed ``mailqueue`` console script as a subprocess, the way an operator does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

MAILQUEUE = str(Path(sys.executable).with_name("mailqueue"))
Run = Callable[..., subprocess.CompletedProcess[str]]

# Settings a developer may have exported; the commands under test must not see them.
_CLEARED_PREFIXES = ("MAILQUEUE_", "EMAIL_", "DEFAULT_FROM_EMAIL", "SERVER_EMAIL")


def clean_environment(**values: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(_CLEARED_PREFIXES)}
    env.update(values)
    return env


def assert_one_line_error(result: subprocess.CompletedProcess[str], *, status: int = 1) -> str:
    """The command failed with ``status`` and said why in one line, with no traceback."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for the commands: the embedded data folder in this test's temp directory."""
    return clean_environment(MAILQUEUE_DATA_DIR=str(tmp_path / "var"))


@pytest.fixture
def mailqueue(cli_env: dict[str, str], tmp_path: Path) -> Run:
    """``mailqueue(*args, input=None, env={...}, timeout=60)`` runs the command in tmp_path."""

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MAILQUEUE, *args], input=input, capture_output=True, text=True, timeout=timeout,
            env={**cli_env, **(env or {})}, cwd=tmp_path,
        )

    return run
