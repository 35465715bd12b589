"""The queue backend, on a real Redis: what it puts on the broker, and what it refuses.

The shared backend contract runs against it too: its "mailbox" is the broker's queue,
read back with redis-py (``tests.queue_inspection``).
"""

from __future__ import annotations

import base64
import email
import email.message
import email.policy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from mailqueue.backends import queue
from mailqueue.conf import override_settings
from mailqueue.exceptions import BrokerUnavailable, InvalidMessage, MessageTooLarge
from mailqueue.mail import get_connection, mail_admins, mail_managers, send_mail, send_mass_mail
from mailqueue.message import EmailMessage
from mailqueue.queue.delivery import Delivery
from mailqueue.queue.producer import close_publishers
from tests.backends.contract import MailboxContract
from tests.fixtures.redis import free_port
from tests.fixtures.smtp import SMTPTestServer
from tests.queue_inspection import queued_tasks, start_redis_on, stop_redis

QUEUE_BACKEND = "mailqueue.backends.queue.EmailBackend"


@pytest.fixture(autouse=True)
def broker(redis_url: str) -> Iterator[str]:
    """Every test enqueues on the test Redis unless it says otherwise."""
    with override_settings(MAILQUEUE_BROKER_URL=redis_url, EMAIL_BACKEND=QUEUE_BACKEND):
        yield redis_url
    close_publishers()


def payloads_on(client: redis.Redis, name: str = "mailqueue") -> list[dict[str, Any]]:
    return [payload for task in queued_tasks(client, name) for payload in task.payloads]


def parsed(payload: dict[str, Any]) -> email.message.EmailMessage:
    """The payload's message as an SMTP server would store it (CRLF turned into LF)."""
    data = base64.b64decode(payload["message"]).replace(b"\r\n", b"\n")
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def messages(count: int, **kwargs: Any) -> list[EmailMessage]:
    return [EmailMessage(f"Subject {n}", "Body", "from@example.com", [f"to-{n}@example.com"], **kwargs)
            for n in range(count)]


def dead_broker_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


class TestQueueBackend(MailboxContract):
    @pytest.fixture(autouse=True)
    def _queue_client(self, redis_client: redis.Redis) -> None:
        self.client = redis_client

    def make_backend(self, **kwargs: Any) -> queue.EmailBackend:
        return queue.EmailBackend(**kwargs)

    def mailbox(self) -> list[email.message.EmailMessage]:
        return [parsed(payload) for payload in payloads_on(self.client)]

    def flush_mailbox(self) -> None:
        self.client.delete("mailqueue")


# --- Batching -------------------------------------------------------------------------------


def test_messages_are_split_into_tasks_of_at_most_the_batch_size(redis_client: redis.Redis) -> None:
    batch = messages(120)
    assert queue.EmailBackend(batch_size=50).send_messages(batch) == 120
    tasks = queued_tasks(redis_client)
    assert [len(task.payloads) for task in tasks] == [50, 50, 20]
    assert [p["recipients"] for p in payloads_on(redis_client)] == [[f"to-{n}@example.com"] for n in range(120)]


def test_batch_size_comes_from_the_setting(redis_client: redis.Redis) -> None:
    with override_settings(MAILQUEUE_BATCH_SIZE=2):
        queue.EmailBackend().send_messages(messages(5))
    assert [len(task.payloads) for task in queued_tasks(redis_client)] == [2, 2, 1]


def test_tasks_stay_under_the_byte_cap_and_a_larger_message_goes_alone(redis_client: redis.Redis) -> None:
    small, large = "x" * 3000, "y" * 9000
    batch = [EmailMessage("s", body, "from@example.com", [f"to-{n}@example.com"])
             for n, body in enumerate([small, small, small, large, small])]
    with override_settings(MAILQUEUE_BATCH_MAX_BYTES=8000):
        assert queue.EmailBackend(batch_size=10).send_messages(batch) == 5
    tasks = queued_tasks(redis_client)
    assert [len(task.payloads) for task in tasks] == [2, 1, 1, 1]
    assert [p["recipients"] for p in payloads_on(redis_client)] == [[f"to-{n}@example.com"] for n in range(5)]


def test_each_message_gets_a_delivery_naming_its_task(redis_client: redis.Redis) -> None:
    batch = messages(5)
    queue.EmailBackend(batch_size=2).send_messages(batch)
    tasks = queued_tasks(redis_client)
    for task in tasks:
        for payload in task.payloads:
            (message,) = [m for m in batch if m.to == payload["recipients"]]
            assert message.delivery == Delivery(task.headers["id"], message_id=payload["message_id"])  # type: ignore[attr-defined]
    assert len({task.headers["id"] for task in tasks}) == 3


