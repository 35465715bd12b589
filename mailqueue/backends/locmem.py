"""In-memory backend for tests: sent messages are appended to ``mailqueue.outbox``."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import mailqueue
from mailqueue.backends.base import BaseEmailBackend

if TYPE_CHECKING:
    from mailqueue.message import EmailMessage


class EmailBackend(BaseEmailBackend):
    """Keep messages in ``mailqueue.outbox`` instead of sending them (``send_at`` kept on each copy)."""

    supports_send_at = True

    # fail_silently, by position or by name, goes to the base class, which warns as Django 6.1
    # does: locmem has no failure to be silent about.
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not hasattr(mailqueue, "outbox"):
            mailqueue.outbox = []

    def send_messages(self, email_messages: Iterable[EmailMessage]) -> int:
        count = 0
        for message in email_messages:
            message.message()  # builds the message, which validates headers and addresses
            # A copy, so later changes to the caller's object do not rewrite what was "sent".
            # mailqueue.outbox is looked up each time: tests may replace the list.
            sent = copy.deepcopy(message)
            setattr(sent, "sent_using", self.alias)  # noqa: B010 - which mailer sent it, as Django's locmem records
            mailqueue.outbox.append(sent)
            count += 1
        return count
