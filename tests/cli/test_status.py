"""``mailqueue status``: queued, deferred, finished, unknown; readable and JSON."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from mailqueue.devserver import free_port
from tests.cli.conftest import CLIWorker, Run, assert_one_line_error


def send(mailqueue: Run, *recipients: str) -> str:
    args = [part for address in recipients for part in ("--to", address)]
    result = mailqueue("send", *args, "--subject", "Status", "--body", "hi")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_task_without_worker_is_queued(mailqueue: Run, fleet_env: dict[str, str]) -> None:
    task_id = send(mailqueue, "bob@example.com")
    result = mailqueue("status", task_id)
    assert (result.returncode, result.stdout.strip()) == (0, f"Task {task_id}: queued, waiting for a worker")
    assert json.loads(mailqueue("status", task_id, "--json").stdout)["location"] == "queued"


def test_report_lists_every_recipient_with_the_servers_answer(
    mailqueue: Run, start_worker: Callable[..., CLIWorker], smtp_server: Any
) -> None:
    smtp_server.fail_recipient("gone@example.com", 550, "5.1.1 No such user")
    start_worker()
    task_id = send(mailqueue, "bob@example.com", "gone@example.com")
    result = mailqueue("status", task_id, "--wait", "--timeout", "20")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Task {task_id}: finished with failures"
    assert "1 message: 0 sent, 1 failed" in lines[1]
    assert any(line.split()[:3] == ["accepted", "bob@example.com", "250"] for line in lines)
    assert any(line.split()[:3] == ["failed", "gone@example.com", "550"] and "No such user" in line
               for line in lines)
    assert "(dead letter " in result.stdout


def test_deferred_task_shows_its_next_attempt(
    mailqueue: Run, start_worker: Callable[..., CLIWorker], smtp_server: Any, fleet_env: dict[str, str]
) -> None:
    fleet_env.update(MAILQUEUE_RETRY_MIN_DELAY="60", MAILQUEUE_RETRY_MAX_DELAY="60")
    smtp_server.fail_recipient("busy@example.com", 451, "4.2.0 Busy", times=1)
    start_worker()
    task_id = send(mailqueue, "busy@example.com")
    for _ in range(100):
        status = json.loads(mailqueue("status", task_id, "--json").stdout)
        if status["state"] == "DEFERRED":
            break
    assert status["state"] == "DEFERRED"
    text = mailqueue("status", task_id).stdout
    assert f"Task {task_id}: deferred: waiting for its next retry" in text
    assert "next attempt" in text
    assert "pending   busy@example.com  451 4.2.0 Busy" in text


def test_wait_json_returns_the_final_report(
    mailqueue: Run, start_worker: Callable[..., CLIWorker], smtp_server: Any
) -> None:
    smtp_server.fail_recipient("later@example.com", 451, "4.2.0 Busy", times=1)
    start_worker()
    task_id = send(mailqueue, "later@example.com")
    status = json.loads(mailqueue("status", task_id, "--wait", "--timeout", "20", "--json").stdout)
    assert status["state"] == "SUCCESS"
    assert (status["report"]["sent"], status["report"]["retries"]) == (1, 1)


def test_unknown_task_id_is_one_line(mailqueue: Run, fleet_env: dict[str, str]) -> None:
    unknown = str(uuid.uuid4())
    line = assert_one_line_error(mailqueue("status", unknown))
    assert f"No delivery task {unknown} is known" in line


def test_wait_timeout_is_one_line(mailqueue: Run, fleet_env: dict[str, str]) -> None:
    task_id = send(mailqueue, "bob@example.com")
    line = assert_one_line_error(mailqueue("status", task_id, "--wait", "--timeout", "0.5"))
    assert f"No final delivery report for task {task_id} after 0.5 seconds" in line


def test_unreachable_broker_is_one_line(mailqueue: Run) -> None:
    line = assert_one_line_error(mailqueue(
        "status", str(uuid.uuid4()), env={"MAILQUEUE_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}))
    assert "127.0.0.1" in line
