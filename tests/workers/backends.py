"""Delivery backends that misbehave on purpose, selected through MAILQUEUE_DELIVERY_BACKEND."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailqueue.backends.smtp import EmailBackend
from mailqueue.outcomes import RecipientOutcome


class ExplodingBackend(EmailBackend):
    """A real SMTP backend whose send_serialized hits a bug: the task must not lose the mail."""

    def send_serialized(
        self, message: bytes, *, sender: str, recipients: Sequence[str]
    ) -> list[RecipientOutcome]:
        raise RuntimeError("bug in the delivery backend")

    def send_serialized_many(self, items: Sequence[tuple[bytes, str, Sequence[str]]], **kwargs: Any
                             ) -> list[list[RecipientOutcome]]:
        raise RuntimeError("bug in the delivery backend")
