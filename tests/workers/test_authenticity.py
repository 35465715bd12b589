"""Signed tasks end to end: forged tasks never reach SMTP, genuine ones (and their retries) do.

The forgeries are what someone who can write to the broker's Redis would send: a task from a
bare Celery app, a raw LPUSH of a genuine task with its signature stripped or its recipients
changed, a task signed with another key.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery

from mailqueue.conf import override_settings, settings
from mailqueue.queue import task_message
from mailqueue.queue.envelope import DELIVER_TASK
from mailqueue.queue.producer import close_publishers, get_publisher
from mailqueue.queue.signing import SIGNATURE_HEADER, sign, signature_headers, task_canonical
from tests.fixtures.celery import make_payload
from tests.fixtures.smtp import SMTPTestServer
from workers.quarantine import Quarantine

KEY, OLD_KEY, WRONG_KEY = "current-key-0123456789", "previous-key-0123456789", "attacker-key-0123456789"
TIMEOUT = 20

pytestmark = pytest.mark.usefixtures("celery_worker")


@pytest.fixture(autouse=True)
def signing_on() -> Iterator[None]:
    with override_settings(MAILQUEUE_SIGNING_KEY=[KEY, OLD_KEY]):
        yield
    close_publishers()


def publish(payloads: list[dict[str, Any]], **signing: Any) -> str:
    """Publish as the application's producer does, signed with its MAILQUEUE_SIGNING_KEY.

    With ``signing`` (a producer whose keys differ from the worker's), the task is signed and
    encoded by the producer's own code under those keys, and pushed once they are gone: the
    override is process-wide, and the in-process worker must not check the task under them."""
    task_id = str(uuid.uuid4())
    queue = settings.MAILQUEUE_QUEUE
    if not signing:
        get_publisher(settings.MAILQUEUE_BROKER_URL).publish(payloads, task_id=task_id, queue=queue)
        return task_id
    with override_settings(**signing):
        headers = signature_headers(task_id, payloads)
    message = task_message.encode(payloads, task_id=task_id, queue=queue, priority_step=0, origin="test-producer",
                                  extra_headers=headers)
    client = redis.Redis.from_url(settings.MAILQUEUE_BROKER_URL)
    client.lpush(queue, message)
    client.close()
    return task_id


def quarantined(client: redis.Redis, count: int) -> list[Any]:
    deadline = time.monotonic() + TIMEOUT
    store = Quarantine(client)
    while store.count() < count:
        assert time.monotonic() < deadline, f"{store.count()} of {count} forged tasks quarantined"
        time.sleep(0.05)
    return store.list(limit=count + 10)


def bare_celery_app() -> Celery:
    """What an intruder with the broker URL runs: no mailqueue, no key."""
    return Celery("intruder", broker=settings.MAILQUEUE_BROKER_URL, set_as_current=False)


def test_a_signed_task_is_delivered(celery_app: Celery, smtp_server: SMTPTestServer) -> None:
    payload = make_payload(to=["customer@example.com"])
    task_id = publish([payload])
    assert celery_app.AsyncResult(task_id).get(timeout=TIMEOUT)["sent"] == 1
    assert [message.rcpt_tos for message in smtp_server.messages] == [["customer@example.com"]]


def test_a_task_signed_with_the_previous_key_is_delivered_during_a_rotation(
    celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    task_id = publish([make_payload()], MAILQUEUE_SIGNING_KEY=[OLD_KEY])
    assert celery_app.AsyncResult(task_id).get(timeout=TIMEOUT)["sent"] == 1


def test_a_retried_round_stays_signed_and_is_delivered(celery_app: Celery, smtp_server: SMTPTestServer) -> None:
    smtp_server.fail_recipient("busy@example.com", 451, "4.3.0 Try later", times=1)
    task_id = publish([make_payload(to=["busy@example.com"])])
    report = celery_app.AsyncResult(task_id).get(timeout=TIMEOUT)
    assert (report["sent"], report["retries"]) == (1, 1)
    assert Quarantine(redis.Redis.from_url(settings.MAILQUEUE_BROKER_URL)).count() == 0


def test_forged_tasks_from_a_bare_celery_app_never_reach_smtp(
    redis_client: redis.Redis, smtp_server: SMTPTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    intruder = bare_celery_app()
    victims = [f"victim{i}@example.com" for i in range(20)]
    with caplog.at_level(logging.ERROR, logger="mailqueue.security"):
        for victim in victims:
            intruder.send_task(DELIVER_TASK, args=[[make_payload(to=[victim], from_email="ceo@example.com")]],
                               queue=settings.MAILQUEUE_QUEUE)
        entries = quarantined(redis_client, len(victims))
    intruder.close()

    assert smtp_server.messages == []
    assert sorted(r for entry in entries for r in entry.recipients) == sorted(victims)
    assert {entry.reason.split(":")[0] for entry in entries} == {"unsigned"}
    assert sum("Refused delivery task" in record.getMessage() for record in caplog.records) == len(victims)


def test_a_task_signed_with_another_key_is_refused_as_forged(
    redis_client: redis.Redis, smtp_server: SMTPTestServer
) -> None:
    publish([make_payload(to=["victim@example.com"])], MAILQUEUE_SIGNING_KEY=[WRONG_KEY])
    [entry] = quarantined(redis_client, 1)
    assert entry.reason.startswith("forged")
    assert smtp_server.messages == []


def raw_genuine_task(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """A genuine signed task as it sits on the queue list (published to a scratch queue)."""
    scratch = f"scratch-{uuid.uuid4().hex[:8]}"
    get_publisher(settings.MAILQUEUE_BROKER_URL).publish(payloads, task_id=str(uuid.uuid4()), queue=scratch)
    client = redis.Redis.from_url(settings.MAILQUEUE_BROKER_URL)
    raw = client.rpop(scratch)
    assert isinstance(raw, bytes)
    message: dict[str, Any] = json.loads(raw)
    return message


@pytest.mark.parametrize("tampering", ["strip the signature", "change the recipients", "copy it to another id"])
def test_raw_lpush_of_a_tampered_genuine_task_is_refused(
    tampering: str, redis_client: redis.Redis, smtp_server: SMTPTestServer
) -> None:
    payload = make_payload(to=["customer@example.com"])
    message = raw_genuine_task([payload])
    if tampering == "strip the signature":
        del message["headers"][SIGNATURE_HEADER]
    elif tampering == "change the recipients":
        forged = {**payload, "recipients": ["victim@example.com"]}
        message["body"] = json.dumps([[[forged]], {}, {}])  # the body encoding stays utf-8 JSON
        message["properties"].pop("body_encoding", None)
    else:
        message["headers"]["id"] = message["properties"]["correlation_id"] = str(uuid.uuid4())
    redis_client.lpush(settings.MAILQUEUE_QUEUE, json.dumps(message))

    [entry] = quarantined(redis_client, 1)
    assert entry.reason.split(":")[0] == ("unsigned" if tampering == "strip the signature" else "forged")
    assert smtp_server.messages == []


def test_the_signature_covers_attempt_and_report() -> None:
    """A replayed signature cannot restart a task at another attempt (unit check of what is signed)."""
    payloads = [make_payload()]
    genuine = sign([KEY.encode()], task_canonical("t", payloads, attempt=0))
    assert genuine != sign([KEY.encode()], task_canonical("t", payloads, attempt=9))
