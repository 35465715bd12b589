"""Dummy backend: accepts messages and does nothing with them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mailqueue.backends.base import BaseEmailBackend

if TYPE_CHECKING:
    from mailqueue.message import EmailMessage


class EmailBackend(BaseEmailBackend):
    supports_send_at = True  # it sends nothing, early or late: a scheduled message is accepted like any other

    def send_messages(self, email_messages: Iterable[EmailMessage]) -> int:
        return len(list(email_messages))
