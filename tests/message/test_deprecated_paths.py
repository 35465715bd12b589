"""The message's deprecated paths (issue 14, part 2): what Django 6.1 still accepts with a
warning, and what it refuses. tests/test_mail_django_equivalence.py runs the same calls on
Django 6.1.3 side by side; these tests pin mailqueue's own behaviour, the fast path included.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from email.mime.image import MIMEImage
from email.mime.text import MIMEText
from typing import Any

import pytest

from mailqueue.backends.base import BaseEmailBackend
from mailqueue.deprecation import RemovedInDjango2028Warning
from mailqueue.message import EmailMessage, EmailMultiAlternatives
from mailqueue.message.fastpath import POLICY, fast_serialize, serialize
from tests.message.corpus import PNG
from tests.message.structure import describe, normalized_bytes

ARGS = ("Subject", "Body", "from@example.com", ["to@example.com"])
DEPRECATED = RemovedInDjango2028Warning


class Recording(BaseEmailBackend):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent: list[EmailMessage] = []

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        self.sent.extend(email_messages)
        return len(email_messages)


@pytest.fixture
def caught() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        yield seen


def messages_of(seen: list[warnings.WarningMessage]) -> list[str]:
    assert all(issubclass(w.category, DEPRECATED) for w in seen)
    return [str(w.message) for w in seen]


# --- Options passed by position -------------------------------------------------------------------


def test_every_email_message_option_by_position(caught: list[warnings.WarningMessage]) -> None:
    backend = Recording()
    message = EmailMessage(*ARGS, ["b@example.com"], backend, [("a.txt", "x", "text/plain")],  # type: ignore[misc]
                           {"X-A": "1"}, ["c@example.com"], ["r@example.com"])
    assert (message.bcc, message._connection, message.extra_headers) == (["b@example.com"], backend, {"X-A": "1"})
    assert (message.cc, message.reply_to, len(message.attachments)) == (["c@example.com"], ["r@example.com"], 1)
    assert messages_of(caught) == [
        "Passing positional argument(s) 'bcc', 'connection', 'attachments', 'headers', 'cc', 'reply_to' to "
        "EmailMessage() is deprecated. Use keyword arguments instead.",
        "The 'connection' argument is deprecated. Switch to the 'using' argument with a MAILERS alias.",
    ]
    assert caught[0].filename == __file__  # attributed to the caller, not to mailqueue


def test_alternatives_by_position(caught: list[warnings.WarningMessage]) -> None:
    message = EmailMultiAlternatives(*ARGS, None, None, None, None, [("<p>x</p>", "text/html")])  # type: ignore[misc]
    assert message.alternatives == [("<p>x</p>", "text/html")]
    assert messages_of(caught) == [
        "Passing positional argument(s) 'bcc', 'connection', 'attachments', 'headers', 'alternatives' to "
        "EmailMultiAlternatives() is deprecated. Use keyword arguments instead.",
    ]


def test_too_many_positional_arguments() -> None:
    with pytest.raises(TypeError, match=r"^EmailMessage\(\) takes at most 11 positional argument\(s\) \(including 6 "
                                        r"deprecated\) but 12 were given\.$"):
        EmailMessage(*ARGS, *[None] * 7)  # type: ignore[misc]


def test_an_option_by_position_and_by_keyword() -> None:
    with pytest.raises(TypeError, match=r"got both deprecated positional and keyword argument values for 'bcc'"):
        EmailMessage(*ARGS, ["b@example.com"], bcc=["b@example.com"])  # type: ignore[misc]


def test_keywords_give_no_warning(caught: list[warnings.WarningMessage]) -> None:
    EmailMultiAlternatives(*ARGS, bcc=["b@example.com"], cc=["c@example.com"], alternatives=[("<p/>", "text/html")])
    assert caught == []


# --- connection= and the .connection attribute ---------------------------------------------------


def test_the_connection_argument_warns_and_send_uses_it(caught: list[warnings.WarningMessage]) -> None:
    backend = Recording()
    message = EmailMessage(*ARGS, connection=backend)
    assert messages_of(caught) == [
        "The 'connection' argument is deprecated. Switch to the 'using' argument with a MAILERS alias."]
    assert message.send() == 1 and backend.sent == [message]
    assert len(caught) == 1  # send() reads the connection without the attribute's warning


def test_email_multi_alternatives_connection_argument_is_silent_as_in_django(
    caught: list[warnings.WarningMessage],
) -> None:
    # Django 6.1's warning looks one frame past the decorator: for EmailMultiAlternatives that
    # frame is Django's own __init__, so no warning is given. We give the same (none).
    backend = Recording()
    assert EmailMultiAlternatives(*ARGS, connection=backend).send() == 1
    assert caught == [] and len(backend.sent) == 1


def test_reading_and_setting_the_attribute_warn(caught: list[warnings.WarningMessage]) -> None:
    message, backend = EmailMessage(*ARGS), Recording()
    message.connection = backend
    assert message.connection is backend
    assert messages_of(caught) == [
        "The EmailMessage.connection attribute is deprecated. Switch to EmailMessage.send(using=...) with a "
        "MAILERS alias.",
        "The EmailMessage.connection attribute is deprecated.",
    ]
    assert message.send() == 1 and backend.sent == [message]


# --- Legacy email.mime attachments ------------------------------------------------------------------


def legacy_image() -> MIMEImage:
    image = MIMEImage(PNG, "png")
    image.add_header("Content-ID", "<logo@example.com>")
    return image


def test_legacy_parts_in_the_constructor_warn_once_each(caught: list[warnings.WarningMessage]) -> None:
    parts = [legacy_image(), MIMEText("legacy\n")]
    message = EmailMessage(*ARGS, attachments=[*parts, ("a.txt", "x", "text/plain")])
    assert message.attachments[:2] == parts
    assert messages_of(caught) == ["MIMEBase attachments are deprecated. Use an email.message.MIMEPart instead."] * 2


def test_legacy_parts_take_the_standard_build_from_the_fast_path() -> None:
    with pytest.warns(DEPRECATED):
        message = EmailMessage(*ARGS, attachments=[legacy_image()])
    assert fast_serialize(message) is None
    serialized = serialize(message)
    standard = message.message(policy=POLICY)
    assert normalized_bytes(serialized.message) == normalized_bytes(standard.as_bytes())
    image = describe(serialized.message).parts[1]
    assert (image.content_type, image.cte, image.payload) == ("image/png", "base64", PNG)


# --- Removed attributes and methods: refused as Django 6.1 refuses them -------------------------------


def test_mixed_subtype_is_refused_when_the_attachments_are_built() -> None:
    message = EmailMessage(*ARGS)
    message.mixed_subtype = "related"  # type: ignore[attr-defined]
    assert message.message()["Content-Type"] == 'text/plain; charset="utf-8"'  # no attachments: no mixed part
    message.attach("a.txt", "x")
    error = r"^EmailMessage no longer supports the undocumented `mixed_subtype` attribute$"
    with pytest.raises(AttributeError, match=error):
        message.message()
    with pytest.raises(AttributeError, match=error):  # the fast path does not write it quietly
        serialize(message)


def test_alternative_subtype_on_a_subclass_is_refused_when_the_alternatives_are_built() -> None:
    class Legacy(EmailMultiAlternatives):
        alternative_subtype = "related"

    message = Legacy(*ARGS)
    assert serialize(message).message  # no alternatives: nothing refused
    message.attach_alternative("<p>x</p>", "text/html")
    error = r"^EmailMultiAlternatives no longer supports the undocumented `alternative_subtype` attribute$"
    with pytest.raises(AttributeError, match=error):
        serialize(message)


def test_email_message_has_no_get_connection() -> None:
    assert not hasattr(EmailMessage(*ARGS), "get_connection")


def test_a_subclass_that_defines_get_connection_is_refused_at_send() -> None:
    backend = Recording()

    class Legacy(EmailMessage):
        def get_connection(self, fail_silently: bool = False) -> BaseEmailBackend:
            return backend

    with pytest.raises(AttributeError, match=r"^EmailMessage no longer supports the undocumented "
                                             r"get_connection\(\) method\.$"):
        Legacy(*ARGS).send()
    assert Legacy("S", "B", "f@example.com", []).send() == 0  # nobody to send to: nothing checked, as in Django
    assert backend.sent == []
