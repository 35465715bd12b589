"""Run the installed ``mailqueue`` console script as a subprocess, the way an operator does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.celery import FAST_RETRIES as WORKER_FAST_RETRIES
from tests.fixtures.celery import LoggedProcess

MAILQUEUE = str(Path(sys.executable).with_name("mailqueue"))
Run = Callable[..., subprocess.CompletedProcess[str]]

# Settings a developer may have exported; the commands under test must not see them.
_CLEARED_PREFIXES = ("MAILQUEUE_", "EMAIL_", "DEFAULT_FROM_EMAIL", "SERVER_EMAIL", "MAILERS", "ADMINS", "MANAGERS")


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


# The worker fixtures' fast retries, as environment values, and fewer of them.
FAST_RETRIES = {name: str(value) for name, value in WORKER_FAST_RETRIES.items()} | {"MAILQUEUE_MAX_RETRIES": "3"}


@pytest.fixture
def fleet_env(cli_env: dict[str, str], redis_url: str, smtp_server: Any) -> dict[str, str]:
    """The commands' environment for a fleet on the test Redis delivering to ``smtp_server``.

    Returned dict is the very one ``mailqueue`` uses, so a test may change it.
    """
    cli_env.update(
        MAILQUEUE_BROKER_URL=redis_url,
        EMAIL_BACKEND="mailqueue.backends.queue.EmailBackend",
        EMAIL_HOST=smtp_server.host,
        EMAIL_PORT=str(smtp_server.port),
        EMAIL_TIMEOUT="5",
        **FAST_RETRIES,
    )
    return cli_env


class CLIWorker(LoggedProcess):
    """``mailqueue worker`` (threads pool) in its own process group, logging to a file."""

    what = "mailqueue worker"

    def __init__(self, env: dict[str, str], cwd: Path, name: str, *options: str) -> None:
        self.name = name
        command = [MAILQUEUE, "worker", "--pool", "threads", "--concurrency", "4", "--loglevel", "INFO",
                   "--hostname", f"{name}@%h", "--without-mingle", "--without-gossip", *options]
        super().__init__(command, env=env, cwd=cwd, log_path=cwd / f"{name}.log")


@pytest.fixture
def start_worker(fleet_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., CLIWorker]]:
    """``start_worker(*celery_options)``: a ready ``mailqueue worker``; all are killed at the end."""
    started: list[CLIWorker] = []

    def start(*options: str, env: dict[str, str] | None = None) -> CLIWorker:
        worker = CLIWorker(env or fleet_env, tmp_path, f"cli{len(started) + 1}", *options)
        started.append(worker)
        return worker.wait_ready()

    try:
        yield start
    finally:
        for worker in started:
            worker.kill()
