"""EmailMessage and EmailMultiAlternatives: attributes, MIME structures, recipients, send()."""

from __future__ import annotations

import copy
import email
import email.message
import email.policy
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

import mailqueue
from mailqueue.backends.base import BaseEmailBackend
from mailqueue.conf import override_settings
from mailqueue.deprecation import RemovedInDjango2028Warning
from mailqueue.message import EmailAlternative, EmailMessage, EmailMultiAlternatives
from tests.message.structure import describe, tree


def make(cls: type[EmailMessage] = EmailMessage, **kwargs: Any) -> Any:
    arguments: dict[str, Any] = {
        "subject": "Subject", "body": "Body", "from_email": "from@example.com", "to": ["to@example.com"],
    }
    return cls(**(arguments | kwargs))


def structure(message: EmailMessage) -> tuple[Any, ...]:
    return tree(describe(message.message()))


# --- Construction ------------------------------------------------------------------------------


def test_constructor_stores_every_argument() -> None:
    connection = BaseEmailBackend()
    with pytest.warns(RemovedInDjango2028Warning, match="'connection' argument is deprecated"):
        message = EmailMessage(
            "Subject", "Body", "from@example.com", ("to@example.com",), bcc=("b@example.com",),
            connection=connection, headers={"X-A": "1"}, cc=["c@example.com"], reply_to=["r@example.com"],
        )
    assert (message.subject, message.body, message.from_email) == ("Subject", "Body", "from@example.com")
    assert (message.to, message.cc, message.bcc, message.reply_to) == (
        ["to@example.com"], ["c@example.com"], ["b@example.com"], ["r@example.com"])
    with pytest.warns(RemovedInDjango2028Warning, match="connection attribute is deprecated"):
        assert (message.extra_headers, message.connection, message.attachments) == ({"X-A": "1"}, connection, [])


def test_all_arguments_are_optional() -> None:
    message = EmailMessage()
    assert (message.subject, message.body, message.to, message.recipients()) == ("", "", [], [])


def test_options_after_to_by_position_are_deprecated() -> None:
    with pytest.warns(RemovedInDjango2028Warning, match=r"^Passing positional argument\(s\) 'bcc' to EmailMessage\(\) "
                                                         r"is deprecated\. Use keyword arguments instead\.$"):
        message = EmailMessage("S", "Body", "from@example.com", ["to@example.com"], ["bcc@example.com"])  # type: ignore[misc]
    assert message.bcc == ["bcc@example.com"]


def test_recipient_lists_are_copied() -> None:
    to = ["to@example.com"]
    message = make(to=to)
    to.append("late@example.com")
    assert message.to == ["to@example.com"]


def test_from_email_falls_back_to_default_from_email_at_construction() -> None:
    with override_settings(DEFAULT_FROM_EMAIL="default@example.com"):
        message = make(from_email=None)
    assert message.from_email == "default@example.com"
    assert message.message()["From"] == "default@example.com"


def test_content_subtype_is_plain_by_default_and_can_be_html() -> None:
    message = make(body="<p>Hi</p>")
    assert message.content_subtype == "plain"
    message.content_subtype = "html"
    assert message.message().get_content_type() == "text/html"


def test_encoding_falls_back_to_default_charset() -> None:
    message = make(body="café")
    assert message.encoding is None
    with override_settings(DEFAULT_CHARSET="iso-8859-1"):
        built = message.message()
    assert (built.get_content_charset(), built.get_content()) == ("iso-8859-1", "café\n")


def test_encoding_attribute_overrides_default_charset() -> None:
    message = make(body="café")
    message.encoding = "iso-8859-15"
    assert message.message().get_content_charset() == "iso-8859-15"


def test_message_returns_a_stdlib_email_message_with_the_given_policy() -> None:
    built = make().message(policy=email.policy.SMTP)
    assert isinstance(built, email.message.EmailMessage)
    assert built.policy is email.policy.SMTP
    assert b"\r\nSubject: Subject\r\n" in built.as_bytes()


