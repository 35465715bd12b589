"""``mailqueue worker``: a real worker of the fleet, Celery options passed through."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailqueue.devserver import free_port
from tests.cli.conftest import CLIWorker, Run, assert_one_line_error


def test_worker_delivers_what_send_enqueued(
    mailqueue: Run, start_worker: Callable[..., CLIWorker], smtp_server: Any
) -> None:
    worker = start_worker()
    task_id = mailqueue("send", "--to", "bob@example.com", "--subject", "Via the fleet", "--body", "hi").stdout.strip()
    result = mailqueue("status", task_id, "--wait", "--timeout", "20", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["report"]["sent"] == 1
    assert [message.message()["Subject"] for message in smtp_server.messages] == ["Via the fleet"]
    assert f"{worker.name}@" in worker.log  # the --hostname option reached Celery


def test_celery_options_pass_through(start_worker: Callable[..., CLIWorker]) -> None:
    worker = start_worker("--queues", "mailqueue,other")
    assert ".> other" in worker.log and ".> mailqueue" in worker.log


def test_worker_uses_the_embedded_broker_when_none_is_configured(
    mailqueue: Run, start_worker: Callable[..., CLIWorker], fleet_env: dict[str, str], tmp_path: Path,
    smtp_server: Any,
) -> None:
    del fleet_env["MAILQUEUE_BROKER_URL"]
    try:
        start_worker()
        task_id = mailqueue("send", "--to", "bob@example.com", "--body", "embedded").stdout.strip()
        result = mailqueue("status", task_id, "--wait", "--timeout", "20")
        assert result.returncode == 0, result.stderr
        assert "delivered" in result.stdout
        assert (tmp_path / "var" / "appendonly.aof").exists()
    finally:
        mailqueue("embedded", "stop")
    assert len(smtp_server.messages) == 1


def test_celery_help_shows_celerys_worker_options(mailqueue: Run) -> None:
    result = mailqueue("worker", "--celery-help")
    assert result.returncode == 0
    assert "--concurrency" in result.stdout


def test_unreachable_broker_is_one_line_and_no_worker_starts(mailqueue: Run) -> None:
    port = free_port()
    line = assert_one_line_error(mailqueue("worker", env={"MAILQUEUE_BROKER_URL": f"redis://:pw@127.0.0.1:{port}/0"}))
    assert f"cannot reach the broker at redis://:****@127.0.0.1:{port}/0" in line
    assert "the worker was not started" in line
