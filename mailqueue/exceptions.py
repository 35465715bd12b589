"""One rooted error tree: catch ``MailQueueError`` to catch everything mailqueue raises.

Built-in bases are added where they fit, so callers can catch ``ValueError`` or
``ConnectionError`` without importing mailqueue.
"""

from __future__ import annotations

from typing import Any


class MailQueueError(Exception):
    """Root of every error mailqueue raises on purpose."""


class ImproperlyConfigured(MailQueueError):
    """A setting is missing, malformed or contradicts another one."""


class InvalidMessage(MailQueueError, ValueError):
    """A message cannot be sent as given (header injection, bad address, ...)."""


class SchedulingUnsupported(InvalidMessage):
    """A message with ``send_at`` went to a backend that cannot hold it until then (it would send it early)."""


class MessageTooLarge(InvalidMessage):
    """The serialized message exceeds MAILQUEUE_MAX_MESSAGE_SIZE."""


class BrokerUnavailable(MailQueueError, ConnectionError):
    """The broker could not be reached, so nothing was enqueued."""


class BrokerFull(BrokerUnavailable):
    """The broker's Redis is above its high-water mark (MAILQUEUE_BROKER_MAX_MEMORY_FRACTION of
    maxmemory), so nothing was enqueued: the room left is the fleet's, to finish what it holds."""

    def __init__(self, message: str, *, used: int, maximum: int, limit: int) -> None:
        super().__init__(message)
        self.used = used
        self.maximum = maximum
        self.limit = limit


class DeliveryTimeout(MailQueueError, TimeoutError):
    """``Delivery.get(timeout=...)`` gave up before the final report arrived."""


class DeliveryFailed(MailQueueError):
    """A delivery task ended with messages that failed for good (they are dead letters).

    The workers end such a task with this error, so that Flower and ``celery events`` show it
    as failed; ``report`` is the whole delivery report all the same, and ``Delivery.get()``
    returns it instead of raising. It travels through the result backend as JSON (the report
    is its only argument).
    """

    def __init__(self, report: dict[str, Any] | None = None, *args: object) -> None:
        super().__init__(report, *args)
        self.report: dict[str, Any] = report if isinstance(report, dict) else {}

    def __str__(self) -> str:
        failed, total = self.report.get("failed", "?"), len(self.report.get("messages") or {})
        return f"{failed} of {total} message(s) failed for good and were dead-lettered (see the report)"


class UnknownDelivery(MailQueueError, LookupError):
    """No delivery (task id, dead letter) is known under the given id."""


class UnsupportedPayload(MailQueueError, ValueError):
    """A task payload is not in a wire-format version this code understands."""


class InvalidMailer(ImproperlyConfigured):
    """A MAILERS entry is misconfigured (unknown BACKEND, unknown or missing OPTIONS)."""

    def __init__(self, message: str, *, alias: str | None = None) -> None:
        if alias is not None:
            message = f"MAILERS[{alias!r}]: {message}"
        super().__init__(message)
        self.alias = alias


class MailerDoesNotExist(InvalidMailer, KeyError):
    """No MAILERS entry has this alias."""

    def __init__(self, *, alias: str) -> None:
        super().__init__(f"The mailer '{alias}' is not configured.")
        self.alias = alias
