"""Header rules of a message: validation, generated values and IDNA in address headers.

Everything here works on plain ``(name, value)`` pairs or on a finished stdlib message, so a
faster serializer can reuse the same rules without going through ``email.message``.
"""

from __future__ import annotations

import datetime
import email.utils
import numbers
import re
from email.headerregistry import Address, AddressHeader, DateHeader, Group, HeaderRegistry
from email.message import Message
from typing import Any, cast

from mailqueue.exceptions import InvalidMessage
from mailqueue.message.addresses import punycode
from mailqueue.message.utils import DNS_NAME

# Headers whose value comes from a constructor argument; a key in ``headers`` replaces the
# header only, never the envelope.
ADDRESS_ARGUMENT_HEADERS = {"from": "From", "to": "To", "cc": "Cc", "reply-to": "Reply-To"}

BCC_IN_HEADERS = (
    'Bcc is not a valid email header. Use the "bcc" argument to specify blind carbon copy recipients.'
)

# RFC 5322 field names: printable US-ASCII except the colon.
_FIELD_NAME = re.compile(r"[!-9;-~]+")

# Header kinds, as the email package knows them: where a datetime or Address objects fit.
_REGISTRY = HeaderRegistry().registry
_DATE_HEADERS = frozenset(name for name, kind in _REGISTRY.items() if issubclass(kind, DateHeader))
_ADDRESS_HEADERS = frozenset(name for name, kind in _REGISTRY.items() if issubclass(kind, AddressHeader))
# Values str() would write as garbage, or that Django's email package call crashes on.
_CONTAINERS = (list, tuple, set, frozenset, dict, bytearray, memoryview)
_REFUSED_VALUES = (*_CONTAINERS, numbers.Number, datetime.date, datetime.time)

def has_line_break(text: str) -> bool:
    """True if ``text`` holds any character ``str.splitlines()`` splits on (CR, LF, VT, ...).

    The email package refuses those in headers; we refuse them anywhere, including at the
    end, where the email package would let a trailing newline end the header block early.
    """
    return "".join(text.splitlines()) != text


def check_header_name(name: object) -> str:
    """Return ``name`` if it is a valid field name, else raise naming it."""
    if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
        raise InvalidMessage(
            f"Invalid header name {name!r}: use printable ASCII characters without spaces or colons."
        )
    return name


# Django 6.1's message (the email package's), followed by which header or argument and its value.
LINE_BREAK_IN_HEADER = "Header values may not contain linefeed or carriage return characters"


def check_header_value(name: str, value: object) -> None:
    """Refuse a line break in a header value (header injection), naming the header."""
    if isinstance(value, str) and has_line_break(value):
        raise InvalidMessage(f"{LINE_BREAK_IN_HEADER} (header {name!r}: {value!r})")


def check_addresses(argument: str, addresses: list[Any]) -> None:
    """Refuse a line break in any address of ``argument`` (to, cc, bcc, reply_to, from_email)."""
    for address in addresses:
        if has_line_break(str(address)):
            raise InvalidMessage(f"{LINE_BREAK_IN_HEADER} (address in {argument!r}: {str(address)!r})")


def header_value(name: str, value: Any) -> str:
    """A value from ``headers`` as header text, converted as Django 6.1 converts it
    (``force_str``): bytes are decoded as UTF-8, a datetime in a date header is an RFC 5322
    date, a list of ``Address`` in an address header is joined, other objects go through
    str(). The values Django crashes on (numbers, dates elsewhere) or would write as garbage
    (None, containers, bytearray) are refused with a TypeError naming the header."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise InvalidMessage(f"headers[{name!r}] is bytes that are not UTF-8: {value!r}") from None
    key = name.lower()
    if isinstance(value, datetime.datetime) and key in _DATE_HEADERS:
        return email.utils.format_datetime(value)
    if key in _ADDRESS_HEADERS and _is_address_list(value):
        return ", ".join(str(address) for address in value)
    if value is None or isinstance(value, _REFUSED_VALUES):
        raise TypeError(
            f"headers[{name!r}] must be a str, not {type(value).__name__}: {value!r}. "
            "Convert the value to text yourself."
        )
    return str(value)


def subject_value(subject: Any) -> str:
    """The Subject as text: str() as in Django (bytes decoded), but never the text "None"
    or a container's repr, which Django would write."""
    if subject is None or isinstance(subject, _CONTAINERS):
        raise TypeError(f'"subject" must be a str, not {type(subject).__name__}.')
    return header_value("Subject", subject) if isinstance(subject, bytes) else str(subject)


def _is_address_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(
        isinstance(item, (Address, Group)) for item in value
    )


def date_value(*, localtime: bool) -> datetime.datetime:
    """The Date header's value: now, in UTC unless EMAIL_USE_LOCALTIME asks for local time."""
    if localtime:
        return datetime.datetime.now().astimezone()
    return datetime.datetime.now(datetime.UTC)


def make_msgid(idstring: str | None = None, domain: str | None = None) -> str:
    """A new Message-ID; ``domain`` defaults to this host's cached DNS name."""
    return email.utils.make_msgid(idstring, domain=str(DNS_NAME) if domain is None else domain)


def punycode_address_headers(msg: Message) -> None:
    """IDNA-encode non-ASCII domains in every address header of ``msg``.

    Without this the email package writes such domains as RFC 2047 encoded-words, which are
    not valid in a domain (cpython#83938). Only the domain is touched: nothing permits a
    7-bit encoding of a non-ASCII local part.
    """
    for name, value in msg.items():
        if not isinstance(value, AddressHeader):
            continue
        if all(address.domain.isascii() for address in value.addresses):
            continue
        # The email package accepts Address objects for address headers (typeshed says str).
        msg.replace_header(name, cast(Any, [_punycoded(address) for address in value.addresses]))


def _punycoded(address: Address) -> Address:
    return Address(
        display_name=address.display_name,
        username=address.username,
        domain=punycode(address.domain),
    )
