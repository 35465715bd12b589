"""The interface every backend implements, as Django documents it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import TracebackType

    from mailqueue.message import EmailMessage


class BaseEmailBackend:
    """Base class for email backends.

    Subclasses implement ``send_messages`` and, if they hold a connection, ``open`` and
    ``close``. ``open`` returns True only when it created the connection, so that
    ``send_messages`` closes only what it opened itself.
    """

    def __init__(self, *, fail_silently: bool = False, **kwargs: Any) -> None:
        self.fail_silently = fail_silently

    def open(self) -> bool | None:
        """Open a long-lived connection; return True if this call created it."""
        return None

    def close(self) -> None:
        """Close the connection, if any."""

    def __enter__(self) -> BaseEmailBackend:
        try:
            self.open()
        except Exception:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send messages and return how many were sent."""
        raise NotImplementedError("subclasses of BaseEmailBackend must override send_messages()")
