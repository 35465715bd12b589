"""Poison on the broker: malformed tasks and payloads, sent by a bare Celery app, to a real worker.

Whoever can write to Redis can put any ``mailqueue.deliver`` task on the queue, in any shape
JSON can hold. Whatever it carries is delivered or dead-lettered with the reason, a bad
payload never harms the others in its batch, and nothing reaches the SMTP server that the
producer would have refused. Counted per (Message-ID, recipient) at the server: zero lost,
zero duplicated.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Connection

from mailqueue.cli.dead import detail_lines, letter_summary
from mailqueue.conf import override_settings, settings
from mailqueue.queue.broker import shared_celery_config
from mailqueue.queue.envelope import DELIVER_TASK
from mailqueue.queue.signing import signature_headers
from tests.fixtures.celery import delivered_pairs, final_report, make_payload
from tests.fixtures.smtp import SMTPTestServer
from workers.deadletters import DeadLetter, DeadLetters
from workers.quarantine import Quarantine

pytestmark = pytest.mark.usefixtures("celery_worker")
TIMEOUT = 20


@pytest.fixture
def forger(redis_url: str, celery_app: Celery) -> Iterator[Celery]:
    """A bare Celery app on the workers' broker: no tasks, no checks on the arguments it sends."""
    app = Celery("forger", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(shared_celery_config())
    try:
        yield app
    finally:
        app.close()


def send(app: Celery, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Send a delivery task with exactly these arguments; returns the report the worker stored."""
    result = app.send_task(DELIVER_TASK, args=list(args), kwargs=kwargs, task_id=str(uuid.uuid4()),
                           queue=settings.MAILQUEUE_QUEUE)
    report: dict[str, Any] = final_report(result, timeout=TIMEOUT)
    return report


def expected_pairs(*payloads: dict[str, Any]) -> dict[tuple[str, str], int]:
    return {(payload["message_id"], recipient): 1 for payload in payloads for recipient in payload["recipients"]}


def letters(client: redis.Redis) -> list[DeadLetter]:
    return DeadLetters(client).list(limit=1000)


def test_a_bad_payload_never_harms_the_others_in_its_batch(
    forger: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    first, second = make_payload(to=["first@example.com"]), make_payload(to=["second@example.com"])
    unhashable = {**make_payload(to=["third@example.com"]), "message_id": ["<unhashable@example.com>"]}

    report = send(forger, [first, unhashable, second])

    assert delivered_pairs(smtp_server) == expected_pairs(first, second)
    assert (report["sent"], report["failed"]) == (2, 1)
    [letter] = letters(redis_client)
    assert letter.payload == unhashable and "'message_id'" in letter.error["reply"]
    assert letter.id in [entry["dead_letter"] for entry in report["messages"].values()]


def test_a_batch_full_of_poison_delivers_its_good_mail_once_and_dead_letters_the_rest(
    forger: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    good = [make_payload(to=[f"good{i}@example.com"]) for i in range(3)]
    bad = {
        "recipients": {**make_payload(), "recipients": "victim@example.com"},  # one-letter RCPTs
        "recipients[0]": {**make_payload(), "recipients": ["victim@example.com\u2028.evil.test"]},
        "sender": {**make_payload(), "sender": "ceo@example.com\u2029.evil.test"},
        "message_id": {k: v for k, v in make_payload().items() if k != "message_id"},
        "message": {k: v for k, v in make_payload().items() if k != "message"},
        "enqueued_at": {**make_payload(), "enqueued_at": "yesterday"},
        "version": {**make_payload(), "v": 2},
    }
    batch: list[Any] = [good[0], *bad.values(), good[1], "junk", None, 7, [good[2]], good[2]]

    report = send(forger, batch)

    assert delivered_pairs(smtp_server) == expected_pairs(*good)
    assert {message.mail_from for message in smtp_server.messages} == {"sender@example.com"}
    dead = letters(redis_client)
    assert len(dead) == len(bad) + 4 and report["failed"] == len(dead) and report["sent"] == 3
    replies = sorted(letter.error["reply"] for letter in dead)
    for field in bad:
        assert any(f"'{field}" in reply or f"{field} " in reply for reply in replies), (field, replies)
    assert {"raw": [good[2]]} in [letter.payload for letter in dead]  # kept, not delivered as a batch
    for letter in dead:  # an operator can still read every one of them
        assert letter_summary(letter) and detail_lines(letter)


@pytest.mark.parametrize(("shape", "make_args", "stray"), [
    ("an extra positional argument", lambda p, q: ([[p], 0, None, "extra"], {}), 1),
    ("mail in an extra positional argument", lambda p, q: ([[p], 0, None, [q]], {}), 1),
    ("attempt='x'", lambda p, q: ([[p]], {"attempt": "x"}), 0),
    ("attempt=-3", lambda p, q: ([[p]], {"attempt": -3}), 0),
    ("attempt=1.5", lambda p, q: ([[p]], {"attempt": 1.5}), 0),
    ("attempt=True", lambda p, q: ([[p]], {"attempt": True}), 0),
    ("positional attempt='x'", lambda p, q: ([[p], "x"], {}), 0),
    ("report='str'", lambda p, q: ([[p]], {"report": "str"}), 0),
    ("report=[]", lambda p, q: ([[p]], {"report": []}), 0),
    ("report without messages", lambda p, q: ([[p]], {"report": {"sent": 1}}), 0),
    ("report with a bad message entry", lambda p, q: ([[p]], {"report": {"messages": {p["message_id"]: 5}}}), 0),
    ("report with a bad recipient entry", lambda p, q: (
        [[p]], {"report": {"messages": {p["message_id"]: {"status": "pending", "attempts": "1",
                                                            "dead_letter": None, "recipients": {}}}}}), 0),
    ("a dict instead of a list", lambda p, q: ([p], {}), 0),
    ("an unknown keyword argument", lambda p, q: ([[p]], {"extra": [q]}), 1),
    ("payloads given twice", lambda p, q: ([[p]], {"payloads": [q]}), 1),
    ("payloads as a keyword", lambda p, q: ([], {"payloads": [p]}), 0),
])
def test_a_task_of_any_shape_delivers_or_dead_letters_what_it_carries(
    forger: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis,
    shape: str, make_args: Any, stray: int,
) -> None:
    payload, other = make_payload(to=["customer@example.com"]), make_payload(to=["other@example.com"])
    args, kwargs = make_args(payload, other)

    report = send(forger, *args, **kwargs)

    assert delivered_pairs(smtp_server) == expected_pairs(payload), shape
    assert report["sent"] == 1 and report["attempts"] == 1 and report["failed"] == stray
    dead = letters(redis_client)
    assert len(dead) == stray
    if stray:
        assert "unexpected" in dead[0].error["reply"] or "given twice" in dead[0].error["reply"]


@pytest.mark.parametrize("payloads", ["junk", 42, {"v": 1}, [[]], True])
def test_payloads_that_are_not_a_list_of_payloads_are_dead_lettered(
    forger: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis, payloads: Any
) -> None:
    report = send(forger, payloads)

    [letter] = letters(redis_client)
    assert report["failed"] == 1 and smtp_server.messages == []
    assert letter.error["reply"] and letter.error["permanent"] is True
    assert json.dumps(letter.payload)


def test_a_task_without_arguments_ends_with_an_empty_report(forger: Celery, redis_client: redis.Redis) -> None:
    report = send(forger)

    assert (report["sent"], report["failed"], report["messages"]) == (0, 0, {})
    assert letters(redis_client) == []


def test_a_bad_payload_claiming_a_good_ones_message_id_does_not_spoil_its_report(
    forger: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    good = make_payload(to=["good@example.com"])
    impostor = {**good, "recipients": "victim@example.com"}

    report = send(forger, [impostor, good])

    assert delivered_pairs(smtp_server) == expected_pairs(good)
    assert report["messages"][good["message_id"]]["status"] == "sent"
    assert report["messages"][good["message_id"]]["dead_letter"] is None
    [letter] = letters(redis_client)
    assert letter.payload == impostor and report["failed"] == 1


def publish_raw(redis_url: str, body: Any) -> str:
    """Put a task message with this body (normally ``[args, kwargs, embed]``) on the queue, as kombu would."""
    task_id = str(uuid.uuid4())
    headers = {"lang": "py", "task": DELIVER_TASK, "id": task_id, "root_id": task_id, "parent_id": None,
               "group": None, "argsrepr": "", "kwargsrepr": "", "origin": "forger", "retries": 0,
               "eta": None, "expires": None}
    with Connection(redis_url) as connection:
        connection.Producer().publish(body, routing_key=settings.MAILQUEUE_QUEUE, serializer="json", headers=headers)
    return task_id


def test_arguments_that_are_a_dict_are_dead_lettered_with_the_mail_they_carry(
    redis_url: str, celery_app: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    payload = make_payload(to=["customer@example.com"])
    task_id = publish_raw(redis_url, [{"payloads": [payload]}, {}, {}])  # Celery would pass the dict's keys

    report = final_report(celery_app.AsyncResult(task_id), timeout=TIMEOUT)

    [letter] = letters(redis_client)
    assert letter.payload == {"payloads": [payload]} and "must be a list" in letter.error["reply"]
    assert report["failed"] == 1 and smtp_server.messages == []


def test_arguments_added_to_a_signed_task_are_quarantined_and_its_signed_mail_delivered(
    forger: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    genuine, forged = make_payload(to=["customer@example.com"]), make_payload(to=["victim@example.com"])
    task_id = str(uuid.uuid4())
    with override_settings(MAILQUEUE_SIGNING_KEY="poison-test-key-0123456789"):
        headers = signature_headers(task_id, [genuine])  # what the producer signed
        result = forger.send_task(DELIVER_TASK, args=[[genuine]], kwargs={"extra": [forged]}, task_id=task_id,
                                  queue=settings.MAILQUEUE_QUEUE, headers=headers)
        report = final_report(result, timeout=TIMEOUT)

    assert delivered_pairs(smtp_server) == expected_pairs(genuine)
    assert report["sent"] == 1 and letters(redis_client) == []  # never a dead letter an operator might requeue
    [entry] = Quarantine(redis_client).list()
    assert entry.payloads == [[forged]] and entry.reason.startswith("unsigned")
