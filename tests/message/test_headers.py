"""Header rules (issue 2, section 2): overrides, Date and Message-ID, Bcc, IDNA, injection."""

from __future__ import annotations

import datetime
import email
import email.policy
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mailqueue import InvalidMessage
from mailqueue.conf import override_settings
from mailqueue.message import EmailMessage
from mailqueue.message.headers import has_line_break, make_msgid
from mailqueue.message.utils import DNS_NAME
from mailqueue.queue.envelope import Envelope

LINE_BREAKS = {"LF": "\n", "CR": "\r", "CRLF": "\r\n", "LINE-SEPARATOR": "\u2028", "VT": "\v"}


def make(**kwargs: Any) -> EmailMessage:
    arguments: dict[str, Any] = {
        "subject": "Subject", "body": "Body", "from_email": "from@example.com", "to": ["to@example.com"],
    }
    return EmailMessage(**(arguments | kwargs))


def sent(message: EmailMessage, policy: email.policy.Policy = email.policy.default) -> Any:
    """The message as a receiver parses it."""
    return email.message_from_bytes(message.message(policy=policy).as_bytes(), policy=email.policy.default)


# --- Generated headers -----------------------------------------------------------------------


def test_every_message_gets_a_date_and_a_message_id() -> None:
    msg = sent(make())
    assert msg["Date"].datetime is not None
    assert msg["Message-ID"].startswith("<") and msg["Message-ID"].endswith(f"@{DNS_NAME}>")


def test_each_build_gets_a_new_message_id() -> None:
    message = make()
    assert message.message()["Message-ID"] != message.message()["Message-ID"]


