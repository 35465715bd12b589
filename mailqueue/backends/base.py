"""The interface every backend implements, as Django documents it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mailqueue.deprecation import unknown_backend_options
from mailqueue.exceptions import InvalidMailer

if TYPE_CHECKING:
    from types import TracebackType

    from mailqueue.message import EmailMessage


class BaseEmailBackend:
    """Base class for email backends.

    Subclasses implement ``send_messages`` and, if they hold a connection, ``open`` and
    ``close``. ``open`` returns True only when it created the connection, so that
    ``send_messages`` closes only what it opened itself.
    """

    def __init__(self, *, fail_silently: bool = False, alias: str | None = None, **kwargs: Any) -> None:
        """``alias`` is the MAILERS name this backend was created for (None: made directly).

        Subclasses pass ``alias`` and the keyword arguments they do not know on to here: for a
        mailer they are OPTIONS that do not exist (InvalidMailer naming them); otherwise they
        are ignored with Django's warning.
        """
        self.fail_silently = fail_silently
        self.alias = alias
        if kwargs:
            names = ", ".join(repr(key) for key in kwargs)
            if alias is not None:
                raise InvalidMailer(f"Unknown options {names}.", alias=alias)
            unknown_backend_options(self, names)

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
