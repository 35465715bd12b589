from __future__ import annotations

from typing import Any

import pytest

from mailqueue.backends import dummy
from mailqueue.deprecation import RemovedInDjango2028Warning
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


def test_fail_silently_is_deprecated_on_the_dummy_backend_as_in_django() -> None:
    # Django 6.1's dummy backend passes it on to BaseEmailBackend, which deprecates it.
    with pytest.warns(RemovedInDjango2028Warning, match=r"^mailqueue\.backends\.dummy\.EmailBackend\.__init__\(\) "
                                                         r"does not support 'fail_silently'\."):
        backend = dummy.EmailBackend(True)
    with pytest.warns(RemovedInDjango2028Warning, match=r"^BaseEmailBackend\.fail_silently is deprecated\."):
        assert backend.fail_silently is True
    with pytest.raises(TypeError):
        dummy.EmailBackend(True, None)  # type: ignore[call-arg]