def test_message_does_not_change_the_email_message() -> None:
    message = make(EmailMultiAlternatives, cc=["c@exämple.com"], headers={"To": "list@example.com"})
    message.attach("a.txt", "text")
    message.attach_alternative("<p>Body</p>", "text/html")
    before = copy.deepcopy(message.__dict__)
    message.message()
    message.message(policy=email.policy.SMTP)
    assert message.__dict__ == before


# --- MIME structures ----------------------------------------------------------------------------


def test_body_only_is_text_plain() -> None:
    assert structure(make()) == ("text/plain",)


def test_body_and_attachment_is_multipart_mixed() -> None:
    message = make()
    message.attach("a.pdf", b"%PDF")
    assert structure(message) == ("multipart/mixed", ("text/plain",), ("application/pdf",))


def test_body_and_alternative_is_multipart_alternative() -> None:
    message = make(EmailMultiAlternatives)
    message.attach_alternative("<p>Body</p>", "text/html")
    assert structure(message) == ("multipart/alternative", ("text/plain",), ("text/html",))


def test_alternatives_and_attachments_are_mixed_containing_alternative() -> None:
    message = make(EmailMultiAlternatives)
    message.attach_alternative("<p>Body</p>", "text/html")
    message.attach("a.pdf", b"%PDF")
    assert structure(message) == (
        "multipart/mixed", ("multipart/alternative", ("text/plain",), ("text/html",)), ("application/pdf",))


def test_message_with_only_an_attachment_has_no_text_part() -> None:
    message = make(body="")
    message.attach("a.pdf", b"%PDF")
    assert structure(message) == ("multipart/mixed", ("application/pdf",))


def test_message_with_only_an_alternative_has_no_text_part() -> None:
    message = make(EmailMultiAlternatives, body="")
    message.attach_alternative("<p>Only</p>", "text/html")
    assert structure(message) == ("multipart/alternative", ("text/html",))


def test_empty_message_is_an_empty_text_plain() -> None:
    built = EmailMessage().message()
    assert (built.get_content_type(), built.get_content()) == ("text/plain", "\n")


def test_multi_alternatives_without_alternatives_is_text_plain() -> None:
    assert structure(make(EmailMultiAlternatives)) == ("text/plain",)


# --- Alternatives -------------------------------------------------------------------------------------


def test_alternatives_from_the_constructor_become_named_tuples() -> None:
    message = make(EmailMultiAlternatives, alternatives=[("<p>Hi</p>", "text/html")])
    assert message.alternatives == [EmailAlternative("<p>Hi</p>", "text/html")]
    assert message.alternatives[0].mimetype == "text/html"


def test_attach_alternative_requires_content_and_mimetype() -> None:
    with pytest.raises(ValueError, match="Both content and mimetype must be provided"):
        make(EmailMultiAlternatives).attach_alternative("<p>Hi</p>", None)


def test_attach_alternative_refuses_a_malformed_mimetype() -> None:
    with pytest.raises(ValueError, match="'html'"):
        make(EmailMultiAlternatives).attach_alternative("<p>Hi</p>", "html")


def test_text_alternative_given_as_bytes_is_decoded() -> None:
    message = make(EmailMultiAlternatives)
    message.attach_alternative("<p>é</p>".encode(), "text/html")
    assert message.message().get_payload()[1].get_content() == "<p>é</p>\n"


def test_non_text_alternative_is_encoded_with_the_charset() -> None:
    message = make(EmailMultiAlternatives)
    message.attach_alternative('{"a": "é"}', "application/json")
    assert message.message().get_payload()[1].get_content() == '{"a": "é"}'.encode()


def test_body_contains_checks_the_body_and_every_text_alternative() -> None:
    message = make(EmailMultiAlternatives, body="I am content.")
    message.attach_alternative("<p>I am content.</p>", "text/html")
    message.attach_alternative(b"binary", "application/octet-stream")
    assert message.body_contains("I am content") is True
    assert message.body_contains("<p>I am content.</p>") is False


def test_body_contains_is_false_when_an_alternative_lacks_the_text() -> None:
    message = make(EmailMultiAlternatives, body="Shared and more")
    message.attach_alternative("<p>Shared</p>", "text/html")
    assert message.body_contains("more") is False


