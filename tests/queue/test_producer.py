"""The pooled publisher: one LPUSH per task on a real Redis, and a fast, clear failure."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from mailqueue.conf import override_settings
from mailqueue.exceptions import BrokerUnavailable
from mailqueue.queue.envelope import DELIVER_TASK
from mailqueue.queue.producer import close_publishers, get_publisher
from tests.fixtures.redis import free_port
from tests.queue_inspection import queued_tasks, start_redis_on, stop_redis

CLIENT_NAME = f"mailqueue-producer-{os.getpid()}"


@pytest.fixture(autouse=True)
def fresh_publishers() -> Iterator[None]:
    close_publishers()
    yield
    close_publishers()


def payload(n: int = 0) -> dict[str, Any]:
    return {"v": 1, "message_id": f"<{n}@example.com>", "sender": "from@example.com",
            "recipients": ["to@example.com"], "message": "U3ViamVjdDogaGkNCg0KYm9keQ0K", "enqueued_at": 1.0}


def new_task_id() -> str:
    return str(uuid.uuid4())


def producer_connections(client: redis.Redis) -> int:
    return sum(1 for entry in client.client_list() if entry.get("name") == CLIENT_NAME)


def test_publish_puts_one_task_on_the_list_named_after_the_queue(redis_url: str, redis_client: redis.Redis) -> None:
    task_id = new_task_id()
    get_publisher(redis_url).publish([payload(1), payload(2)], task_id=task_id, queue="outgoing")
    (task,) = queued_tasks(redis_client, "outgoing")
    assert task.headers["task"] == DELIVER_TASK
    assert task.headers["id"] == task_id
    assert task.args == [[payload(1), payload(2)]]
    assert task.properties["delivery_info"]["routing_key"] == "outgoing"


def test_task_is_json_and_its_body_is_not_encoded_twice(redis_url: str, redis_client: redis.Redis) -> None:
    get_publisher(redis_url).publish([payload()], task_id=new_task_id(), queue="mailqueue")
    envelope = json.loads(redis_client.lindex("mailqueue", 0))  # type: ignore[arg-type]
    assert envelope["content-type"] == "application/json"
    assert envelope["properties"]["body_encoding"] == "utf-8"
    assert json.loads(envelope["body"])[0] == [[payload()]]


def test_tasks_are_consumed_in_publishing_order(redis_url: str, redis_client: redis.Redis) -> None:
    ids = [new_task_id() for _ in range(3)]
    for task_id in ids:
        get_publisher(redis_url).publish([payload()], task_id=task_id, queue="mailqueue")
    assert [task.headers["id"] for task in queued_tasks(redis_client)] == ids


def test_publish_touches_no_result_backend(redis_url: str, redis_client: redis.Redis) -> None:
    task_id = new_task_id()
    get_publisher(redis_url).publish([payload()], task_id=task_id, queue="mailqueue")
    assert redis_client.keys("*") == [b"mailqueue"]  # no result key, no queue binding
    assert redis_client.pubsub_numsub(f"celery-task-meta-{task_id}") == [(f"celery-task-meta-{task_id}".encode(), 0)]


def test_task_header_summarises_the_batch_instead_of_repeating_it(redis_url: str, redis_client: redis.Redis) -> None:
    payloads = [payload(n) for n in range(50)]
    get_publisher(redis_url).publish(payloads, task_id=new_task_id(), queue="mailqueue")
    (task,) = queued_tasks(redis_client)
    assert task.headers["argsrepr"] == "[50 message(s): <0@example.com> and 49 more]"


def test_publisher_is_created_once_per_url(redis_url: str) -> None:
    first = get_publisher(redis_url)
    assert get_publisher(redis_url) is first
    assert get_publisher("redis://127.0.0.1:1/0") is not first


def test_publisher_url_defaults_to_the_broker_setting(redis_url: str) -> None:
    with override_settings(MAILQUEUE_BROKER_URL=redis_url):
        assert get_publisher().url == redis_url


def test_close_publishers_forgets_them(redis_url: str) -> None:
    first = get_publisher(redis_url)
    close_publishers()
    assert get_publisher(redis_url) is not first


def test_many_publishes_reuse_one_connection(redis_url: str, redis_client: redis.Redis) -> None:
    publisher = get_publisher(redis_url)
    for n in range(30):
        publisher.publish([payload(n)], task_id=new_task_id(), queue="mailqueue")
    assert redis_client.llen("mailqueue") == 30
    assert producer_connections(redis_client) == 1


def test_concurrent_threads_share_the_pool(redis_url: str, redis_client: redis.Redis) -> None:
    publisher = get_publisher(redis_url)

    def publish_twenty() -> None:
        for n in range(20):
            publisher.publish([payload(n)], task_id=new_task_id(), queue="mailqueue")

    threads = [threading.Thread(target=publish_twenty) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert redis_client.llen("mailqueue") == 160
    assert 1 <= producer_connections(redis_client) <= 8


def test_unreachable_broker_raises_at_once_naming_url_and_setting() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as caught:
        get_publisher(url).publish([payload()], task_id=new_task_id(), queue="mailqueue")
    assert time.monotonic() - started < 1.0  # no kombu retry loop
    assert url in str(caught.value)
    assert "MAILQUEUE_BROKER_URL" in str(caught.value)
    assert isinstance(caught.value, ConnectionError)


def test_broker_password_is_masked_in_the_error() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    with pytest.raises(BrokerUnavailable) as caught:
        get_publisher(url).publish([payload()], task_id=new_task_id(), queue="mailqueue")
    assert "hunter2" not in str(caught.value)
    assert ":****@" in str(caught.value)


def test_broker_that_accepts_but_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes the handshake; nobody ever reads
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        with override_settings(MAILQUEUE_BROKER_SOCKET_TIMEOUT=0.3):
            started = time.monotonic()
            with pytest.raises(BrokerUnavailable):
                get_publisher(url).publish([payload()], task_id=new_task_id(), queue="mailqueue")
    assert time.monotonic() - started < 3.0


def test_broker_refusing_writes_raises_broker_unavailable(tmp_path: Path) -> None:
    port = free_port()
    server = start_redis_on(port, str(tmp_path))
    try:
        redis.Redis(port=port).config_set("maxmemory", 1)  # every write is now refused: OOM
        with pytest.raises(BrokerUnavailable, match="maxmemory"):
            get_publisher(f"redis://127.0.0.1:{port}/0").publish([payload()], task_id=new_task_id(), queue="q")
    finally:
        stop_redis(server)


def test_publishing_works_again_once_the_broker_is_back(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with pytest.raises(BrokerUnavailable):
        get_publisher(url).publish([payload()], task_id=new_task_id(), queue="q")
    server = start_redis_on(port, str(tmp_path))
    try:
        get_publisher(url).publish([payload()], task_id=new_task_id(), queue="q")
        assert redis.Redis(port=port).llen("q") == 1
    finally:
        stop_redis(server)


def test_pooled_connection_survives_a_broker_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = start_redis_on(port, str(tmp_path))
    try:
        get_publisher(url).publish([payload()], task_id=new_task_id(), queue="q")
        stop_redis(server)
        server = start_redis_on(port, str(tmp_path))  # empty: --save "" keeps nothing
        get_publisher(url).publish([payload()], task_id=new_task_id(), queue="q")
        assert redis.Redis(port=port).llen("q") == 1
    finally:
        stop_redis(server)
