"""``mailqueue stats``: queue depth, in flight, deferred, dead letters, totals, workers online."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis

from mailqueue.devserver import free_port
from tests.cli.conftest import CLIWorker, Run, assert_one_line_error
from workers.connection_slots import ConnectionSlots


def stats(mailqueue: Run, *options: str) -> dict[str, Any]:
    result = mailqueue("stats", "--json", *options)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def send(mailqueue: Run, *recipients: str) -> str:
    args = [part for address in recipients for part in ("--to", address)]
    return mailqueue("send", *args, "--body", "hi").stdout.strip()


def test_an_idle_fleet_is_all_zeros(mailqueue: Run, fleet_env: dict[str, str]) -> None:
    numbers = stats(mailqueue, "--no-workers")
    assert (numbers["queued"], numbers["in_flight"], numbers["dead_letters"]) == (0, 0, 0)
    assert numbers["deferred"] == {"tasks": 0, "messages": 0, "next_due": None}
    assert (numbers["delivered"], numbers["failed"], numbers["retries"]) == (0, 0, 0)
    assert numbers["workers"] is None


def test_queue_depth_counts_waiting_tasks(mailqueue: Run, fleet_env: dict[str, str]) -> None:
    for _ in range(3):
        send(mailqueue, "bob@example.com")
    assert stats(mailqueue, "--no-workers")["queued"] == 3


def test_totals_dead_letters_and_workers_after_delivery(
    mailqueue: Run, start_worker: Callable[..., CLIWorker], smtp_server: Any
) -> None:
    smtp_server.fail_recipient("gone@example.com", 550, "5.1.1 No such user")
    smtp_server.fail_recipient("later@example.com", 451, "4.2.0 Busy", times=1)
    worker = start_worker()
    tasks = [send(mailqueue, "bob@example.com"), send(mailqueue, "gone@example.com"),
             send(mailqueue, "later@example.com")]
    for task_id in tasks:
        assert mailqueue("status", task_id, "--wait", "--timeout", "20").returncode == 0
    numbers = stats(mailqueue, "--timeout", "2")
    assert (numbers["delivered"], numbers["failed"], numbers["retries"]) == (2, 1, 1)
    assert numbers["dead_letters"] == 1
    assert (numbers["queued"], numbers["in_flight"]) == (0, 0)
    assert [name.split("@")[0] for name in numbers["workers"]] == [worker.name]


def test_deferred_retries_are_counted_with_their_messages(
    mailqueue: Run, start_worker: Callable[..., CLIWorker], smtp_server: Any, fleet_env: dict[str, str]
) -> None:
    fleet_env.update(MAILQUEUE_RETRY_MIN_DELAY="60", MAILQUEUE_RETRY_MAX_DELAY="60")
    smtp_server.fail_recipient("busy@example.com", 451, "4.2.0 Busy")
    start_worker()
    task_id = send(mailqueue, "busy@example.com")
    for _ in range(100):
        if json.loads(mailqueue("status", task_id, "--json").stdout)["state"] == "DEFERRED":
            break
    numbers = stats(mailqueue, "--no-workers")
    assert (numbers["deferred"]["tasks"], numbers["deferred"]["messages"]) == (1, 1)
    assert numbers["deferred"]["next_due"] is not None


def test_text_output_names_each_figure(mailqueue: Run, fleet_env: dict[str, str]) -> None:
    result = mailqueue("stats", "--timeout", "0.2")
    assert result.returncode == 0, result.stderr
    labels = [line.split(":")[0] for line in result.stdout.splitlines()]
    assert labels == ["Broker", "Queued", "Scheduled", "In flight", "Deferred", "Dead letters", "Delivered", "Failed",
                      "Retries", "Workers"]
    assert "Workers:      0 online" in result.stdout


def test_connections_to_a_relay_with_a_fleet_wide_limit_are_shown(
    mailqueue: Run, fleet_env: dict[str, str], redis_url: str
) -> None:
    """A lease held by a worker's connection (workers.connection_slots), as stats reads it."""
    assert stats(mailqueue, "--no-workers")["connections"] == {}  # no limit: nothing to show
    fleet_env["MAILQUEUE_MAX_CONNECTIONS"] = "4"
    ConnectionSlots(redis.Redis.from_url(redis_url), "default", 4).take("a-worker's-connection")
    assert stats(mailqueue, "--no-workers")["connections"] == {"default": {"open": 1, "limit": 4}}
    text = mailqueue("stats", "--no-workers").stdout
    assert "Connections:  relay 'default' 1 of 4 open" in text
    fleet_env["MAILQUEUE_MAX_CONNECTIONS"] = "0"  # a worker would refuse to start; stats still shows the rest
    numbers = stats(mailqueue, "--no-workers")
    assert "MAILQUEUE_MAX_CONNECTIONS must be at least 1" in numbers["connections"]["error"]
    assert numbers["queued"] == 0


def test_unreachable_broker_is_one_line(mailqueue: Run) -> None:
    port = free_port()
    line = assert_one_line_error(mailqueue("stats", env={"MAILQUEUE_BROKER_URL": f"redis://127.0.0.1:{port}/0"}))
    assert line.startswith("mailqueue: error: cannot reach Redis")
    assert str(port) in line


def test_non_redis_broker_is_refused_in_one_line(mailqueue: Run) -> None:
    line = assert_one_line_error(mailqueue("stats", env={"MAILQUEUE_BROKER_URL": "amqp://guest:secret@rabbit//"}))
    assert "reads the broker's Redis" in line
    assert "secret" not in line


def test_json_with_the_broker_down_is_json_with_an_error(mailqueue: Run) -> None:
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    result = mailqueue("stats", "--json", env={"MAILQUEUE_BROKER_URL": url})
    assert result.returncode == 1
    stats = json.loads(result.stdout)
    assert "cannot reach Redis" in stats["error"]
    assert stats["broker"].startswith("redis://:****@") and "secret" not in result.stdout
