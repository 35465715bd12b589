"""One rooted error tree: catch ``MailQueueError`` to catch everything mailqueue raises.

Built-in bases are added where they fit, so callers can catch ``ValueError`` or
``ConnectionError`` without importing mailqueue.
"""

from __future__ import annotations


class MailQueueError(Exception):
    """Root of every error mailqueue raises on purpose."""


class ImproperlyConfigured(MailQueueError):
    """A setting is missing, malformed or contradicts another one."""


class InvalidMessage(MailQueueError, ValueError):
    """A message cannot be sent as given (header injection, bad address, ...)."""


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


class UnknownDelivery(MailQueueError, LookupError):
    """No delivery (task id, dead letter) is known under the given id."""


class UnsupportedPayload(MailQueueError, ValueError):
    """A task payload is not in a wire-format version this code understands."""