def test_delivery_message_id_is_the_message_id_header(redis_client: redis.Redis) -> None:
    message = EmailMessage("S", "B", "from@example.com", ["to@example.com"])
    message.send()
    (payload,) = payloads_on(redis_client)
    assert message.delivery.message_id == parsed(payload)["Message-ID"] == payload["message_id"]  # type: ignore[attr-defined]


def test_queue_comes_from_the_setting_or_the_argument(redis_client: redis.Redis) -> None:
    with override_settings(MAILQUEUE_QUEUE="bulk"):
        queue.EmailBackend().send_messages(messages(1))
    queue.EmailBackend(queue="urgent").send_messages(messages(1))
    assert (redis_client.llen("bulk"), redis_client.llen("urgent"), redis_client.llen("mailqueue")) == (1, 1, 0)


@pytest.mark.filterwarnings("ignore:get_connection:mailqueue.deprecation.RemovedInDjango2028Warning")
def test_relay_travels_by_name_from_get_connection_or_a_mailer(redis_client: redis.Redis) -> None:
    get_connection(QUEUE_BACKEND, relay="bulk").send_messages(messages(1))
    mailers = {"default": {"BACKEND": QUEUE_BACKEND},
               "newsletter": {"BACKEND": QUEUE_BACKEND, "OPTIONS": {"relay": "bulk.eu-1"}}}
    with override_settings(MAILERS=mailers):
        send_mail("S", "B", "from@example.com", ["n@example.com"], using="newsletter")
        send_mail("S", "B", "from@example.com", ["d@example.com"])
    relays = {payload["recipients"][0]: (payload["v"], payload.get("relay")) for payload in payloads_on(redis_client)}
    assert relays == {"to-0@example.com": (2, "bulk"), "n@example.com": (2, "bulk.eu-1"), "d@example.com": (1, None)}


@pytest.mark.filterwarnings("ignore:get_connection:mailqueue.deprecation.RemovedInDjango2028Warning")
@pytest.mark.parametrize(("relay", "error"), [("", ValueError), ("bulk relay", ValueError),
                                               ("bulk\r\nX: y", ValueError), (["bulk"], TypeError)])
def test_a_bad_relay_name_is_refused_at_the_call_site(relay: Any, error: type[Exception],
                                                      redis_client: redis.Redis) -> None:
    with pytest.raises(error, match="relay"):
        get_connection(QUEUE_BACKEND, relay=relay)
    assert redis_client.llen("mailqueue") == 0


def test_messages_without_recipients_are_skipped(redis_client: redis.Redis) -> None:
    nobody = EmailMessage("S", "B", "from@example.com", [])
    somebody = EmailMessage("S", "B", "from@example.com", ["to@example.com"])
    assert queue.EmailBackend().send_messages([nobody, somebody]) == 1
    assert len(payloads_on(redis_client)) == 1
    assert not hasattr(nobody, "delivery")


def test_nothing_to_send_does_not_contact_the_broker() -> None:
    with override_settings(MAILQUEUE_BROKER_URL=dead_broker_url()):
        assert queue.EmailBackend().send_messages([EmailMessage("S", "B", "from@example.com", [])]) == 0


def test_payload_on_the_broker_is_base64_encoded_only_once(redis_client: redis.Redis) -> None:
    message = EmailMessage("S", "x" * 20_000, "from@example.com", ["to@example.com"])
    queue.EmailBackend().send_messages([message])
    raw = redis_client.lindex("mailqueue", 0)
    assert raw is not None
    message_size = len(base64.b64decode(payloads_on(redis_client)[0]["message"]))
    assert len(raw) < message_size * 4 / 3 + 2000  # base64 once, plus the task's headers


# --- Refused at the call site, before anything is enqueued --------------------------------------


def test_invalid_address_in_a_later_message_enqueues_nothing(redis_client: redis.Redis) -> None:
    batch = messages(3)
    batch.append(EmailMessage("S", "B", "from@example.com", ["not an address@@example.com"]))
    with pytest.raises(InvalidMessage, match="not an address"):
        queue.EmailBackend(batch_size=1).send_messages(batch)
    assert redis_client.llen("mailqueue") == 0
    assert not any(hasattr(message, "delivery") for message in batch)


def test_header_injection_enqueues_nothing(redis_client: redis.Redis) -> None:
    batch = messages(2)
    batch.append(EmailMessage("S", "B", "from@example.com", ["to@example.com"], headers={"X-Tag": "a\r\nBcc: x@y.z"}))
    with pytest.raises(ValueError):
        queue.EmailBackend().send_messages(batch)
    assert redis_client.llen("mailqueue") == 0


