"""Priorities under load, with real workers, Redis and an aiosmtpd server: a free slot takes high
before normal before low; a retried task keeps its priority; a worker can serve one priority."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from mailqueue.backends import queue
from mailqueue.message import EmailMessage
from mailqueue.queue.priority import list_name
from tests.fixtures.smtp import SMTPTestServer
from workers.deadletters import DeadLetters

pytestmark = pytest.mark.faults


def messages(count: int, tag: str) -> list[EmailMessage]:
    return [EmailMessage(f"{tag} {n}", "Body", "from@example.com", [f"{tag}-{n}@example.com"]) for n in range(count)]


def subjects(server: SMTPTestServer) -> list[str]:
    return [str(received.message()["Subject"]) for received in list(server.messages)]


def arrival(server: SMTPTestServer, recipient: str) -> float:
    """When the server accepted the message for ``recipient``, stamped by the server itself.

    Only the newest messages are looked at, by envelope, so that finding it costs the same
    behind 100 messages as behind 2,000 (parsing every message would be the test's own delay).
    """
    deadline = time.monotonic() + 10
    seen = 0
    while time.monotonic() < deadline:
        received = list(server.messages)
        for message in received[seen:]:
            if recipient in message.rcpt_tos:
                return message.received_at
        seen = len(received)
        time.sleep(0.01)
    raise AssertionError(f"the high-priority message to {recipient} was not delivered in 10 s")


def test_a_free_slot_takes_high_before_normal_before_low(worker_process: Any, smtp_server: SMTPTestServer) -> None:
    for priority in ("low", "normal", "high"):  # enqueued lowest first: FIFO would deliver low first
        assert queue.EmailBackend(priority=priority, batch_size=1).send_messages(messages(5, priority)) == 5
    worker_process(concurrency=1)
    smtp_server.wait_for_messages(15, timeout=30)
    order = [subject.split()[0] for subject in subjects(smtp_server)]
    assert order == ["high"] * 5 + ["normal"] * 5 + ["low"] * 5


def test_high_reaches_the_server_within_2_s_behind_a_low_backlog(
    worker_process: Any, smtp_server: SMTPTestServer, redis_client: redis.Redis, worker_settings: Any,
) -> None:
    backlog = 2000
    queue.EmailBackend(priority="low").send_messages(messages(backlog, "low"))
    worker_process(concurrency=2)
    smtp_server.wait_for_messages(100, timeout=30)  # both processes are busy with the backlog
    latencies = []
    for n in range(5):
        high = EmailMessage(f"high {n}", "Body", "from@example.com", [f"high-{n}@example.com"])
        started = time.time()
        queue.EmailBackend(priority="high").send_messages([high])
        latencies.append(arrival(smtp_server, f"high-{n}@example.com") - started)
    low_left = redis_client.llen(list_name(worker_settings["MAILQUEUE_QUEUE"], "low"))
    assert low_left > 0, "the backlog ran out before the test could prove anything; enqueue more"
    assert max(latencies) < 2.0, latencies


def test_a_retried_high_task_keeps_its_priority_for_a_worker_that_takes_only_high(
    worker_process: Any, smtp_server: SMTPTestServer,
) -> None:
    smtp_server.fail_recipient("high-0@example.com", 451, "4.2.0 Busy", times=1)
    worker_process(concurrency=1, MAILQUEUE_WORKER_PRIORITIES="high")
    [high] = messages(1, "high")
    queue.EmailBackend(priority="high").send_messages([high])
    queue.EmailBackend().send_messages(messages(1, "normal"))  # not this worker's
    report = high.delivery.get(timeout=30)
    assert report["retries"] == 1 and report["sent"] == 1
    time.sleep(1.0)
    assert subjects(smtp_server) == ["high 0"]


def test_a_requeued_dead_letter_goes_back_to_its_queue_and_priority(
    redis_client: redis.Redis, worker_settings: Any, celery_app: Any,
) -> None:
    [message] = messages(1, "low")
    from mailqueue.queue.envelope import Envelope

    payload = Envelope.from_email_message(message, max_size=10**6).to_payload()
    letters = DeadLetters(redis_client)
    letter = letters.add(task_id="t", payload=payload, failures={}, error={"code": 550}, attempts=1,
                         queue="bulk-test", priority="low")
    letters.requeue(letter.id, app=celery_app)
    assert redis_client.llen(list_name("bulk-test", "low")) == 1
    assert redis_client.llen("bulk-test") == 0
