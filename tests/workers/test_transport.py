"""Garbage on the queue list, and a full Redis: the worker lives and nothing is lost (issue 10, rows 1 and 4).

Real parts: ``celery -A workers worker`` subprocesses, a real Redis (a private redis-server
with a small ``maxmemory`` and ``noeviction`` for the full one), and an aiosmtpd server that
counts what it accepts.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from celery import Celery

from mailqueue.conf import override_settings, settings
from mailqueue.exceptions import BrokerFull, BrokerUnavailable, ImproperlyConfigured
from mailqueue.queue.envelope import DELIVER_TASK
from mailqueue.queue.producer import close_publishers, get_publisher
from tests.fixtures.celery import delivered_pairs, make_payload, send_batch
from tests.fixtures.smtp import SMTPTestServer
from workers.app import check_configuration
from workers.garbage import moved_aside
from workers.quarantine import Quarantine

pytestmark = pytest.mark.faults

GARBAGE = [
    b"not json",
    b"\xff\xfe\x00 binary \x80",
    b"42",
    b'["a", "list"]',
    b'{"properties": 1}',
    b'{"body": "", "properties": {"delivery_tag": "t1"}}',  # no delivery_info: cannot be recorded
    json.dumps({  # a kombu envelope whose Celery headers lack the task id
        "body": "W1tdLCB7fSwge31d", "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {"task": DELIVER_TASK}, "properties": {
            "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
            "delivery_info": {"exchange": "", "routing_key": "x"}}}).encode(),
    json.dumps({  # a whole Celery task message whose JSON body is not JSON
        "body": "bm90IGpzb24=", "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {"task": DELIVER_TASK, "id": "b0d7", "root_id": None, "parent_id": None, "group": None,
                    "retries": 0, "timelimit": [None, None], "eta": None, "expires": None, "lang": "py"},
        "properties": {"body_encoding": "base64", "delivery_tag": str(uuid.uuid4()), "correlation_id": "b0d7",
                       "delivery_info": {"exchange": "", "routing_key": "x"}}}).encode(),
]


def wait_until(condition: Callable[[], Any], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_garbage_and_refused_messages_are_moved_aside_and_the_worker_lives(
    worker_process: Any, celery_app: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis,
) -> None:
    worker = worker_process(concurrency=1)
    queue = settings.MAILQUEUE_QUEUE
    for entry in GARBAGE:
        redis_client.lpush(queue, entry)
    # Well-formed kombu messages that Celery refuses: pickle content, and a task name no worker has.
    celery_app.send_task(DELIVER_TASK, args=[[make_payload()]], queue=queue, serializer="pickle")
    celery_app.send_task("evil.unknown", args=[1], queue=queue)
    recipients = [f"after{number}@example.com" for number in range(3)]
    for recipient in recipients:
        send_batch(celery_app, [make_payload(to=[recipient])])

    smtp_server.wait_for_messages(3, timeout=20)
    refused = len(GARBAGE) + 2
    wait_until(lambda: Quarantine(redis_client).count() >= refused, timeout=10, what="entries moved aside")
    time.sleep(0.5)

    assert worker.process.poll() is None, worker.log
    pairs = delivered_pairs(smtp_server)
    assert sorted(recipient for _, recipient in pairs) == recipients
    assert set(pairs.values()) == {1}
    entries = moved_aside(redis_client)
    assert len(entries) == refused
    kept = {entry.payloads["raw"] for entry in entries if entry.payloads["raw_encoding"] == "utf-8"}
    assert {"not json", "42", '["a", "list"]'} <= kept
    reasons = " | ".join(entry.reason for entry in entries)
    assert "application/x-python-serialize" in reasons and "'evil.unknown'" in reasons, reasons
    assert all(entry.reason.startswith("undecodable: ") for entry in entries)
    assert redis_client.llen(queue) == 0 and redis_client.hlen("unacked") == 0
    assert worker.log.count("Moved aside an entry") == refused, worker.log
    assert f"{refused} moved aside by this worker so far" in worker.log


# --- a full Redis ------------------------------------------------------------------------------

MAXMEMORY = 8 * 1024 * 1024


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def fill_to(client: redis.Redis, fraction: float, *, key: str = "filler") -> None:
    """Grow a filler string until used_memory reaches ``fraction`` of maxmemory (or Redis refuses)."""
    field = 0
    for chunk in (32 * 1024, 256):  # big steps, then small ones: Redis refuses a write that would not fit
        while used_memory(client) < MAXMEMORY * fraction:
            try:  # one hash of small values: no string reallocation overshoots the target
                client.hset(key, str(field), b"x" * chunk)
            except redis.exceptions.OutOfMemoryError:
                break
            field += 1


@pytest.fixture
def full_redis(own_redis: Any, worker_settings: Any) -> Any:
    server = own_redis(extra=["--maxmemory", str(MAXMEMORY), "--maxmemory-policy", "noeviction"])
    with override_settings(MAILQUEUE_BROKER_URL=server.url, MAILQUEUE_RESULT_BACKEND=server.url):
        close_publishers()
        try:
            yield server
        finally:
            close_publishers()


def publish(recipient: str) -> None:
    get_publisher().publish([make_payload(to=[recipient])], task_id=str(uuid.uuid4()),
                            queue=settings.MAILQUEUE_QUEUE)


def test_producer_refuses_new_mail_above_the_mark_with_a_clear_error(full_redis: Any) -> None:
    client = full_redis.client()
    publish("before@example.com")
    fill_to(client, 0.92)
    time.sleep(1.1)  # the producer reads INFO memory at most once a second
    with pytest.raises(BrokerFull) as refused:
        publish("refused@example.com")
    assert isinstance(refused.value, BrokerUnavailable)
    message = str(refused.value)
    assert f"127.0.0.1:{full_redis.port}" in message and f"of maxmemory {MAXMEMORY}" in message, message
    assert "the mark is 90%" in message and refused.value.maximum == MAXMEMORY
    assert client.llen(settings.MAILQUEUE_QUEUE) == 1
    client.delete("filler")
    time.sleep(1.1)
    publish("after@example.com")
    assert client.llen(settings.MAILQUEUE_QUEUE) == 2


@pytest.mark.parametrize("fraction", [0.9, 1.0], ids=["marks", "no-mark-held-in-worker"])
def test_a_full_redis_loses_nothing_and_the_worker_drains_it_once_memory_frees(
    full_redis: Any, worker_process: Any, smtp_server: SMTPTestServer, fraction: float,
) -> None:
    client = full_redis.client()
    recipients = [f"queued{number}@example.com" for number in range(20)]
    for recipient in recipients:
        publish(recipient)
    fill_to(client, 1.01)  # past maxmemory: Redis refuses every write that needs memory
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        client.hset("probe", "x", "y" * 4096)

    # The high-water mark off (1.0), the worker pops a task it cannot record and must hold it.
    worker = worker_process(concurrency=2, MAILQUEUE_BROKER_URL=full_redis.url,
                            MAILQUEUE_RESULT_BACKEND=full_redis.url,
                            MAILQUEUE_BROKER_MAX_MEMORY_FRACTION=fraction)
    time.sleep(3)
    assert worker.process.poll() is None, worker.log
    assert len(smtp_server.messages) == 0
    assert "nearly full" in worker.log or "refused to record a task" in worker.log, worker.log

    client.delete("filler")
    smtp_server.wait_for_messages(len(recipients), timeout=20)
    wait_until(lambda: client.llen(settings.MAILQUEUE_QUEUE) == 0 and client.hlen("unacked") == 0,
               timeout=10, what="the queue to drain")
    time.sleep(0.5)
    assert worker.process.poll() is None, worker.log
    pairs = delivered_pairs(smtp_server)
    assert sorted(recipient for _, recipient in pairs) == sorted(recipients)
    assert set(pairs.values()) == {1}


def test_producers_filling_redis_under_running_workers_lose_nothing(
    full_redis: Any, worker_process: Any, smtp_server: SMTPTestServer,
) -> None:
    """The issue's case: producers keep sending while workers drain, until Redis is full."""
    client = full_redis.client()
    worker = worker_process(concurrency=2, MAILQUEUE_BROKER_URL=full_redis.url,
                            MAILQUEUE_RESULT_BACKEND=full_redis.url)
    smtp_server.delay_at("data", 0.05)  # workers slower than producers: the queue grows
    fill_to(client, 0.75)
    accepted, refused = [], []
    deadline = time.monotonic() + 6
    number = 0
    while time.monotonic() < deadline:
        recipient = f"load{number}@example.com"
        number += 1
        try:
            get_publisher().publish([make_payload(to=[recipient], body="x" * 20_000)], task_id=str(uuid.uuid4()),
                                    queue=settings.MAILQUEUE_QUEUE)
        except BrokerUnavailable as error:
            refused.append(error)
            time.sleep(0.005)
        else:
            accepted.append(recipient)
    assert worker.process.poll() is None, worker.log
    assert refused and all(isinstance(error, BrokerFull) for error in refused), refused[:1]

    client.delete("filler")
    smtp_server.delay_at("data", 0)
    smtp_server.wait_for_messages(len(accepted), timeout=25)
    wait_until(lambda: client.llen(settings.MAILQUEUE_QUEUE) == 0 and client.hlen("unacked") == 0,
               timeout=15, what="the queue to drain")
    time.sleep(1)
    assert worker.process.poll() is None, worker.log
    pairs = delivered_pairs(smtp_server)
    assert sorted(recipient for _, recipient in pairs) == sorted(accepted)
    assert set(pairs.values()) == {1}, [pair for pair, count in pairs.items() if count > 1]


