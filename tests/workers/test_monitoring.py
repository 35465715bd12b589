"""What monitoring sees (Flower reads Celery's events): a round that dead-letters mail is failed."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from mailqueue.queue.delivery import Delivery
from tests.fixtures.celery import PROJECT_ROOT, LoggedProcess, make_payload, send_batch
from tests.fixtures.smtp import SMTPTestServer
from workers.tasks import RESULT_REPR_MAXSIZE


class EventMonitor(threading.Thread):
    """What Flower does: a plain Celery app on the broker, receiving the workers' events."""

    def __init__(self, broker_url: str) -> None:
        super().__init__(daemon=True)
        self.app = Celery("monitor", broker=broker_url, set_as_current=False)
        self.events: list[dict[str, Any]] = []
        self.receiver: Any = None
        self.listening = threading.Event()

    def run(self) -> None:
        with self.app.connection_for_read() as connection:
            self.receiver = self.app.events.Receiver(connection, handlers={"*": self.events.append})
            self.listening.set()
            self.receiver.capture(limit=None, timeout=None, wakeup=False)

    def states(self) -> dict[str, str]:
        finished = ("task-failed", "task-succeeded")
        return {event["uuid"]: event["type"] for event in list(self.events) if event.get("type") in finished}

    def stop(self) -> None:
        if self.receiver is not None:
            self.receiver.should_stop = True
        self.join(timeout=5)


@pytest.mark.timeout(60)
def test_a_round_that_dead_letters_mail_is_failed_in_events_and_still_reports(
    celery_app: Celery, smtp_server: SMTPTestServer, worker_settings: Any, tmp_path: Path
) -> None:
    smtp_server.fail_recipient("gone@example.com", 550, "5.1.1 No such user")
    command = [sys.executable, "-m", "celery", "-A", "workers", "worker", "-E", "--pool", "solo", "--loglevel=INFO",
               "--without-mingle", "--without-gossip"]  # -E: task events, what Flower reads
    worker = LoggedProcess(command, env=worker_settings.env(), cwd=PROJECT_ROOT, log_path=tmp_path / "w.log")
    worker.wait_ready()
    monitor = EventMonitor(celery_app.conf.broker_url)
    monitor.start()
    assert monitor.listening.wait(10)
    time.sleep(0.5)  # subscribed
    try:
        good = send_batch(celery_app, [make_payload(to=["ok@example.com"])])
        bad = send_batch(celery_app, [make_payload(to=["gone@example.com"])])
        good_report, bad_report = Delivery(good.id).get(timeout=20), Delivery(bad.id).get(timeout=20)
        deadline = time.monotonic() + 10
        while not {good.id, bad.id} <= set(monitor.states()) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        monitor.stop()
        worker.kill()

    states = monitor.states()
    assert (states.get(good.id), states.get(bad.id)) == ("task-succeeded", "task-failed"), monitor.events
    assert (bad.state, good.state) == ("FAILURE", "SUCCESS")
    assert (good_report["sent"], bad_report["failed"]) == (1, 1)  # the full report, failed or not
    assert bad_report["messages"][next(iter(bad_report["messages"]))]["dead_letter"]
    (succeeded,) = [event for event in monitor.events if event.get("type") == "task-succeeded"]
    shown = succeeded["result"]  # what Flower shows: the report's counts come first, within the repr's size
    assert f"'task_id': '{good.id}', 'sent': 1, 'failed': 0" in shown
    assert len(shown) <= RESULT_REPR_MAXSIZE + 64
