"""The Delivery handle, against Celery's real Redis result backend.

``worker_backend`` writes results the way a worker does (Celery's ``store_result``); the
end-to-end test with a real worker process lives with the workers' tests.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from mailqueue.conf import override_settings
from mailqueue.exceptions import BrokerUnavailable, DeliveryTimeout, UnknownDelivery
from mailqueue.queue.broker import shared_celery_config
from mailqueue.queue.delivery import DEFERRED, Delivery, close_result_readers
from tests.fixtures.redis import free_port
from tests.queue_inspection import start_redis_on, stop_redis

MESSAGE_ID = "<1@example.com>"


def report_for(task_id: str, **message: Any) -> dict[str, Any]:
    entry = {"status": "sent", "attempts": 1,
             "recipients": {"to@example.com": {"status": "accepted", "code": 250, "reply": "OK"}}, **message}
    return {"task_id": task_id, "sent": 1, "failed": 0, "retries": 0, "messages": {MESSAGE_ID: entry}}


def results_writer_app(url: str) -> Celery:
    app = Celery("test-worker", set_as_current=False, broker=url, backend=url)
    app.conf.update(shared_celery_config())
    return app


@pytest.fixture
def worker_backend(redis_url: str) -> Iterator[Any]:
    """Celery's result backend as a worker holds it, on the test Redis; results are read from there too."""
    app = results_writer_app(redis_url)
    with override_settings(MAILQUEUE_BROKER_URL=redis_url, MAILQUEUE_RESULT_BACKEND=""):
        yield app.backend
    close_result_readers()
    app.close()


def new_delivery() -> Delivery:
    return Delivery(str(uuid.uuid4()), message_id=MESSAGE_ID)


def test_handle_carries_task_and_message_id() -> None:
    delivery = Delivery("task-1", message_id=MESSAGE_ID)
    assert (delivery.task_id, delivery.message_id) == ("task-1", MESSAGE_ID)
    with pytest.raises(dataclasses.FrozenInstanceError):
        delivery.task_id = "other"  # type: ignore[misc]


def test_creating_a_handle_contacts_nothing() -> None:
    with override_settings(MAILQUEUE_RESULT_BACKEND=f"redis://127.0.0.1:{free_port()}/0"):
        delivery = new_delivery()  # nothing listens there, and nothing is asked yet
    assert delivery.task_id


def test_state_of_an_unknown_task_is_pending(worker_backend: Any) -> None:
    assert new_delivery().state == "PENDING"
    assert not new_delivery().ready()


def test_state_is_read_anew_each_time(worker_backend: Any) -> None:
    delivery = new_delivery()
    worker_backend.store_result(delivery.task_id, None, "STARTED")
    assert delivery.state == "STARTED"
    worker_backend.store_result(delivery.task_id, {"retries": 1}, DEFERRED)
    assert delivery.state == DEFERRED
    assert not delivery.ready()
    worker_backend.store_result(delivery.task_id, report_for(delivery.task_id), "SUCCESS")
    assert delivery.state == "SUCCESS"
    assert delivery.ready()


def test_get_returns_the_final_report(worker_backend: Any) -> None:
    delivery = new_delivery()
    worker_backend.store_result(delivery.task_id, report_for(delivery.task_id), "SUCCESS")
    assert delivery.get(timeout=5) == report_for(delivery.task_id)


def test_get_waits_through_deferred_retries_for_the_final_report(worker_backend: Any) -> None:
    delivery = new_delivery()
    worker_backend.store_result(delivery.task_id, {"retries": 1}, DEFERRED)
    final = report_for(delivery.task_id, attempts=2)
    finisher = threading.Timer(0.3, worker_backend.store_result, (delivery.task_id, final, "SUCCESS"))
    started = time.monotonic()
    finisher.start()
    try:
        assert delivery.get(timeout=10) == final
    finally:
        finisher.join()
    assert time.monotonic() - started >= 0.25


def test_get_times_out_while_retries_are_deferred(worker_backend: Any) -> None:
    delivery = new_delivery()
    worker_backend.store_result(delivery.task_id, {"retries": 1}, DEFERRED)
    with pytest.raises(DeliveryTimeout, match="DEFERRED") as caught:
        delivery.get(timeout=0.3)
    assert isinstance(caught.value, TimeoutError)


def test_error_raised_by_the_task_is_raised_by_get(worker_backend: Any) -> None:
    delivery = new_delivery()
    worker_backend.store_result(delivery.task_id, RuntimeError("worker exploded"), "FAILURE")
    with pytest.raises(Exception, match="worker exploded"):
        delivery.get(timeout=5)


def test_message_report_is_this_messages_entry(worker_backend: Any) -> None:
    delivery = new_delivery()
    worker_backend.store_result(delivery.task_id, report_for(delivery.task_id), "SUCCESS")
    entry = delivery.message_report(timeout=5)
    assert entry["status"] == "sent"
    assert entry["recipients"]["to@example.com"]["code"] == 250


def test_message_report_of_a_message_missing_from_the_report_raises(worker_backend: Any) -> None:
    delivery = Delivery(str(uuid.uuid4()), message_id="<other@example.com>")
    worker_backend.store_result(delivery.task_id, report_for(delivery.task_id), "SUCCESS")
    with pytest.raises(UnknownDelivery, match="other@example.com"):
        delivery.message_report(timeout=5)


def test_results_are_read_from_the_result_backend_setting(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    server = start_redis_on(port, str(tmp_path))
    results_url = f"redis://127.0.0.1:{port}/0"
    writer = results_writer_app(results_url)
    try:
        delivery = new_delivery()
        writer.backend.store_result(delivery.task_id, report_for(delivery.task_id), "SUCCESS")
        with override_settings(MAILQUEUE_BROKER_URL=redis_url, MAILQUEUE_RESULT_BACKEND=results_url):
            assert delivery.state == "SUCCESS"
            assert delivery.get(timeout=5)["sent"] == 1
    finally:
        close_result_readers()
        writer.close()
        stop_redis(server)


def test_unreachable_result_backend_raises_naming_the_setting() -> None:
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    try:
        with override_settings(MAILQUEUE_RESULT_BACKEND=url), pytest.raises(BrokerUnavailable) as caught:
            _ = new_delivery().state
    finally:
        close_result_readers()
    assert time.monotonic() - started < 5
    assert "MAILQUEUE_RESULT_BACKEND" in str(caught.value)
    assert "secret" not in str(caught.value)