def test_a_worker_with_a_bad_memory_fraction_refuses_to_start(celery_app: Celery) -> None:
    with override_settings(MAILQUEUE_BROKER_MAX_MEMORY_FRACTION=1.5):
        with pytest.raises(ImproperlyConfigured, match="MAILQUEUE_BROKER_MAX_MEMORY_FRACTION"):
            check_configuration(celery_app)


def task_with_body(body: object) -> bytes:
    """A whole Celery task message (protocol 2) for mailqueue.deliver, carrying ``body`` as its JSON body."""
    import base64

    task_id = str(uuid.uuid4())
    return json.dumps({
        "body": base64.b64encode(json.dumps(body).encode()).decode(), "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"task": DELIVER_TASK, "id": task_id, "root_id": None, "parent_id": None, "group": None,
                    "retries": 0, "timelimit": [None, None], "eta": None, "expires": None, "lang": "py",
                    "argsrepr": "", "kwargsrepr": ""},
        "properties": {"body_encoding": "base64", "delivery_tag": str(uuid.uuid4()), "correlation_id": task_id,
                       "delivery_info": {"exchange": "", "routing_key": "x"}}}).encode()


def test_task_bodies_of_the_wrong_shape_are_kept_and_the_worker_lives(
    worker_process: Any, celery_app: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis,
) -> None:
    """Shapes Celery itself chokes on, before our task runs: not [args, kwargs, embed], args not a
    list, kwargs not a dict. Each is kept (quarantine or dead letters), none kills the worker."""
    from workers.deadletters import DeadLetters

    worker = worker_process(concurrency=1)
    queue = settings.MAILQUEUE_QUEUE
    bodies: list[object] = [{"a": 1}, [5, {}, {}], [[[make_payload()]], 7, {}], "just a string"]
    for body in bodies:
        redis_client.lpush(queue, task_with_body(body))
    send_batch(celery_app, [make_payload(to=["after@example.com"])])

    smtp_server.wait_for_messages(1, timeout=20)
    kept = lambda: Quarantine(redis_client).count() + DeadLetters(redis_client).count()  # noqa: E731
    wait_until(lambda: kept() >= len(bodies), timeout=10, what="every bad task kept")
    time.sleep(0.3)

    assert worker.process.poll() is None, worker.log
    assert kept() == len(bodies)
    assert [message.rcpt_tos for message in smtp_server.messages] == [["after@example.com"]]
    assert redis_client.llen(queue) == 0 and redis_client.hlen("unacked") == 0
