"""send_at and priority as the caller sees them: bad input fails at the call, backends that cannot
hold a message refuse it, locmem keeps send_at, the queue backend stores a scheduled task signed."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import mailqueue
from mailqueue.backends import console, dummy, locmem, queue, smtp
from mailqueue.conf import override_settings
from mailqueue.exceptions import SchedulingUnsupported
from mailqueue.mail import get_connection
from mailqueue.message import EmailMessage
from mailqueue.queue import keys
from mailqueue.queue.priority import list_name
from mailqueue.queue.producer import close_publishers
from mailqueue.queue.signing import task_canonical, verify

LATER = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
KEY = "a-signing-key-of-enough-length"


@pytest.fixture(autouse=True)
def broker(redis_url: str) -> Iterator[str]:
    with override_settings(MAILQUEUE_BROKER_URL=redis_url):
        yield redis_url
    close_publishers()


def message() -> EmailMessage:
    return EmailMessage("Hi", "Body", "from@example.com", ["to@example.com"])


def test_a_naive_send_at_is_a_value_error_and_a_string_a_type_error() -> None:
    mail = message()
    with pytest.raises(ValueError, match="timezone-aware"):
        mail.send_at = datetime.datetime(2030, 1, 1, 9, 0)
    with pytest.raises(TypeError, match="send_at must be"):
        mail.send_at = "2030-01-01T09:00Z"  # type: ignore[assignment]
    assert mail.send_at is None


def test_a_bad_priority_fails_where_the_backend_is_made() -> None:
    with pytest.raises(ValueError, match="priority='urgent'"):
        get_connection("mailqueue.backends.queue.EmailBackend", priority="urgent")
    with pytest.raises(TypeError, match="priority must be a str"):
        queue.EmailBackend(priority=1)  # type: ignore[arg-type]


def test_a_mailer_takes_priority_from_its_options(redis_client: redis.Redis) -> None:
    mailers = {"default": {"BACKEND": "mailqueue.backends.queue.EmailBackend"},
               "transactional": {"BACKEND": "mailqueue.backends.queue.EmailBackend",
                                 "OPTIONS": {"priority": "high"}}}
    with override_settings(MAILERS=mailers):
        assert mailqueue.send_mail("Reset", "Body", "from@example.com", ["ann@example.com"],
                                   using="transactional") == 1
    assert redis_client.llen(list_name("mailqueue", "high")) == 1
    assert redis_client.llen(list_name("mailqueue", "normal")) == 0


@pytest.mark.parametrize("make", [lambda: smtp.EmailBackend(alias="relay", host="localhost"), console.EmailBackend])
def test_backends_that_cannot_hold_mail_refuse_a_scheduled_message(make: Callable[[], Any]) -> None:
    mail = message()
    mail.send_at = LATER
    with pytest.raises(SchedulingUnsupported, match="cannot hold a message until its send_at"):
        make().send_messages([mail])


def test_locmem_keeps_send_at_and_dummy_accepts_it() -> None:
    mail = message()
    mail.send_at = LATER
    mailqueue.outbox = []
    assert locmem.EmailBackend().send_messages([mail]) == 1
    assert mailqueue.outbox[0].send_at == LATER
    assert dummy.EmailBackend().send_messages([mail]) == 1


def test_the_queue_backend_stores_a_scheduled_task_signed_and_enqueues_nothing(redis_client: redis.Redis) -> None:
    mail = message()
    mail.send_at = LATER
    with override_settings(MAILQUEUE_SIGNING_KEY=[KEY]):
        assert queue.EmailBackend(priority="low", queue="later").send_messages([mail]) == 1
    schedule, entries, _claims, _times = keys.scheduled_keys()
    task_id = mail.delivery.task_id
    assert redis_client.zscore(schedule, task_id) == pytest.approx(LATER.timestamp())
    entry = json.loads(redis_client.hget(entries, task_id))
    assert (entry["queue"], entry["priority"], entry["attempt"], entry["report"]) == ("later", "low", 0, None)
    assert verify([KEY.encode()], task_canonical(task_id, entry["payloads"]), entry["signature"])
    assert redis_client.llen(list_name("later", "low")) == 0
