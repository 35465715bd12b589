"""The behaviour every backend shares, written once and subclassed per backend.

``ConnectionContract`` holds what even the dummy backend must do. ``MailboxContract`` adds the
checks that read back what was "sent"; a subclass provides three hooks:

- ``make_backend(**kwargs)``: a backend instance that delivers where ``mailbox()`` reads;
- ``mailbox()``: the messages delivered so far, parsed (``email.message.EmailMessage``);
- ``flush_mailbox()``: forget them.
"""

from __future__ import annotations

import email.message
from typing import Any

import pytest

from mailqueue.backends.base import BaseEmailBackend
from mailqueue.conf import override_settings
from mailqueue.mail import mail_admins, mail_managers, send_mail, send_mass_mail
from mailqueue.message import EmailMessage


class ConnectionContract:
    def make_backend(self, **kwargs: Any) -> BaseEmailBackend:
        raise NotImplementedError("subclasses provide make_backend()")

    def test_send_messages_returns_the_count(self) -> None:
        messages = [EmailMessage("Hi", "Body", "from@example.com", [f"to-{n}@example.com"]) for n in range(3)]
        assert self.make_backend().send_messages(messages) == 3

    def test_send_messages_accepts_an_iterator(self) -> None:
        messages = iter([EmailMessage(to=["one@example.com"]), EmailMessage(to=["two@example.com"])])
        assert self.make_backend().send_messages(messages) == 2  # type: ignore[arg-type]

    def test_send_messages_of_an_empty_list_returns_zero(self) -> None:
        assert self.make_backend().send_messages([]) == 0

    def test_close_without_open_is_harmless(self) -> None:
        self.make_backend().close()

    def test_context_manager_opens_then_closes(self) -> None:
        backend = self.make_backend()
        calls: list[str] = []
        real_open, real_close = backend.open, backend.close

        def recording_open() -> bool | None:
            calls.append("open")
            return real_open()

        def recording_close() -> None:
            calls.append("close")
            real_close()

        backend.open, backend.close = recording_open, recording_close  # type: ignore[method-assign]
        with backend as entered:
            assert entered is backend
            assert calls == ["open"]
            entered.send_messages([EmailMessage(to=["to@example.com"])])
            assert "close" not in calls
        assert calls[-1] == "close"

    @pytest.mark.parametrize("fail_silently", [True, False])
    def test_fail_silently_is_kept(self, fail_silently: bool) -> None:
        assert self.make_backend(fail_silently=fail_silently).fail_silently is fail_silently

    def test_send_mail_through_the_backend_returns_one(self) -> None:
        connection = self.make_backend()
        assert send_mail("Subject", "Body", "from@example.com", ["to@example.com"], connection=connection) == 1


class MailboxContract(ConnectionContract):
    def mailbox(self) -> list[email.message.EmailMessage]:
        raise NotImplementedError("subclasses provide mailbox()")

    def flush_mailbox(self) -> None:
        raise NotImplementedError("subclasses provide flush_mailbox()")

    def the_message(self) -> email.message.EmailMessage:
        mailbox = self.mailbox()
        assert len(mailbox) == 1, f"expected one message, got {len(mailbox)}"
        return mailbox[0]

    def test_send_delivers_subject_body_and_addresses(self) -> None:
        message = EmailMessage("Subject", "Content\n", "from@example.com", ["to@example.com"])
        assert self.make_backend().send_messages([message]) == 1
        sent = self.the_message()
        assert sent["Subject"] == "Subject"
        assert sent.get_content() == "Content\n"
        assert sent["From"] == "from@example.com"
        assert sent.get_all("To") == ["to@example.com"]

    def test_send_keeps_non_ascii_subject_and_body(self) -> None:
        message = EmailMessage("Chère maman", "Je t'aime très fort\n", "from@example.com", ["to@example.com"])
        self.make_backend().send_messages([message])
        sent = self.the_message()
        assert sent["Subject"] == "Chère maman"
        assert sent.get_content() == "Je t'aime très fort\n"

    def test_send_many_delivers_in_order(self) -> None:
        backend = self.make_backend()
        backend.send_messages([EmailMessage(to=["to-1@example.com"]), EmailMessage(to=["to-2@example.com"])])
        assert [m["To"] for m in self.mailbox()] == ["to-1@example.com", "to-2@example.com"]

    def test_flush_mailbox_empties_it(self) -> None:
        self.make_backend().send_messages([EmailMessage(to=["to@example.com"])])
        self.flush_mailbox()
        assert self.mailbox() == []

    def test_bcc_is_not_in_the_headers(self) -> None:
        message = EmailMessage(to=["to@example.com"], bcc=["hidden@example.com"])
        self.make_backend().send_messages([message])
        assert "Bcc" not in self.the_message()

    def test_cc_is_in_the_headers(self) -> None:
        message = EmailMessage(to=["to@example.com"], cc=["cc@example.com"])
        self.make_backend().send_messages([message])
        assert self.the_message()["Cc"] == "cc@example.com"

    def test_non_ascii_domain_is_punycoded_in_headers(self) -> None:
        message = EmailMessage("Subject", "Body", "from@öäü.com", ["to@öäü.com"])
        self.make_backend().send_messages([message])
        sent = self.the_message()
        assert sent["From"] == "from@xn--4ca9at.com"
        assert sent["To"] == "to@xn--4ca9at.com"

    def test_recipient_without_domain_is_accepted(self) -> None:
        message = EmailMessage("Subject", "Body", "tester", ["django"])
        assert self.make_backend().send_messages([message]) == 1
        sent = self.the_message()
        assert sent["From"] == "tester"
        assert sent["To"] == "django"

    def test_newline_in_subject_raises_value_error(self) -> None:
        message = EmailMessage("Subject\nInjected: yes", "Body", "from@example.com", ["to@example.com"])
        with pytest.raises(ValueError):
            self.make_backend().send_messages([message])
        assert self.mailbox() == []

    def test_send_mail_with_html_message_sends_an_alternative(self) -> None:
        send_mail("Subject", "Text", "from@example.com", ["to@example.com"],
                  html_message="<p>HTML</p>", connection=self.make_backend())
        sent = self.the_message()
        assert sent.get_content_type() == "multipart/alternative"
        assert sent.get_body(("html",)).get_content() == "<p>HTML</p>\n"  # type: ignore[union-attr]
        assert sent.get_body(("plain",)).get_content() == "Text\n"  # type: ignore[union-attr]

    def test_send_mass_mail_sends_one_message_per_tuple(self) -> None:
        datatuple = (
            ("Subject 1", "Body 1", "from@example.com", ["one@example.com", "two@example.com"]),
            ("Subject 2", "Body 2", None, ["three@example.com"]),
        )
        assert send_mass_mail(datatuple, connection=self.make_backend()) == 2
        first, second = self.mailbox()
        assert first["To"] == "one@example.com, two@example.com"
        assert second["Subject"] == "Subject 2"
        assert second["From"] == "webmaster@localhost"

    @override_settings(ADMINS=["admin@example.com"], MANAGERS=["manager@example.com"],
                       SERVER_EMAIL="server@example.com")
    def test_mail_admins_and_managers_use_prefix_and_server_email(self) -> None:
        connection = self.make_backend()
        mail_admins("Alert", "Content", connection=connection)
        mail_managers("Report", "Content", connection=connection)
        admins, managers = self.mailbox()
        assert (admins["Subject"], admins["To"]) == ("[Django] Alert", "admin@example.com")
        assert (managers["Subject"], managers["To"]) == ("[Django] Report", "manager@example.com")
        assert admins["From"] == managers["From"] == "server@example.com"