def test_oversize_message_enqueues_nothing(redis_client: redis.Redis) -> None:
    batch = [*messages(2), EmailMessage("S", "x" * 50_000, "from@example.com", ["to@example.com"])]
    with override_settings(MAILQUEUE_MAX_MESSAGE_SIZE=10_000), pytest.raises(MessageTooLarge):
        queue.EmailBackend().send_messages(batch)
    with pytest.raises(MessageTooLarge, match="MAILQUEUE_MAX_MESSAGE_SIZE"):
        queue.EmailBackend(max_message_size=10_000).send_messages(batch)
    assert redis_client.llen("mailqueue") == 0


def test_invalid_message_raises_even_with_fail_silently(redis_client: redis.Redis) -> None:
    bad = EmailMessage("S", "B", "from@example.com", ["not an address@@example.com"])
    with pytest.raises(InvalidMessage):
        queue.EmailBackend(fail_silently=True).send_messages([bad])


@pytest.mark.parametrize(("argument", "value"), [("batch_size", 0), ("batch_size", "50"), ("max_message_size", -1)])
def test_invalid_limits_are_refused_naming_the_argument(argument: str, value: Any) -> None:
    with pytest.raises(ValueError, match=argument):
        queue.EmailBackend(**{argument: value})


@pytest.mark.parametrize("setting", ["MAILQUEUE_BATCH_SIZE", "MAILQUEUE_BATCH_MAX_BYTES"])
def test_invalid_batch_setting_is_refused_naming_it(setting: str) -> None:
    with override_settings(**{setting: 0}), pytest.raises(ValueError, match=setting):
        queue.EmailBackend()


# --- Broker unreachable ----------------------------------------------------------------------


def test_unreachable_broker_raises_a_clear_error_at_once() -> None:
    url = dead_broker_url()
    batch = messages(2)
    started = time.monotonic()
    with override_settings(MAILQUEUE_BROKER_URL=url), pytest.raises(BrokerUnavailable) as caught:
        queue.EmailBackend().send_messages(batch)
    assert time.monotonic() - started < 1.0
    assert url in str(caught.value) and "MAILQUEUE_BROKER_URL" in str(caught.value)
    assert not any(hasattr(message, "delivery") for message in batch)


def test_unreachable_broker_with_fail_silently_returns_zero() -> None:
    with override_settings(MAILQUEUE_BROKER_URL=dead_broker_url()):
        assert queue.EmailBackend(fail_silently=True).send_messages(messages(2)) == 0
        assert send_mail("S", "B", "from@example.com", ["to@example.com"], fail_silently=True) == 0
        assert EmailMessage("S", "B", "from@example.com", ["to@example.com"]).send(fail_silently=True) == 0


def test_broker_url_argument_overrides_the_setting() -> None:
    with pytest.raises(BrokerUnavailable, match="MAILQUEUE_BROKER_URL"):
        queue.EmailBackend(broker_url=dead_broker_url()).send_messages(messages(1))


@pytest.fixture
def starving_broker(tmp_path: Path) -> Iterator[tuple[str, redis.Redis]]:
    """A private Redis that accepts a few more large tasks, then refuses writes (out of memory)."""
    port = free_port()
    server = start_redis_on(port, str(tmp_path))
    client = redis.Redis(port=port)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        # Connect the pooled publisher first: its connection's buffers take memory too.
        queue.EmailBackend(broker_url=url, queue="warm-up").send_messages(messages(1))
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", used + 250_000)
        yield url, client
    finally:
        client.close()
        stop_redis(server)


def large_messages(count: int) -> list[EmailMessage]:
    """Messages whose tasks take about 30 KB each on the broker."""
    return [EmailMessage("S", "y" * 20_000, "from@example.com", [f"to-{n}@example.com"]) for n in range(count)]


def test_broker_failing_midway_reports_how_many_were_enqueued(starving_broker: tuple[str, redis.Redis]) -> None:
    url, client = starving_broker
    batch = large_messages(8)
    with pytest.raises(BrokerUnavailable) as caught:
        queue.EmailBackend(broker_url=url, batch_size=1).send_messages(batch)
    enqueued = client.llen("mailqueue")
    assert 0 < enqueued < 8
    assert f"{enqueued} of 8 messages had been enqueued" in "\n".join(caught.value.__notes__)
    assert [hasattr(message, "delivery") for message in batch] == [True] * enqueued + [False] * (8 - enqueued)


def test_broker_failing_midway_with_fail_silently_returns_the_count(starving_broker: tuple[str, redis.Redis]) -> None:
    url, client = starving_broker
    sent = queue.EmailBackend(broker_url=url, batch_size=1, fail_silently=True).send_messages(large_messages(8))
    assert 0 < sent < 8
    assert sent == client.llen("mailqueue")


# --- Every send function goes through send_messages -----------------------------------------------