def test_date_is_in_utc_by_default() -> None:
    date = sent(make())["Date"].datetime
    assert date.utcoffset() == datetime.timedelta(0)
    assert abs(date - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(seconds=5)


@pytest.fixture
def kolkata_time() -> Iterator[None]:
    """The process's local time zone set to UTC+05:30 (no DST), restored afterwards."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    yield
    if previous is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = previous
    time.tzset()


@pytest.mark.usefixtures("kolkata_time")
def test_email_use_localtime_writes_the_date_in_local_time() -> None:
    with override_settings(EMAIL_USE_LOCALTIME=True):
        date = sent(make())["Date"].datetime
    assert date.utcoffset() == datetime.timedelta(hours=5, minutes=30)


@pytest.mark.parametrize("key", ["Date", "date", "DATE"])
def test_date_can_be_overridden_with_the_key_in_any_case(key: str) -> None:
    msg = sent(make(headers={key: "Mon, 01 Jan 2024 00:00:00 +0000"}))
    assert msg.get_all("Date") == ["Mon, 01 Jan 2024 00:00:00 +0000"]


@pytest.mark.parametrize("key", ["Message-ID", "message-id", "MESSAGE-Id"])
def test_message_id_can_be_overridden_with_the_key_in_any_case(key: str) -> None:
    msg = sent(make(headers={key: "<fixed@example.com>"}))
    assert msg.get_all("Message-ID") == ["<fixed@example.com>"]


def test_a_datetime_header_value_is_written_as_an_rfc5322_date() -> None:
    when = datetime.datetime(2024, 1, 1, 12, 0, tzinfo=datetime.UTC)
    assert sent(make(headers={"Date": when}))["Date"] == "Mon, 01 Jan 2024 12:00:00 +0000"


def test_a_number_header_value_raises_type_error_as_in_django() -> None:
    # Django 6.1 raises a TypeError from the email package; we raise it at the call site.
    with pytest.raises(TypeError, match=r"headers\['X-Count'\] must be a str, not int"):
        make(headers={"X-Count": 42})


def test_bytes_header_values_are_decoded_as_django_does() -> None:
    message = make(headers={"X-Tag": "é".encode(), "To": b"list@example.com"})
    assert (sent(message)["X-Tag"], sent(message)["To"]) == ("é", "list@example.com")


def test_bytes_header_value_that_is_not_utf8_raises_naming_the_header() -> None:
    with pytest.raises(InvalidMessage, match="X-Tag"):
        make(headers={"X-Tag": b"\xff"})


def test_address_objects_in_an_address_header_are_written_as_addresses() -> None:
    from email.headerregistry import Address

    message = make(headers={"To": [Address("Ann", "ann", "example.com"), Address("", "bob", "example.com")]})
    assert sent(message)["To"] == "Ann <ann@example.com>, bob@example.com"


def test_a_datetime_outside_a_date_header_raises_type_error_as_in_django() -> None:
    with pytest.raises(TypeError, match="X-When"):
        make(headers={"X-When": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)})


def test_make_msgid_defaults_to_the_cached_dns_name() -> None:
    assert make_msgid().endswith(f"@{DNS_NAME}>")


def test_make_msgid_takes_an_idstring_and_a_domain() -> None:
    msgid = make_msgid("queue", domain="mail.example.com")
    assert msgid.endswith(".queue@mail.example.com>")


# --- Address headers and the envelope ---------------------------------------------------------


def test_from_in_headers_replaces_the_header_but_not_the_sender() -> None:
    message = make(headers={"From": "Header <header@example.com>"})
    assert sent(message)["From"] == "Header <header@example.com>"
    assert message.from_email == "from@example.com"


def test_to_in_headers_replaces_the_header_but_not_the_recipients() -> None:
    message = make(headers={"To": "list@example.com"})
    assert sent(message).get_all("To") == ["list@example.com"]
    assert message.recipients() == ["to@example.com"]


def test_cc_in_headers_replaces_the_header_but_not_the_recipients() -> None:
    message = make(cc=["cc@example.com"], headers={"Cc": "shown@example.com"})
    assert sent(message).get_all("Cc") == ["shown@example.com"]
    assert message.recipients() == ["to@example.com", "cc@example.com"]


def test_reply_to_in_headers_replaces_the_reply_to_argument() -> None:
    message = make(reply_to=["argument@example.com"], headers={"Reply-To": "header@example.com"})
    assert sent(message).get_all("Reply-To") == ["header@example.com"]


def test_to_header_is_written_even_without_a_to_argument() -> None:
    msg = sent(make(to=[], bcc=["hidden@example.com"], headers={"To": "undisclosed@example.com"}))
    assert msg["To"] == "undisclosed@example.com"


def test_address_header_keys_are_matched_in_any_case() -> None:
    # Django 6.1 silently drops {"to": ...} (it looks up "To" only); header names are
    # case-insensitive (RFC 5322), so a lowercase key replaces the header here.
    msg = sent(make(headers={"to": "list@example.com", "FROM": "f@example.com"}))
    assert (msg.get_all("To"), msg.get_all("From")) == (["list@example.com"], ["f@example.com"])


def test_empty_address_lists_give_no_header() -> None:
    msg = sent(make(to=[]))
    assert (msg["To"], msg["Cc"], msg["Reply-To"]) == (None, None, None)


def test_bcc_is_never_written_to_the_headers() -> None:
    message = make(bcc=["hidden@example.com"])
    assert "hidden" not in message.message().as_string()
    assert message.recipients() == ["to@example.com", "hidden@example.com"]


@pytest.mark.parametrize("key", ["Bcc", "bcc", "BCC"])
def test_a_bcc_key_in_headers_raises_value_error(key: str) -> None:
    with pytest.raises(ValueError, match='Use the "bcc" argument'):
        make(headers={key: "hidden@example.com"}).message()


def test_headers_are_written_in_djangos_order() -> None:
    msg = sent(make(cc=["cc@example.com"], reply_to=["r@example.com"], headers={"X-First": "1", "X-Second": "2"}))
    names = [name for name in msg.keys() if not name.startswith(("Content-", "MIME-"))]
    assert names == ["Subject", "From", "To", "Cc", "Reply-To", "Date", "Message-ID", "X-First", "X-Second"]


# --- IDNA ------------------------------------------------------------------------------------


def test_non_ascii_domain_in_from_is_punycoded() -> None:
    assert sent(make(from_email="Jörg <j@bücher.example>"))["From"] == "Jörg <j@xn--bcher-kva.example>"


def test_non_ascii_domain_in_to_is_punycoded() -> None:
    assert sent(make(to=["a@exämple.com", "b@example.com"]))["To"] == "a@xn--exmple-cua.com, b@example.com"


def test_non_ascii_domain_in_cc_is_punycoded() -> None:
    assert sent(make(cc=["c@münchen.de"]))["Cc"] == "c@xn--mnchen-3ya.de"


def test_non_ascii_domain_in_reply_to_is_punycoded() -> None:
    assert sent(make(reply_to=["r@пример.рф"]))["Reply-To"] == "r@xn--e1afmkfd.xn--p1ai"


def test_non_ascii_domain_in_an_address_header_from_headers_is_punycoded() -> None:
    assert sent(make(headers={"Sender": "s@bücher.example"}))["Sender"] == "s@xn--bcher-kva.example"


def test_non_ascii_domains_are_kept_when_the_policy_allows_utf8() -> None:
    msg = sent(make(to=["a@exämple.com"]), policy=email.policy.SMTPUTF8)
    assert msg["To"] == "a@exämple.com"


def test_punycoding_leaves_the_envelope_arguments_unchanged() -> None:
    message = make(to=["a@exämple.com"])
    message.message()
    assert message.to == ["a@exämple.com"]


def test_an_invalid_international_domain_raises_naming_it() -> None:
    domain = "ä" * 70 + ".com"  # a label longer than 63 characters
    with pytest.raises(InvalidMessage, match=f"Invalid domain '{domain}'"):
        make(to=[f"a@{domain}"]).message()


# --- Header injection --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["plain", "tab\tinside", ""])
def test_has_line_break_accepts_single_lines(text: str) -> None:
    assert not has_line_break(text)


@pytest.mark.parametrize("brk", LINE_BREAKS.values(), ids=LINE_BREAKS.keys())
def test_has_line_break_finds_every_line_boundary(brk: str) -> None:
    assert has_line_break(f"a{brk}b")


@pytest.mark.parametrize("brk", LINE_BREAKS.values(), ids=LINE_BREAKS.keys())
def test_line_break_in_subject_raises(brk: str) -> None:
    with pytest.raises(InvalidMessage, match="Subject"):
        make(subject=f"Hello{brk}Bcc: victim@example.com").message()


def test_trailing_newline_in_subject_raises() -> None:
    # The email package lets this through and the blank line then ends the header block.
    with pytest.raises(ValueError, match="Subject"):
        make(subject="Hello\n").message()


def test_line_break_in_from_email_raises() -> None:
    with pytest.raises(InvalidMessage, match="from_email.*evil"):
        make(from_email="from@example.com\nBcc: evil@example.com").message()


def test_line_break_in_to_raises() -> None:
    with pytest.raises(InvalidMessage, match="'to'.*evil"):
        make(to=["ok@example.com", "to@example.com\r\nBcc: evil@example.com"]).message()


def test_line_break_in_cc_raises() -> None:
    with pytest.raises(InvalidMessage, match="'cc'.*evil"):
        make(cc=["cc@example.com\nBcc: evil@example.com"]).message()


def test_line_break_in_bcc_raises() -> None:
    with pytest.raises(InvalidMessage, match="'bcc'.*evil"):
        make(bcc=["bcc@example.com\nX-Evil: evil"]).message()


def test_line_break_in_reply_to_raises() -> None:
    with pytest.raises(InvalidMessage, match="'reply_to'.*evil"):
        make(reply_to=["r@example.com\rBcc: evil@example.com"]).message()


def test_line_break_in_a_header_value_raises() -> None:
    with pytest.raises(InvalidMessage, match="X-Custom.*evil"):
        make(headers={"X-Custom": "value\nBcc: evil@example.com"}).message()


def test_line_break_in_an_address_header_value_raises() -> None:
    with pytest.raises(InvalidMessage, match="'To'.*evil"):
        make(headers={"To": "list@example.com\nBcc: evil@example.com"}).message()


@pytest.mark.parametrize("name", ["X-Evil\nBcc", "X Space", "X-Colon:", "", "Ünïcode"])
def test_an_invalid_header_name_raises(name: str) -> None:
    with pytest.raises(InvalidMessage, match="Invalid header name"):
        make(headers={name: "value"}).message()


def test_header_injection_error_is_a_value_error() -> None:
    assert issubclass(InvalidMessage, ValueError)


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"headers": {"X-Tag": "a\nBcc: x@example.com"}}, "(header 'X-Tag': 'a\\nBcc: x@example.com')"),
    ({"subject": "Hi\r\nBcc: x@example.com"}, "(header 'Subject': 'Hi\\r\\nBcc: x@example.com')"),
    ({"cc": ["c@example.com\nBcc: x@example.com"]}, "(address in 'cc': 'c@example.com\\nBcc: x@example.com')"),
])
def test_header_injection_message_reads_like_djangos_and_names_the_header(kwargs: dict[str, Any], named: str) -> None:
    # Django 6.1 (the email package) says only the first part; we add which header, and its value.
    with pytest.raises(ValueError) as raised:
        make(**kwargs).message()
    assert str(raised.value) == f"Header values may not contain linefeed or carriage return characters {named}"


# --- Recipient argument types ---------------------------------------------------------------------


@pytest.mark.parametrize("argument", ["to", "cc", "bcc", "reply_to"])
def test_recipients_given_as_a_str_raise_type_error(argument: str) -> None:
    with pytest.raises(TypeError, match=f'"{argument}" argument must be a list or tuple'):
        make(**{argument: "someone@example.com"})


@pytest.mark.parametrize("field", ["from_email", "to", "cc", "reply_to"])
def test_address_the_email_package_cannot_parse_is_an_invalid_message(field):
    value = "nobody@" if field == "from_email" else ["nobody@"]
    arguments = {"from_email": "from@example.com", "to": ["to@example.com"], field: value}
    message = EmailMessage("Subject", "Body", **arguments)
    with pytest.raises(InvalidMessage, match="nobody@.*not an email address.*local-part@domain"):
        message.message()


def test_unparseable_address_is_refused_before_anything_is_enqueued():
    message = EmailMessage("Subject", "Body", "nobody@", ["to@example.com"])
    with pytest.raises(InvalidMessage, match="nobody@"):
        Envelope.from_email_message(message, max_size=10_000)
