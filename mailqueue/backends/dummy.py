"""Dummy backend: accepts messages and does nothing with them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mailqueue.backends.base import BaseEmailBackend

if TYPE_CHECKING:
    from mailqueue.message import EmailMessage


class EmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Iterable[EmailMessage]) -> int:
        return len(list(email_messages))