SENDERS: dict[str, Callable[[], object]] = {
    "send_mail": lambda: send_mail("S", "B", "from@example.com", ["to@example.com"]),
    "send_mass_mail": lambda: send_mass_mail([("S", "B", "from@example.com", ["to@example.com"])]),
    "mail_admins": lambda: mail_admins("S", "B"),
    "mail_managers": lambda: mail_managers("S", "B"),
    "EmailMessage.send": lambda: EmailMessage("S", "B", "from@example.com", ["to@example.com"]).send(),
    "backend.send_messages": lambda: get_connection().send_messages(messages(1)),
}


@pytest.mark.parametrize("sender", SENDERS)
@override_settings(ADMINS=["admin@example.com"], MANAGERS=["manager@example.com"])
def test_every_send_function_enqueues(sender: str, redis_client: redis.Redis) -> None:
    assert SENDERS[sender]() in (1, None)  # mail_admins() and mail_managers() return None, as in Django
    assert len(payloads_on(redis_client)) == 1


def test_get_connection_returns_the_queue_backend() -> None:
    assert isinstance(get_connection(), queue.EmailBackend)


# --- No secrets on the broker ------------------------------------------------------------------


@override_settings(EMAIL_HOST_USER="mailer", EMAIL_HOST_PASSWORD="Sm7p-s3cret-pw")
def test_smtp_credentials_never_reach_the_broker(redis_client: redis.Redis) -> None:
    send_mail("S", "B", "from@example.com", ["to@example.com"])
    send_mail("S", "B", "from@example.com", ["to@example.com"], auth_user="u2", auth_password="0ther-s3cret")
    raw_tasks = b"".join(redis_client.lrange("mailqueue", 0, -1))
    decoded = b"".join(base64.b64decode(payload["message"]) for payload in payloads_on(redis_client))
    for secret in (b"Sm7p-s3cret-pw", b"0ther-s3cret"):
        assert secret not in raw_tasks
        assert secret not in decoded
        assert base64.b64encode(secret)[:12] not in raw_tasks
    assert len(payloads_on(redis_client)) == 2


def test_task_message_is_plain_json(redis_client: redis.Redis) -> None:
    send_mail("S", "B", "from@example.com", ["to@example.com"])
    envelope = json.loads(redis_client.lindex("mailqueue", 0))  # type: ignore[arg-type]
    assert envelope["content-type"] == "application/json"


# --- Connection handling -----------------------------------------------------------------------


def test_open_returns_true_only_when_it_binds_the_publisher() -> None:
    backend = queue.EmailBackend()
    assert backend.open() is True
    assert backend.open() is False
    backend.close()
    assert backend.open() is True


def test_context_manager_sends_every_batch_through_one_publisher(redis_client: redis.Redis) -> None:
    backend = queue.EmailBackend()
    with backend:
        publisher = backend.publisher
        backend.send_messages(messages(1))
        backend.send_messages(messages(1))
        assert backend.publisher is publisher
    assert backend.publisher is None
    assert redis_client.llen("mailqueue") == 2


def test_constructor_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        queue.EmailBackend(True)  # type: ignore[misc]


# --- End to end, with a real worker ----------------------------------------------------------------


@pytest.mark.usefixtures("celery_worker")
def test_delivery_get_returns_the_workers_report(smtp_server: SMTPTestServer) -> None:
    smtp_server.fail_recipient("greylisted@example.com", 451, "4.7.1 Try again later", times=1)
    smtp_server.fail_recipient("unknown@example.com", 550, "5.1.1 No such user")
    good = EmailMessage("Hello", "Body", "from@example.com", ["one@example.com", "greylisted@example.com"])
    bad = EmailMessage("Hello", "Body", "from@example.com", ["two@example.com", "unknown@example.com"])
    assert queue.EmailBackend().send_messages([good, bad]) == 2

    report = good.delivery.get(timeout=30)  # type: ignore[attr-defined]
    assert (report["sent"], report["failed"], report["retries"]) == (1, 1, 1)
    sent = good.delivery.message_report(timeout=5)  # type: ignore[attr-defined]
    assert sent["status"] == "sent"
    assert sent["recipients"]["greylisted@example.com"]["code"] == 250
    failed = bad.delivery.message_report(timeout=5)  # type: ignore[attr-defined]
    assert failed["status"] == "failed"
    assert failed["recipients"]["unknown@example.com"]["code"] == 550
    assert failed["recipients"]["two@example.com"]["status"] == "accepted"
    assert good.delivery.state == "FAILURE"  # type: ignore[attr-defined]  # a message was dead-lettered
    received = sorted(address for message in smtp_server.messages for address in message.rcpt_tos)
    assert received == ["greylisted@example.com", "one@example.com", "two@example.com"]  # each exactly once
