"""The Django backend, end to end: Django's mail API -> Redis -> a real worker -> an aiosmtpd sink.

This suite runs once per supported Django, each time in a fresh process (``test_django.py``
starts them), because Django's settings, app registry and logging are configured once per
process. Run it on the virtualenv's Django with ``pytest tests/contrib/django_suite.py``.

"As Django built them" is checked against Django itself: the same message object also goes
through Django's own SMTP backend to the same sink, with the global ``random`` seeded the
same way (it picks the MIME boundaries), and both arrivals must be identical bytes.
"""

from __future__ import annotations

import base64
import email.message
import email.utils
import logging
import os
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.mime.image import MIMEImage
from typing import Any

import pytest
import redis

os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE = "tests.contrib.django_settings"

import django  # noqa: E402 - the settings module must be named first
from django.conf import settings as django_settings  # noqa: E402

if django_settings.configured and django_settings.SETTINGS_MODULE != SETTINGS_MODULE:
    raise RuntimeError("Django was configured by other tests; run tests/contrib/django_suite.py in its own process.")
expected = os.environ.get("MAILQUEUE_EXPECTED_DJANGO")
if expected and django.get_version().rsplit(".", 1)[0] != expected:
    raise RuntimeError(f"Expected Django {expected}, imported {django.get_version()} from {django.__file__}")
django.setup()

from django.core import mail  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from mailqueue.backends.queue import EmailBackend as QueueBackend  # noqa: E402
from mailqueue.conf import settings  # noqa: E402
from mailqueue.contrib.django import EmailBackend  # noqa: E402
from mailqueue.exceptions import BrokerUnavailable, MessageTooLarge  # noqa: E402
from mailqueue.message import EmailMessage as MailqueueMessage  # noqa: E402
from mailqueue.queue.delivery import Delivery, close_result_readers  # noqa: E402
from mailqueue.queue.envelope import DELIVER_TASK, Envelope  # noqa: E402
from mailqueue.queue.producer import close_publishers  # noqa: E402
from tests.fixtures.redis import free_port  # noqa: E402
from tests.fixtures.smtp import ReceivedMessage, SMTPTestServer  # noqa: E402
from tests.queue_inspection import queued_tasks  # noqa: E402

