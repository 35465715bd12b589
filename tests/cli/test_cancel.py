"""``mailqueue cancel`` and ``send --at``, run as an operator runs them."""

from __future__ import annotations

import datetime
import json
from typing import Any

from tests.cli.conftest import Run, assert_one_line_error


def test_send_at_schedules_status_shows_it_and_cancel_cancels(mailqueue: Run, fleet_env: dict[str, str]) -> None:
    later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).isoformat()
    sent = mailqueue("send", "--to", "ann@example.com", "--subject", "Later", "--at", later, "--priority", "high")
    assert sent.returncode == 0, sent.stderr
    task_id = sent.stdout.strip()
    status = mailqueue("status", task_id)
    assert status.stdout.startswith(f"Task {task_id}: scheduled for "), status.stdout
    stats = json.loads(mailqueue("stats", "--json", "--no-workers").stdout)
    assert stats["scheduled"]["tasks"] == 1
    assert set(stats["queued_by_priority"]) == {"high", "normal", "low"}
    assert mailqueue("cancel", task_id).stdout.strip() == "True"
    assert "cancelled, never sent" in mailqueue("status", task_id).stdout
    assert json.loads(mailqueue("stats", "--json", "--no-workers").stdout)["scheduled"]["tasks"] == 0


def test_a_naive_at_is_a_usage_error(mailqueue: Run, fleet_env: dict[str, str]) -> None:
    result = mailqueue("send", "--to", "ann@example.com", "--at", "2030-01-01T09:00")
    assert "has no UTC offset" in assert_one_line_error(result, status=2)


def test_cancel_of_an_unknown_task_fails_in_one_line(mailqueue: Run, fleet_env: dict[str, str]) -> None:
    assert "No delivery task" in assert_one_line_error(mailqueue("cancel", "no-such-task"))


def test_cancel_of_a_delivered_task_prints_false(mailqueue: Run, start_worker: Any, smtp_server: Any) -> None:
    start_worker()
    task_id = mailqueue("send", "--to", "ann@example.com", "--subject", "Now").stdout.strip()
    assert mailqueue("status", task_id, "--wait", "--timeout", "20").returncode == 0
    assert json.loads(mailqueue("cancel", task_id, "--json").stdout) == {"task_id": task_id, "cancelled": False}
    assert mailqueue("cancel", task_id).stdout.strip() == "False"
