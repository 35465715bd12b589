from __future__ import annotations

import email
import email.message
import email.policy
from collections.abc import Iterator
from typing import Any

import pytest

import mailqueue
from mailqueue.backends import locmem
from mailqueue.deprecation import RemovedInDjango2028Warning
from mailqueue.message import EmailMessage
from tests.backends.contract import MailboxContract


@pytest.fixture(autouse=True)
def empty_outbox() -> Iterator[None]:
    mailqueue.outbox = []
    yield
    mailqueue.outbox = []


class TestLocmemBackend(MailboxContract):
    def make_backend(self, **kwargs: Any) -> locmem.EmailBackend:
        return locmem.EmailBackend(**kwargs)

    def mailbox(self) -> list[email.message.EmailMessage]:
        return [m.message() for m in mailqueue.outbox]

    def flush_mailbox(self) -> None:
        mailqueue.outbox = []

    @pytest.mark.parametrize("fail_silently", [True, False])
    def test_fail_silently_is_kept(self, fail_silently: bool) -> None:
        """Kept, with Django 6.1's two warnings: locmem has nothing to be silent about."""
        with pytest.warns(RemovedInDjango2028Warning, match="does not support 'fail_silently'"):
            backend = self.make_backend(fail_silently=fail_silently)
        with pytest.warns(RemovedInDjango2028Warning, match="BaseEmailBackend.fail_silently is deprecated"):
            assert backend.fail_silently is fail_silently


def test_outbox_is_shared_by_every_instance() -> None:
    message = EmailMessage(to=["to@example.com"])
    locmem.EmailBackend().send_messages([message])
    locmem.EmailBackend().send_messages([message])
    assert len(mailqueue.outbox) == 2


def test_outbox_holds_a_copy_not_the_callers_message() -> None:
    message = EmailMessage(subject="correct subject", to=["to@example.com"])
    locmem.EmailBackend().send_messages([message])
    message.subject = "other subject"
    message.to.append("other@example.com")
    assert mailqueue.outbox[0].subject == "correct subject"
    assert mailqueue.outbox[0].to == ["to@example.com"]
    assert mailqueue.outbox[0] is not message


def test_outbox_is_looked_up_at_send_time() -> None:
    replacement: list[Any] = []
    mailqueue.outbox = replacement
    locmem.EmailBackend().send_messages([EmailMessage(to=["to@example.com"])])
    assert len(replacement) == 1


def test_invalid_message_is_not_added_to_the_outbox() -> None:
    message = EmailMessage(subject="Subject\nMultiline", to=["to@example.com"])
    with pytest.raises(ValueError):
        locmem.EmailBackend().send_messages([message])
    assert mailqueue.outbox == []


def test_fail_silently_by_position_warns_as_in_django() -> None:
    with pytest.warns(RemovedInDjango2028Warning, match="does not support 'fail_silently'"):
        locmem.EmailBackend(True)
