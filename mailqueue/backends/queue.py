"""The queue backend: ``send_messages`` returns once the messages are safely on the broker.

Every message is validated and serialized first (bad addresses, header injection, an
oversize message: the caller gets the error and nothing is enqueued). The payloads then
go to the broker in tasks of at most MAILQUEUE_BATCH_SIZE messages and
MAILQUEUE_BATCH_MAX_BYTES bytes, and each accepted message gets a ``delivery`` handle
(``mailqueue.queue.delivery.Delivery``).

Workers deliver them (``celery -A workers worker``); this module never imports them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mailqueue.backends.base import BaseEmailBackend
from mailqueue.conf import settings
from mailqueue.exceptions import BrokerUnavailable
from mailqueue.queue.delivery import Delivery
from mailqueue.queue.envelope import DEFAULT_RELAY, Envelope, check_relay_name
from mailqueue.queue.priority import DEFAULT_PRIORITY, check_priority
from mailqueue.queue.producer import Publisher, get_publisher
from mailqueue.queue.schedule import due_time

if TYPE_CHECKING:
    from mailqueue.message import EmailMessage

__all__ = ["EmailBackend"]

DELIVERY_ATTRIBUTE = "delivery"  # set on every message this backend enqueues

Accepted = tuple["EmailMessage", Envelope]
Batch = list[Accepted]


class EmailBackend(BaseEmailBackend):
    """Enqueue messages for the worker fleet instead of sending them.

    Keyword arguments override the settings for this backend: ``broker_url``
    (MAILQUEUE_BROKER_URL), ``queue`` (MAILQUEUE_QUEUE), ``batch_size``
    (MAILQUEUE_BATCH_SIZE) and ``max_message_size`` (MAILQUEUE_MAX_MESSAGE_SIZE).
    ``relay`` names the relay the workers deliver through (one of their MAILQUEUE_RELAYS;
    "default": their EMAIL_* settings); only the name travels, never credentials.
    ``priority`` ("high", "normal" or "low") decides which waiting task a free worker takes
    first (``mailqueue.queue.priority``). A message with ``send_at`` in the future is stored
    until then (``mailqueue.queue.schedule``); one in the past is sent now.
    """

    supports_send_at = True

    def __init__(
        self,
        *,
        fail_silently: bool = False,
        broker_url: str | None = None,
        queue: str | None = None,
        batch_size: int | None = None,
        max_message_size: int | None = None,
        relay: str = DEFAULT_RELAY,
        priority: str = DEFAULT_PRIORITY,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.broker_url = broker_url or None  # resolved on first use: it may start the embedded Redis
        self.queue: str = queue or settings.MAILQUEUE_QUEUE
        self.batch_size = _positive_int("batch_size", batch_size, "MAILQUEUE_BATCH_SIZE")
        self.max_message_size = _positive_int("max_message_size", max_message_size, "MAILQUEUE_MAX_MESSAGE_SIZE")
        self.batch_max_bytes = _positive_int("batch_max_bytes", None, "MAILQUEUE_BATCH_MAX_BYTES")
        self.relay = check_relay_name(relay)
        self.priority = check_priority(priority)
        self.publisher: Publisher | None = None

    def open(self) -> bool:
        """Bind this backend to the process's pooled publisher; True if this call did it.

        Connections belong to a process-wide pool, so nothing is connected here: the
        first publish connects, and an unreachable broker is reported there.
        """
        if self.publisher is not None:
            return False
        self.publisher = get_publisher(self.broker_url)
        return True

    def close(self) -> None:
        """Unbind; the pooled connections stay open for the next backend."""
        self.publisher = None

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Enqueue the messages and return how many were enqueued."""
        if not email_messages:
            return 0
        return self.publish(self.serialize(email_messages))

    def serialize(self, email_messages: Sequence[EmailMessage]) -> list[Accepted]:
        """Build and check every message once, before anything is enqueued.

        Messages without recipients are skipped, as Django's SMTP backend does.
        """
        return [
            (message, Envelope.from_email_message(message, max_size=self.max_message_size, relay=self.relay))
            for message in email_messages
            if message.recipients()
        ]

    def publish(self, accepted: list[Accepted]) -> int:
        """Enqueue messages serialized earlier; each enqueued one gets its ``delivery``."""
        if not accepted:
            return 0
        new_connection = self.open()
        try:
            return self._publish(accepted)
        finally:
            if new_connection:
                self.close()

    def _publish(self, accepted: list[Accepted]) -> int:
        enqueued = 0
        for due, batch in _batches(accepted, self.batch_size, self.batch_max_bytes):
            task_id = str(uuid.uuid4())
            try:
                self._send(batch, task_id=task_id, due=due)
            except BrokerUnavailable as error:
                if self.fail_silently:
                    return enqueued
                if enqueued:
                    error.add_note(f"{enqueued} of {len(accepted)} messages had been enqueued (those have a delivery).")
                raise
            for message, envelope in batch:
                # setattr: the attribute is the backend's addition to the message API
                setattr(message, DELIVERY_ATTRIBUTE, Delivery(task_id, message_id=envelope.message_id,
                                                              broker_url=self.broker_url))
            enqueued += len(batch)
        return enqueued

    def _send(self, batch: Batch, *, task_id: str, due: float | None) -> None:
        assert self.publisher is not None
        payloads = [envelope.to_payload() for _, envelope in batch]
        if due is None:
            self.publisher.publish(payloads, task_id=task_id, queue=self.queue, priority=self.priority)
        else:
            self.publisher.schedule(payloads, task_id=task_id, queue=self.queue, priority=self.priority, due=due)


def _batches(items: list[Accepted], size: int, max_bytes: int) -> Iterator[tuple[float | None, Batch]]:
    """Batches of at most ``size`` messages and ``max_bytes`` bytes of them (a larger message
    goes alone), each of messages due at the same time (None: now), in order."""
    groups: dict[float | None, Batch] = {}
    for item in items:
        groups.setdefault(due_time(getattr(item[0], "send_at", None)), []).append(item)
    for due, group in groups.items():
        batch: Batch = []
        weight = 0
        for item in group:
            nbytes = len(item[1].message)
            if batch and (len(batch) == size or weight + nbytes > max_bytes):
                yield due, batch
                batch, weight = [], 0
            batch.append(item)
            weight += nbytes
        if batch:
            yield due, batch


def _positive_int(argument: str, value: int | None, setting: str) -> int:
    """The argument if given, else the setting; either must be a positive integer."""
    chosen = getattr(settings, setting) if value is None else value
    if isinstance(chosen, bool) or not isinstance(chosen, int) or chosen < 1:
        source = setting if value is None else f"The {argument} argument"
        raise ValueError(f"{source} must be a positive integer, not {chosen!r}.")
    return chosen
