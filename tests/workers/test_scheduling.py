"""Scheduled sends and cancelling, with real workers, Redis and an aiosmtpd server."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
import redis

from mailqueue.backends import queue
from mailqueue.cli.brokerstate import locate
from mailqueue.message import EmailMessage
from tests.fixtures.smtp import SMTPTestServer

pytestmark = pytest.mark.faults


def message(tag: str = "hello", *, in_seconds: float | None = None) -> EmailMessage:
    mail = EmailMessage(tag, "Body", "from@example.com", [f"{tag}@example.com"])
    if in_seconds is not None:
        mail.send_at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=in_seconds)
    return mail


def arrival(server: SMTPTestServer, count: int = 1, timeout: float = 20.0) -> float:
    server.wait_for_messages(count, timeout=timeout)
    return time.time()


def test_a_scheduled_message_arrives_no_earlier_than_send_at_and_within_2_s(
    worker_process: Any, smtp_server: SMTPTestServer,
) -> None:
    worker_process(concurrency=1)
    mail = message(in_seconds=3)
    queue.EmailBackend().send_messages([mail])
    assert mail.send_at is not None
    arrived = arrival(smtp_server)
    due = mail.send_at.timestamp()
    assert due <= arrived < due + 2.0, arrived - due


def test_a_scheduled_message_survives_a_worker_killed_before_it_is_due(
    worker_process: Any, smtp_server: SMTPTestServer, redis_client: redis.Redis, worker_settings: Any,
) -> None:
    first = worker_process(name="first", concurrency=1)
    mail = message(in_seconds=3)
    queue.EmailBackend().send_messages([mail])
    assert locate(redis_client, mail.delivery.task_id) == "scheduled"
    first.kill()
    time.sleep(3.5)
    assert smtp_server.messages == []
    worker_process(name="second", concurrency=1)
    arrival(smtp_server)
    assert mail.delivery.get(timeout=10)["sent"] == 1


def test_a_past_send_at_means_now(worker_process: Any, smtp_server: SMTPTestServer) -> None:
    worker_process(concurrency=1)
    started = time.time()
    queue.EmailBackend().send_messages([message(in_seconds=-3600)])
    assert arrival(smtp_server) - started < 2.0


def test_cancelling_a_scheduled_message_reports_it_cancelled_at_once_and_never_sends_it(
    worker_process: Any, smtp_server: SMTPTestServer,
) -> None:
    worker_process(concurrency=1)
    mail = message(in_seconds=1.5)
    queue.EmailBackend().send_messages([mail])
    assert mail.delivery.cancel() is True
    report = mail.delivery.get(timeout=5)
    assert report["sent"] == 0 and report["cancelled"] == 1
    assert mail.delivery.message_report()["status"] == "cancelled"
    time.sleep(3.0)
    assert smtp_server.messages == []


def test_cancelling_a_queued_message_before_any_worker_takes_it(
    worker_process: Any, smtp_server: SMTPTestServer,
) -> None:
    cancelled, kept = message("cancelled"), message("kept")
    queue.EmailBackend(batch_size=1).send_messages([cancelled, kept])
    assert cancelled.delivery.cancel() is True
    worker_process(concurrency=1)
    assert kept.delivery.get(timeout=20)["sent"] == 1
    report = cancelled.delivery.get(timeout=20)
    assert report["messages"][cancelled.delivery.message_id]["status"] == "cancelled"
    assert [str(received.message()["Subject"]) for received in smtp_server.messages] == ["kept"]


def test_cancel_after_delivery_began_is_false_and_the_message_is_sent(
    worker_process: Any, smtp_server: SMTPTestServer,
) -> None:
    smtp_server.delay_at("data", 2.0, times=1)  # the round is under way while we cancel
    worker_process(concurrency=1)
    mail = message()
    queue.EmailBackend().send_messages([mail])
    deadline = time.monotonic() + 10
    while mail.delivery.state == "PENDING" and smtp_server.connections == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)
    assert mail.delivery.cancel() is False
    assert mail.delivery.get(timeout=20)["sent"] == 1
    assert mail.delivery.cancel() is False  # finished: still False