# Nothing the backend does may be on Django's deprecation path.
pytestmark = [
    pytest.mark.filterwarnings("error::django.utils.deprecation.RemovedInNextVersionWarning"),
    pytest.mark.filterwarnings("error::django.utils.deprecation.RemovedAfterNextVersionWarning"),
]

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
DATE = email.utils.format_datetime(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
BOUNDARY_SEED = 20260102
DJANGO_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
DELIVERY_TIMEOUT = 15.0


class Rollback(Exception):
    """Raised to roll a transaction back."""


@pytest.fixture(autouse=True)
def clean_process_state() -> Iterator[None]:
    yield
    settings.read_from(None)  # the backend made mailqueue read Django's settings
    close_publishers()
    close_result_readers()


@pytest.fixture
def django_broker(redis_url: str) -> Iterator[str]:
    """Django's settings name the test Redis as the broker (and nothing else does)."""
    with override_settings(MAILQUEUE_BROKER_URL=redis_url):
        yield redis_url


@pytest.fixture
def fleet(celery_worker: Any, worker_settings: dict[str, Any], smtp_server: SMTPTestServer) -> Iterator[SMTPTestServer]:
    """A worker delivering to the sink; Django's settings name the worker's broker."""
    with override_settings(MAILQUEUE_BROKER_URL=worker_settings["MAILQUEUE_BROKER_URL"]):
        yield smtp_server


def dead_broker_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


def inline_image(content_id: str) -> Any:
    """An inline PNG with a Content-ID: a MIMEPart on Django 6.x, a MIMEImage before."""
    if django.VERSION >= (6, 0):
        part = email.message.MIMEPart()
        part.set_content(PNG, maintype="image", subtype="png", disposition="inline", cid=content_id)
        return part
    image = MIMEImage(PNG, "png")
    image.add_header("Content-ID", content_id)
    image.add_header("Content-Disposition", "inline")
    return image


def send_seeded(backend: Any, message: Any) -> int:
    random.seed(BOUNDARY_SEED)  # the MIME boundaries come from the global random
    sent: int = backend.send_messages([message])
    return sent


def djangos_smtp_backend(server: SMTPTestServer) -> Any:
    options = {"host": server.host, "port": server.port, "timeout": 10}
    if django.VERSION >= (6, 1):  # backends come from MAILERS; creating one directly is deprecated
        with override_settings(MAILERS={"reference": {"BACKEND": DJANGO_SMTP_BACKEND, "OPTIONS": options}}):
            return mail.mailers["reference"]
    return mail.get_connection(DJANGO_SMTP_BACKEND, **options)


def through_djangos_smtp_backend(server: SMTPTestServer, message: Any) -> ReceivedMessage:
    """What Django's own SMTP backend puts on the wire for ``message``: the reference."""
    before = len(server.messages)
    assert send_seeded(djangos_smtp_backend(server), message) == 1
    return server.wait_for_messages(before + 1)[before]


def assert_same_on_the_wire(ours: ReceivedMessage, djangos: ReceivedMessage) -> None:
    assert (ours.mail_from, ours.rcpt_tos) == (djangos.mail_from, djangos.rcpt_tos)
    assert ours.content == djangos.content


# --- Byte for byte, as Django built them ----------------------------------------------------------


def test_send_mail_reaches_the_sink_byte_for_byte(fleet: SMTPTestServer) -> None:
    args = ("Grüße from Django", "Body with ünïcode ✓\n", "App <app@example.com>", ["to@example.com"])
    assert mail.send_mail(*args) == 1
    ours = fleet.wait_for_messages(1, timeout=DELIVERY_TIMEOUT)[0]
    stamped = ours.message()  # send_mail() cannot take headers: reuse the Date and Message-ID it got
    reference = mail.EmailMultiAlternatives(
        *args, headers={"Date": str(stamped["Date"]), "Message-ID": str(stamped["Message-ID"])}
    )
    assert_same_on_the_wire(ours, through_djangos_smtp_backend(fleet, reference))


def test_inline_image_and_attachments_reach_the_sink_byte_for_byte(fleet: SMTPTestServer) -> None:
    message = mail.EmailMultiAlternatives(
        "Your report", "See the logo.\n", "App <app@example.com>", ["Ann <ann@example.com>"],
        cc=["cc@example.com"], bcc=["hidden@bücher.example"],
        headers={"Date": DATE, "Message-ID": email.utils.make_msgid(domain="example.com")},
    )
    message.attach_alternative('<p>Logo: <img src="cid:logo@example.com"></p>', "text/html")
    message.attach(inline_image("<logo@example.com>"))
    message.attach("report.csv", "a,b\n1,2\n", "text/csv")
    message.attach("data.bin", bytes(range(256)), "application/octet-stream")

    assert send_seeded(EmailBackend(), message) == 1
    message.delivery.get(timeout=DELIVERY_TIMEOUT)
    ours = fleet.wait_for_messages(1)[0]
    assert_same_on_the_wire(ours, through_djangos_smtp_backend(fleet, message))
    assert ours.rcpt_tos == ["ann@example.com", "cc@example.com", "hidden@xn--bcher-kva.example"]
    image = next(part for part in ours.message().walk() if part.get_content_type() == "image/png")
    assert (image["Content-ID"], image.get_content()) == ("<logo@example.com>", PNG)


# --- The backend's contract ---------------------------------------------------------------------


def test_send_messages_returns_the_count_of_messages_enqueued(fleet: SMTPTestServer) -> None:
    messages = [mail.EmailMessage(f"Message {n}", "Body", "app@example.com", [f"user{n}@example.com"])
                for n in range(3)]
    nobody = mail.EmailMessage("Nobody", "Body", "app@example.com", [])
    sent = EmailBackend().send_messages([*messages, nobody])
    assert sent == 3 and isinstance(sent, int)
    fleet.wait_for_messages(3, timeout=DELIVERY_TIMEOUT)
    assert not hasattr(nobody, "delivery")


def test_every_message_gets_a_delivery_handle_with_its_report(fleet: SMTPTestServer) -> None:
    message = mail.EmailMessage("Tracked", "Body", "app@example.com", ["a@example.com", "b@example.com"])
    assert message.send() == 1  # through Django's default mailer/connection: our backend
    delivery = message.delivery
    assert isinstance(delivery, Delivery)
    assert delivery.message_id == str(fleet.wait_for_messages(1)[0].message()["Message-ID"])
    report = delivery.message_report(timeout=DELIVERY_TIMEOUT)
    assert report["status"] == "sent"
    assert {address: detail["status"] for address, detail in report["recipients"].items()} == {
        "a@example.com": "accepted", "b@example.com": "accepted"}


def test_mail_admins_reaches_the_sink_through_djangos_admin_email_handler(fleet: SMTPTestServer) -> None:
    logging.getLogger("django.request").error("Internal Server Error: /checkout/")
    received = fleet.wait_for_messages(1, timeout=DELIVERY_TIMEOUT)[0]
    assert (received.mail_from, received.rcpt_tos) == ("server@example.com", ["ops@example.com"])
    assert received.message()["Subject"] == "[Django] ERROR: Internal Server Error: /checkout/"


# --- The same payload and the same task as the queue backend -----------------------------------------


def test_the_task_and_payload_are_the_queue_backends(django_broker: str, redis_client: redis.Redis) -> None:
    ours = mail.EmailMessage("Same", "Body", "app@example.com", ["to@example.com"])
    theirs = MailqueueMessage("Same", "Body", "app@example.com", ["to@example.com"])
    assert EmailBackend().send_messages([ours]) == 1
    assert QueueBackend(broker_url=django_broker).send_messages([theirs]) == 1
    django_task, queue_task = queued_tasks(redis_client)
    assert django_task.headers["task"] == queue_task.headers["task"] == DELIVER_TASK
    assert django_task.headers.keys() == queue_task.headers.keys()
    assert django_task.properties.keys() == queue_task.properties.keys()
    [payload], [reference] = django_task.payloads, queue_task.payloads
    assert payload.keys() == reference.keys()
    envelope = Envelope.from_payload(payload)
    assert (envelope.message_id, envelope.sender, envelope.recipients) == (
        ours.delivery.message_id, "app@example.com", ("to@example.com",))
    assert ours.delivery == Delivery(django_task.headers["id"], message_id=envelope.message_id)


def test_options_override_settings(django_broker: str, redis_client: redis.Redis) -> None:
    backend = EmailBackend(queue="django-mail", batch_size=1)
    messages = [mail.EmailMessage(f"M{n}", "Body", "app@example.com", ["to@example.com"]) for n in range(2)]
    assert backend.send_messages(messages) == 2
    assert [len(task.payloads) for task in queued_tasks(redis_client, "django-mail")] == [1, 1]


def test_a_backend_made_without_mailers_has_no_alias() -> None:
    assert EmailBackend().alias is None


if django.VERSION >= (6, 1):  # defined only where Django has mailers: the suite allows no skips
    BACKEND = "mailqueue.contrib.django.EmailBackend"

    def test_a_django_mailer_with_options_is_used_by_using(django_broker: str, redis_client: redis.Redis) -> None:
        bulk = {"BACKEND": BACKEND, "OPTIONS": {"queue": "django-bulk", "batch_size": 1}}
        with override_settings(MAILERS={"default": {"BACKEND": BACKEND}, "bulk": bulk}):
            assert mail.mailers["bulk"].alias == "bulk"
            datatuple = [(f"M{n}", "Body", "app@example.com", ["to@example.com"]) for n in range(2)]
            assert mail.send_mass_mail(datatuple, using="bulk") == 2
            assert mail.send_mail("One", "Body", "app@example.com", ["to@example.com"]) == 1
        assert [len(task.payloads) for task in queued_tasks(redis_client, "django-bulk")] == [1, 1]
        assert [len(task.payloads) for task in queued_tasks(redis_client)] == [1]

    def test_a_django_mailer_with_an_unknown_option_is_djangos_invalid_mailer() -> None:
        from django.core.mail import InvalidMailer

        with override_settings(MAILERS={"default": {"BACKEND": BACKEND, "OPTIONS": {"colour": "red"}}}):
            with pytest.raises(InvalidMailer, match=r"MAILERS\['default'\]: Unknown options 'colour'\."):
                assert mail.mailers.default


# --- Settings come from django.conf.settings ---------------------------------------------------------


@override_settings(MAILQUEUE_MAX_MESSAGE_SIZE=300)
def test_mailqueue_settings_are_read_from_djangos_settings(django_broker: str, redis_client: redis.Redis) -> None:
    message = mail.EmailMessage("Big", "x" * 1000, "app@example.com", ["to@example.com"])
    with pytest.raises(MessageTooLarge, match="MAILQUEUE_MAX_MESSAGE_SIZE"):
        message.send()
    assert queued_tasks(redis_client) == []


@pytest.mark.parametrize(
    ("subject", "to", "culprit"),
    [("Bad address", "not an address@@example.com", "not an address"),
     ("Injected\nBcc: victim@example.com", "to@example.com", "newline|linefeed")],
    ids=["bad-address", "header-injection"],
)
def test_invalid_input_raises_before_anything_is_enqueued(
    subject: str, to: str, culprit: str, django_broker: str, redis_client: redis.Redis
) -> None:
    good = mail.EmailMessage("Good", "Body", "app@example.com", ["to@example.com"])
    bad = mail.EmailMessage(subject, "Body", "app@example.com", [to])
    with pytest.raises(ValueError, match=culprit):
        EmailBackend().send_messages([good, bad])
    assert queued_tasks(redis_client) == []
    assert not hasattr(good, "delivery")


# --- MAILQUEUE_ON_COMMIT ----------------------------------------------------------------------------


@override_settings(MAILQUEUE_ON_COMMIT=True)
def test_a_rolled_back_transaction_sends_nothing_with_on_commit(fleet: SMTPTestServer) -> None:
    rolled_back = mail.EmailMessage("Rolled back", "Body", "app@example.com", ["to@example.com"])
    committed = mail.EmailMessage("Committed", "Body", "app@example.com", ["to@example.com"])
    with pytest.raises(Rollback), transaction.atomic():
        assert rolled_back.send() == 1
        raise Rollback
    with transaction.atomic():
        assert committed.send() == 1
        assert not hasattr(committed, "delivery")  # nothing is on the broker before the commit
    # The worker takes tasks in order: had the rolled-back mail been enqueued, it would be there too.
    assert committed.delivery.message_report(timeout=DELIVERY_TIMEOUT)["status"] == "sent"
    assert [received.message()["Subject"] for received in fleet.messages] == ["Committed"]
    assert not hasattr(rolled_back, "delivery")


def test_without_on_commit_mail_is_enqueued_inside_the_transaction(
    django_broker: str, redis_client: redis.Redis
) -> None:
    message = mail.EmailMessage("Now", "Body", "app@example.com", ["to@example.com"])
    with pytest.raises(Rollback), transaction.atomic():
        message.send()
        assert len(queued_tasks(redis_client)) == 1
        raise Rollback
    assert isinstance(message.delivery, Delivery)


# --- A broker that is down -------------------------------------------------------------------------


def test_a_broker_that_is_down_gives_a_clear_error() -> None:
    url = dead_broker_url()
    with override_settings(MAILQUEUE_BROKER_URL=url), pytest.raises(BrokerUnavailable) as raised:
        mail.send_mail("Lost?", "Body", "app@example.com", ["to@example.com"])
    assert isinstance(raised.value, ConnectionError)
    assert re.search(rf"Could not enqueue on the broker at {re.escape(url)}.*MAILQUEUE_BROKER_URL", str(raised.value))


def test_a_broker_that_is_down_with_fail_silently_sends_nothing() -> None:
    message = mail.EmailMessage("Lost?", "Body", "app@example.com", ["to@example.com"])
    with override_settings(MAILQUEUE_BROKER_URL=dead_broker_url()):
        assert EmailBackend(fail_silently=True).send_messages([message]) == 0
    assert not hasattr(message, "delivery")


@override_settings(MAILQUEUE_ON_COMMIT=True)
def test_a_broker_that_is_down_at_commit_raises_from_the_commit() -> None:
    message = mail.EmailMessage("Lost?", "Body", "app@example.com", ["to@example.com"])
    with override_settings(MAILQUEUE_BROKER_URL=dead_broker_url()), pytest.raises(BrokerUnavailable):  # noqa: PT012
        with transaction.atomic():
            assert message.send() == 1


@override_settings(MAILQUEUE_ON_COMMIT=True)
def test_on_commit_outside_a_transaction_with_fail_silently_and_the_broker_down_returns_0() -> None:
    message = mail.EmailMessage("Lost?", "Body", "app@example.com", ["to@example.com"])
    with override_settings(MAILQUEUE_BROKER_URL=dead_broker_url()):
        assert EmailBackend(fail_silently=True).send_messages([message]) == 0
    assert not hasattr(message, "delivery")


@override_settings(MAILQUEUE_ON_COMMIT=True)
def test_in_a_testcase_capture_on_commit_callbacks_publishes_and_gives_the_delivery(fleet: SMTPTestServer) -> None:
    """The README's way to test code that sends with MAILQUEUE_ON_COMMIT inside django.test.TestCase."""
    from django.test import TestCase

    message = mail.EmailMessage("In a test", "Body", "app@example.com", ["to@example.com"])
    with pytest.raises(Rollback), transaction.atomic():  # what TestCase wraps every test in
        with TestCase.captureOnCommitCallbacks(execute=True) as callbacks:
            assert message.send() == 1
            assert not hasattr(message, "delivery")  # waits for the (simulated) commit
        assert len(callbacks) == 1
        assert message.delivery.message_report(timeout=DELIVERY_TIMEOUT)["status"] == "sent"
        raise Rollback
    assert [received.message()["Subject"] for received in fleet.messages] == ["In a test"]
