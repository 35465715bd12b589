"""The dead-letter store an operator uses: add, list, get, requeue, purge."""

from __future__ import annotations

import pytest
import redis
from celery import Celery

from mailqueue.exceptions import UnknownDelivery, UnsupportedPayload
from mailqueue.queue import keys
from mailqueue.queue.envelope import Envelope
from tests.fixtures.celery import make_payload
from tests.fixtures.smtp import SMTPTestServer
from tests.queue_inspection import decode_task
from workers.deadletters import DeadLetters

ERROR = {"code": 550, "reply": "5.1.1 No such user", "permanent": True}


def add(store: DeadLetters, *, to: tuple[str, ...] = ("gone@example.com",), now: float = 1000.0) -> tuple:
    payload = make_payload(to=to)
    failures = {address: dict(ERROR) for address in to}
    letter = store.add(task_id="task-1", payload=payload, failures=failures, error=ERROR, attempts=1,
                       hostname="worker1@host", now=now)
    return letter, payload


@pytest.fixture
def store(redis_client: redis.Redis) -> DeadLetters:
    return DeadLetters(redis_client)


def test_add_keeps_payload_error_attempts_and_times(store: DeadLetters) -> None:
    letter, payload = add(store)
    stored = store.get(letter.id)
    assert stored == letter
    assert (stored.payload, stored.error, stored.attempts) == (payload, ERROR, 1)
    assert (stored.message_id, stored.task_id, stored.hostname) == (payload["message_id"], "task-1", "worker1@host")
    assert (stored.failed_at, stored.enqueued_at) == (1000.0, payload["enqueued_at"])
    assert stored.recipients == ["gone@example.com"]


def test_list_returns_oldest_first_with_paging(store: DeadLetters) -> None:
    letters = [add(store, now=now)[0] for now in (3.0, 1.0, 2.0)]
    assert [letter.failed_at for letter in store.list()] == [1.0, 2.0, 3.0]
    assert store.list(limit=1, offset=1) == [letters[2]]
    assert store.count() == 3


def test_get_of_an_unknown_id_says_so(store: DeadLetters) -> None:
    with pytest.raises(UnknownDelivery, match="nope"):
        store.get("nope")


def test_purge_removes_the_given_letters(store: DeadLetters) -> None:
    first, second = add(store)[0], add(store)[0]
    assert store.purge([first.id, "unknown"]) == 1
    assert store.list() == [second]


def test_purge_without_ids_removes_everything(store: DeadLetters, redis_client: redis.Redis) -> None:
    add(store), add(store)
    assert store.purge() == 2
    assert store.count() == 0 and redis_client.keys("*") == []


def test_requeue_sends_a_new_task_for_the_failed_recipients_only(
    store: DeadLetters, celery_app: Celery, redis_client: redis.Redis
) -> None:
    letter, payload = add(store, to=("gone@example.com",))

    task_id = store.requeue(letter.id, app=celery_app)

    [raw] = redis_client.lrange(keys.queue_key(), 0, -1)
    queued = decode_task(raw)
    assert queued.headers["id"] == task_id and queued.headers["task"] == "mailqueue.deliver"
    assert queued.payloads == [payload]
    assert store.count() == 0


def test_requeued_mail_is_delivered_by_a_worker(
    store: DeadLetters, celery_app: Celery, celery_worker: object, smtp_server: SMTPTestServer
) -> None:
    payload = make_payload(to=["ok@example.com", "back@example.com"])
    narrowed = Envelope.from_payload(payload).with_recipients(["back@example.com"]).to_payload()
    letter = store.add(task_id="t", payload=narrowed, failures={"back@example.com": ERROR}, error=ERROR, attempts=1)

    task_id = store.requeue(letter.id, app=celery_app)

    report = celery_app.AsyncResult(task_id).get(timeout=20)
    assert report["sent"] == 1
    assert [received.rcpt_tos for received in smtp_server.messages] == [["back@example.com"]]


def test_requeue_refuses_an_unreadable_payload_and_keeps_the_letter(
    store: DeadLetters, celery_app: Celery
) -> None:
    letter = store.add(task_id="t", payload={"v": 99}, failures={}, error=ERROR, attempts=1)
    with pytest.raises(UnsupportedPayload):
        store.requeue(letter.id, app=celery_app)
    assert store.get(letter.id) == letter


def test_requeued_task_shows_monitoring_a_summary_not_the_mail(
    store: DeadLetters, celery_app: Celery, redis_client: redis.Redis
) -> None:
    letter, payload = add(store, to=("gone@example.com",))
    store.requeue(letter.id, app=celery_app)

    [raw] = redis_client.lrange(keys.queue_key(), 0, -1)
    assert decode_task(raw).headers["argsrepr"] == f"[1 message(s): {payload['message_id']}]"
