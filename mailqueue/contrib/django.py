"""A Django email backend that hands messages to mailqueue's worker fleet.

One setting switches a Django project over::

    EMAIL_BACKEND = "mailqueue.contrib.django.EmailBackend"                       # Django 4.2 - 6.0
    MAILERS = {"default": {"BACKEND": "mailqueue.contrib.django.EmailBackend"}}  # Django 6.1+

Django builds each message exactly as its own SMTP backend would: the same bytes, the same
envelope. From there on the path is the queue backend's own (``mailqueue.backends.queue``):
the same payload, the same task, the same ``delivery`` handle, so the workers cannot tell
the two apart. With MAILQUEUE_ON_COMMIT, publishing waits for the database transaction to
commit, so mail about a rolled-back change is never sent.

This is the only module of mailqueue that imports Django.
"""

from __future__ import annotations

import email.policy
import logging
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import django
from django.conf import settings as django_settings
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction

from mailqueue.backends.queue import EmailBackend as QueueBackend
from mailqueue.conf import settings
from mailqueue.exceptions import MessageTooLarge
from mailqueue.message.addresses import envelope_address
from mailqueue.queue.envelope import Envelope

__all__ = ["EmailBackend", "envelope_for"]

logger = logging.getLogger(__name__)

# Django 6.0 builds messages with the modern email API: message(policy=email.policy.SMTP).
HAS_MESSAGE_POLICY = django.VERSION >= (6, 0)
HAS_MAILERS = django.VERSION >= (6, 1)  # MAILERS, using= and backends that know their alias

Accepted = tuple[Any, Envelope]  # a Django EmailMessage and its envelope


def envelope_for(message: Any, *, max_size: int) -> Envelope:
    """The envelope of a Django EmailMessage, with the bytes Django's own SMTP backend would send.

    Built here rather than by ``Envelope.from_email_message``, whose fast path may write
    mailqueue's messages itself: these bytes must be Django's. Raises, before anything is
    enqueued, for what cannot be sent: a bad address, a header injection, a message larger
    than ``max_size`` bytes.
    """
    raw, message_id = djangos_bytes(message)
    if len(raw) > max_size:
        raise MessageTooLarge(
            f"Message {message_id} is {len(raw)} bytes, larger than MAILQUEUE_MAX_MESSAGE_SIZE ({max_size} bytes)."
        )
    return Envelope(
        message_id=message_id,
        sender=envelope_address(str(message.from_email)),
        recipients=tuple(envelope_address(str(address)) for address in message.recipients()),
        message=raw,
        enqueued_at=time.time(),
    )


def djangos_bytes(message: Any) -> tuple[bytes, str]:
    """The RFC 5322 bytes and Message-ID, built as the running Django's SMTP backend builds them."""
    if HAS_MESSAGE_POLICY:
        built = message.message(policy=email.policy.SMTP)
        return built.as_bytes(), str(built["Message-ID"])
    built = message.message()  # Django 4.2 and 5.2: the legacy email API, with CRLF line ends
    return built.as_bytes(linesep="\r\n"), str(built["Message-ID"])


class DjangoMessageQueue(QueueBackend):
    """The queue backend, fed with Django's messages: only their serialization differs."""

    def serialize(self, email_messages: Sequence[Any]) -> list[Accepted]:
        return [
            (message, envelope_for(message, max_size=self.max_message_size))
            for message in email_messages
            if message.recipients()
        ]


class EmailBackend(BaseEmailBackend):
    """Enqueue Django's messages for mailqueue's workers instead of sending them.

    Settings (MAILQUEUE_* and EMAIL_*) are read from ``django.conf.settings``; environment
    variables still win, as everywhere in mailqueue. Keyword arguments (or the OPTIONS of a
    Django 6.1 MAILERS entry) override settings for this backend: ``broker_url``, ``queue``,
    ``batch_size``, ``max_message_size`` and ``on_commit`` (MAILQUEUE_ON_COMMIT).
    """

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        broker_url: str | None = None,
        queue: str | None = None,
        batch_size: int | None = None,
        max_message_size: int | None = None,
        on_commit: bool | None = None,
        alias: str | None = None,
        **kwargs: Any,
    ) -> None:
        # fail_silently is ours to keep: Django 6.1 deprecates it on BaseEmailBackend.
        if HAS_MAILERS:  # Django 6.1 checks the alias and refuses unknown OPTIONS, naming the mailer
            kwargs["alias"] = alias
        super().__init__(**kwargs)
        self.alias = alias  # the MAILERS entry (Django 6.1+); None when made by get_connection()
        self.fail_silently = fail_silently
        settings.read_from(django_settings)
        self.on_commit: bool = settings.MAILQUEUE_ON_COMMIT if on_commit is None else on_commit
        self.queue_backend = DjangoMessageQueue(
            fail_silently=fail_silently, broker_url=broker_url, queue=queue,
            batch_size=batch_size, max_message_size=max_message_size,
        )

    def open(self) -> bool:
        return self.queue_backend.open()

    def close(self) -> None:
        self.queue_backend.close()

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        """Enqueue the messages (or schedule them for the commit) and return how many.

        Every message is serialized and checked now, so bad input raises here even when
        publishing waits for the commit. Messages without recipients are not counted.
        """
        if not email_messages:
            return 0
        accepted = self.queue_backend.serialize(email_messages)
        if not accepted:
            return 0
        if self.on_commit and transaction.get_connection().in_atomic_block:
            transaction.on_commit(partial(self._publish_after_commit, accepted))
            return len(accepted)  # scheduled; the broker is reached at the commit
        # Outside a transaction on_commit() would publish at once anyway: do it here, so the
        # count is what was enqueued (0 with fail_silently and the broker down, as documented).
        return self.queue_backend.publish(accepted)

    def _publish_after_commit(self, accepted: list[Accepted]) -> None:
        """Runs when the transaction commits; an unreachable broker raises from the commit."""
        enqueued = self.queue_backend.publish(accepted)
        if enqueued < len(accepted):  # only with fail_silently: the caller cannot learn it otherwise
            logger.error("mailqueue: %d of %d committed messages were not enqueued.", len(accepted) - enqueued,
                         len(accepted))
