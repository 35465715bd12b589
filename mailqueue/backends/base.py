"""The interface every backend implements, as Django documents it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from mailqueue.deprecation import (
    FAIL_SILENTLY_ATTRIBUTE_WARNING,
    NOT_PROVIDED,
    handles_fail_silently,
    unknown_backend_options,
    warn_about_external_use,
)
from mailqueue.exceptions import InvalidMailer, SchedulingUnsupported

if TYPE_CHECKING:
    from types import TracebackType

    from mailqueue.message import EmailMessage


class BaseEmailBackend:
    """Base class for email backends.

    Subclasses implement ``send_messages`` and, if they hold a connection, ``open`` and
    ``close``. ``open`` returns True only when it created the connection, so that
    ``send_messages`` closes only what it opened itself.

    A backend that does not set ``supports_send_at`` refuses, before sending anything, a batch
    holding a message whose ``send_at`` is set (``SchedulingUnsupported``): it would send it
    early. The check wraps each subclass's own ``send_messages``, so a third-party backend
    that knows nothing of scheduling gets it too.
    """

    supports_send_at = False  # True: the backend honours send_at (queue), or keeps it (locmem, dummy)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        send = cls.__dict__.get("send_messages")
        if send is not None and not cls.supports_send_at:
            cls.send_messages = _refusing_scheduled(send)  # type: ignore[method-assign, assignment]

    _fail_silently = False
    _own_fail_silently = False  # True once the backend sets its own fail_silently

    def __init__(
        self,
        fail_silently: Any = NOT_PROVIDED,
        *,
        alias: str | None = None,
        _ignore_unknown_kwargs: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """``alias`` is the MAILERS name this backend was created for (None: made directly).

        Subclasses pass ``alias`` and the keyword arguments they do not know on to here: for a
        mailer they are OPTIONS that do not exist (InvalidMailer naming them); otherwise they
        are ignored with Django's warning. ``fail_silently`` is an option of mailqueue's own
        backends; Django 6.1 deprecates it here, for any other subclass (and by position).
        ``_ignore_unknown_kwargs`` are get_connection()'s extra options: ignored, as in Django.
        """
        self.alias = alias
        if fail_silently is not NOT_PROVIDED:
            if handles_fail_silently(type(self)):
                self.fail_silently = fail_silently
            else:
                self._fail_silently = fail_silently
                kwargs["fail_silently"] = fail_silently  # reported below, as Django reports it
        for ignored in _ignore_unknown_kwargs or ():
            kwargs.pop(ignored, None)
        if kwargs:
            names = ", ".join(repr(key) for key in kwargs)
            if alias is not None:
                raise InvalidMailer(f"Unknown options {names}.", alias=alias)
            unknown_backend_options(self, names)

    @property
    def fail_silently(self) -> bool:
        """Whether errors pass silently; Django 6.1 deprecates it on backends that do not set their own."""
        if not self._own_fail_silently:
            warn_about_external_use(FAIL_SILENTLY_ATTRIBUTE_WARNING)
        return self._fail_silently

    @fail_silently.setter
    def fail_silently(self, value: bool) -> None:
        self._fail_silently, self._own_fail_silently = value, True

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


SendMessages = Callable[[Any, Sequence["EmailMessage"]], int]


def _refusing_scheduled(send: SendMessages) -> SendMessages:
    @functools.wraps(send)
    def send_messages(self: BaseEmailBackend, email_messages: Iterable[EmailMessage]) -> int:
        messages = list(email_messages)
        for message in messages:
            send_at = getattr(message, "send_at", None)
            if send_at is not None:
                raise SchedulingUnsupported(
                    f"{type(self).__module__}.{type(self).__name__} cannot hold a message until its "
                    f"send_at ({send_at.isoformat()}), so nothing was sent: use the queue backend "
                    "(mailqueue.backends.queue.EmailBackend) for scheduled mail, or set send_at to None.")
        return send(self, messages)

    return send_messages
