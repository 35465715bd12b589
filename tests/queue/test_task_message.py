"""The task message the producer writes itself is the one Celery and kombu would write.

Both are put on a real Redis, read back raw and compared field by field; only the fields
that are fresh on every send (kombu's delivery tag) may differ.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery

from mailqueue.queue import task_message
from mailqueue.queue.envelope import DELIVER_TASK, summarize
from mailqueue.queue.priority import PRIORITIES, list_name
from mailqueue.queue.producer import close_publishers, get_publisher

PAYLOADS = [{"v": 1, "message_id": f"<{n}@example.com>", "sender": "from@example.com",
             "recipients": ["to@example.com", "zoé@example.com"], "message": "U3ViamVjdDogaGkNCg0KYm9keQ0K",
             "enqueued_at": 1796303629.4359052} for n in range(3)]


@pytest.fixture
def celery_producer(redis_url: str) -> Iterator[Celery]:
    """Stock Celery, configured as the workers read tasks: JSON, body not base64'd again."""
    app = Celery("reference-producer", set_as_current=False, broker=redis_url, backend=None)
    app.conf.update(task_serializer="json", accept_content=["json"],
                    broker_transport_options={"body_encoding": "utf-8"})
    yield app
    app.close()


def stored(client: redis.Redis, key: str) -> dict[str, Any]:
    (raw,) = client.lrange(key, 0, -1)
    message: dict[str, Any] = json.loads(raw)
    message["properties"].pop("delivery_tag")  # a fresh uuid on every send
    return message


@pytest.mark.parametrize("priority", list(PRIORITIES))
def test_our_task_message_is_the_one_celery_writes(priority: str, celery_producer: Celery,
                                                    redis_client: redis.Redis) -> None:
    task_id, signature = str(uuid.uuid4()), {"mailqueue_signature": "mq1:0123"}
    amqp = celery_producer.amqp  # what Celery's send_task does, minus its result backend and retries
    message = amqp.create_task_message(task_id, DELIVER_TASK, [PAYLOADS], argsrepr=summarize(PAYLOADS),
                                       kwargsrepr="{}")
    with celery_producer.producer_pool.acquire(block=True) as producer:
        amqp.send_task_message(producer, DELIVER_TASK, message, queue="by-celery", declare=[], retry=False,
                               headers=signature, priority=PRIORITIES[priority])
    theirs = stored(redis_client, list_name("by-celery", priority))
    ours = json.loads(task_message.encode(PAYLOADS, task_id=task_id, queue="by-celery",
                                          priority_step=PRIORITIES[priority], origin=theirs["headers"]["origin"],
                                          extra_headers=signature))
    assert ours["properties"].pop("delivery_tag")
    assert ours == theirs
    assert json.loads(ours["body"]) == [[PAYLOADS], {}, {"callbacks": None, "errbacks": None, "chain": None,
                                                         "chord": None}]


def test_the_publisher_writes_to_the_list_of_the_priority(redis_url: str, redis_client: redis.Redis) -> None:
    close_publishers()
    try:
        for priority in PRIORITIES:
            get_publisher(redis_url).publish(PAYLOADS, task_id=str(uuid.uuid4()), queue="q", priority=priority)
            message = stored(redis_client, list_name("q", priority))
            assert message["properties"]["priority"] == PRIORITIES[priority]
            assert message["properties"]["delivery_info"] == {"exchange": "", "routing_key": "q"}
    finally:
        close_publishers()


def test_each_message_has_its_own_delivery_tag() -> None:
    first, second = (json.loads(task_message.encode(PAYLOADS, task_id="t", queue="q", priority_step=0, origin="o"))
                     for _ in range(2))
    assert first["properties"]["delivery_tag"] != second["properties"]["delivery_tag"]
