from __future__ import annotations

from typing import Any

import pytest

from mailqueue.backends import dummy
from mailqueue.message import EmailMessage
from tests.backends.contract import ConnectionContract


class TestDummyBackend(ConnectionContract):
    """The dummy backend discards messages, so only the connection contract applies."""

    def make_backend(self, **kwargs: Any) -> dummy.EmailBackend:
        return dummy.EmailBackend(**kwargs)


def test_dummy_counts_messages_it_cannot_even_build() -> None:
    # Like Django's: the dummy backend never builds the message, so nothing is validated.
    message = EmailMessage(subject="Subject\nMultiline", to=["to@example.com"])
    assert dummy.EmailBackend().send_messages([message, message]) == 2


def test_constructor_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        dummy.EmailBackend(True)  # type: ignore[call-arg]