# --- Recipients ---------------------------------------------------------------------------------------


def test_recipients_are_to_cc_and_bcc_without_empty_entries() -> None:
    message = make(to=["a@example.com", ""], cc=["c@example.com"], bcc=["", "b@example.com"],
                   reply_to=["r@example.com"])
    assert message.recipients() == ["a@example.com", "c@example.com", "b@example.com"]


# --- Sending -------------------------------------------------------------------------------------------


class RecordingBackend(BaseEmailBackend):
    """A real (in-process) backend that remembers what it was asked to do."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.opened = 0
        self.sent: list[EmailMessage] = []

    def open(self) -> bool:
        self.opened += 1
        return True

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        self.open()
        self.sent.extend(email_messages)
        return len(email_messages)


def test_send_without_recipients_returns_zero_without_connecting() -> None:
    backend = RecordingBackend()
    assert make(to=[], connection=backend).send() == 0
    assert (backend.opened, backend.sent) == (0, [])


def test_send_uses_the_messages_connection() -> None:
    backend = RecordingBackend()
    message = make(connection=backend)
    assert message.send() == 1
    assert backend.sent == [message]


def test_send_with_fail_silently_and_a_connection_raises_type_error() -> None:
    message = make(connection=RecordingBackend())
    with pytest.raises(TypeError, match=r"^fail_silently cannot be used with a connection\. Pass fail_silently "
                                        r"to get_connection\(\) instead\.$"):
        message.send(fail_silently=True)


@pytest.fixture
def outbox() -> Iterator[list[Any]]:
    mailqueue.outbox = []
    with override_settings(EMAIL_BACKEND="mailqueue.backends.locmem.EmailBackend"):
        yield mailqueue.outbox
    mailqueue.outbox = []


def test_send_without_a_connection_uses_the_default_backend(outbox: list[Any]) -> None:
    assert make(subject="Via default").send() == 1
    assert [message.subject for message in outbox] == ["Via default"]


def test_send_with_fail_silently_uses_a_default_backend(outbox: list[Any]) -> None:
    with pytest.warns(RemovedInDjango2028Warning, match="'fail_silently' argument is deprecated"):
        assert make(subject="Silently").send(fail_silently=True) == 1
    assert [message.subject for message in outbox] == ["Silently"]


# --- Bad types (issue 10, row 11) ----------------------------------------------------------------
# Each call raised KeyError or AttributeError at send time (Django 6.1 does the same), or wrote
# garbage into the message. Now each raises at the call, naming the argument, before any
# backend is reached; both serializers refuse the same values if set later as attributes.


def _alternative(content: Any) -> None:
    make(EmailMultiAlternatives).attach_alternative(content, "text/html")


def _send_mail_html(html: Any) -> None:
    backend = RecordingBackend()
    try:
        mailqueue.send_mail("S", "Body", "from@example.com", ["to@example.com"], connection=backend,
                            html_message=html)
    finally:
        assert backend.sent == [], "nothing may reach the backend"


def _attach(filename: Any) -> None:
    make().attach(filename, b"%PDF", "application/pdf")


BAD_TYPES = {
    # the 9 crashes: KeyError / AttributeError before
    "alternative-int": (lambda: _alternative(1), TypeError, '"content"'),
    "alternative-float": (lambda: _alternative(1.5), TypeError, '"content"'),
    "alternative-list": (lambda: _alternative(["<p>Hi</p>"]), TypeError, '"content"'),
    "html_message-int": (lambda: _send_mail_html(1), TypeError, '"html_message"'),
    "html_message-float": (lambda: _send_mail_html(1.5), TypeError, '"html_message"'),
    "html_message-list": (lambda: _send_mail_html(["<p>Hi</p>"]), TypeError, '"html_message"'),
    "filename-bytes": (lambda: _attach(b"invoice.pdf"), TypeError, '"filename"'),
    "filename-list": (lambda: _attach(["invoice.pdf"]), TypeError, '"filename"'),
    "headers-list": (lambda: make(headers=[("X-A", "1")]), TypeError, '"headers"'),
    # the 4 silent ones: written as "To: None", "X-A: None", "Reply-To: None", "Message-ID: None"
    "header-To-None": (lambda: make(headers={"To": None}), TypeError, "headers['To']"),
    "header-X-None": (lambda: make(headers={"X-A": None}), TypeError, "headers['X-A']"),
    "header-Reply-To-None": (lambda: make(headers={"Reply-To": None}), TypeError, "headers['Reply-To']"),
    "header-Message-ID-None": (lambda: make(headers={"Message-ID": None}), TypeError, "headers['Message-ID']"),
    # more of the same kinds
    "alternative-image-int": (lambda: make(EmailMultiAlternatives).attach_alternative(1, "image/png"),
                              TypeError, '"content"'),
    "alternatives-argument-int": (lambda: make(EmailMultiAlternatives, alternatives=[(1, "text/html")]),
                                  TypeError, '"alternatives"'),
    "alternative-mimetype-int": (lambda: make(EmailMultiAlternatives).attach_alternative("x", 5),
                                 TypeError, '"mimetype"'),
    "attachments-argument-bytes-filename": (
        lambda: make(attachments=[(b"a.pdf", b"%PDF", "application/pdf")]), TypeError, '"filename"'),
    "filename-int": (lambda: _attach(3), TypeError, '"filename"'),
    "text-attachment-int": (lambda: make().attach("a.txt", 5, "text/plain"), TypeError, '"content"'),
    "headers-str": (lambda: make(headers="X-A: 1"), TypeError, '"headers"'),
    "header-From-None": (lambda: make(headers={"From": None}), TypeError, "headers['From']"),
    "header-Date-None": (lambda: make(headers={"Date": None}), TypeError, "headers['Date']"),
    "header-X-list": (lambda: make(headers={"X-A": ["a", "b"]}), TypeError, "headers['X-A']"),
    "header-To-list-of-str": (lambda: make(headers={"To": ["a@example.com"]}), TypeError, "headers['To']"),
    "subject-None": (lambda: make(subject=None), TypeError, '"subject"'),
}


@pytest.mark.parametrize("call, error, argument", BAD_TYPES.values(), ids=BAD_TYPES.keys())
def test_a_bad_type_raises_at_the_call_naming_the_argument(call: Any, error: type[Exception], argument: str) -> None:
    with pytest.raises(error) as raised:
        call()
    assert argument in str(raised.value)
    assert not isinstance(raised.value, (KeyError, AttributeError))


LATE_CHANGES = {
    "alternatives": lambda m: m.alternatives.append(EmailAlternative(1, "text/html")),
    "attachments": lambda m: m.attachments.append((b"a.pdf", b"%PDF", "application/pdf")),
    "extra_headers-list": lambda m: setattr(m, "extra_headers", [("X-A", "1")]),
    "extra_headers-None": lambda m: m.extra_headers.update({"To": None}),
    "subject": lambda m: setattr(m, "subject", None),
}


@pytest.mark.parametrize("change", LATE_CHANGES.values(), ids=LATE_CHANGES.keys())
def test_bad_types_set_after_construction_are_refused_by_both_serializers(change: Any) -> None:
    from mailqueue.message.fastpath import serialize

    message = make(EmailMultiAlternatives)
    change(message)
    with pytest.raises(TypeError):
        message.message()
    with pytest.raises(TypeError):
        serialize(message)


def test_what_django_accepts_is_still_accepted() -> None:
    message = make(EmailMultiAlternatives, subject=5, headers={"X-A": b"bytes", "Sender": b"s@example.com"})
    message.attach_alternative(b"<p>Hi</p>", "text/html")
    message.attach_alternative(bytearray(b"\x89PNG"), "image/png")
    message.attach(("utf-8", "", "r\u00e9sum\u00e9.pdf"), b"%PDF", "application/pdf")
    message.attach(None, 5, "application/octet-stream")  # Django writes str(5)
    built = email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default)
    assert (built["Subject"], built["X-A"], built["Sender"]) == ("5", "bytes", "s@example.com")
    assert [part.get_filename() for part in built.iter_attachments()] == ["r\u00e9sum\u00e9.pdf", None]
