"""Addresses, all in one place: the fast mailbox recogniser, IDNA, and envelope addresses.

``local@domain`` and ``Name <local@domain>`` (an ASCII dot-atom local part, a domain of
letters and digits of any script, a display name of plain words or one quoted string
without escapes) make up nearly every address an application sends to. The email
package's parser takes about 100 microseconds per address; these patterns a few. Anything
they do not match is left to that parser, so both always agree (tests/message/test_addresses.py).

The envelope (what goes after MAIL FROM and RCPT TO) is always derived from ``from_email``
and ``recipients()``, never from header overrides, and its non-ASCII domains are
IDNA-encoded so any server accepts them.
"""

from __future__ import annotations

import contextlib
import re
from email.errors import HeaderParseError
from email.headerregistry import Address, AddressHeader
from typing import NamedTuple

from mailqueue.exceptions import InvalidMessage

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"  # a dot-atom local part, ASCII only
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"  # letters and digits of any script, inner hyphens
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
# A display name: words without RFC 5322 specials, or one quoted string without escapes.
_PHRASE = r'[^\s()<>@,:;."\[\]\\]+(?: [^\s()<>@,:;."\[\]\\]+)*'
_QUOTED = r'"[^"\\]+"'
_MAILBOX = re.compile(
    rf"(?:(?P<display>{_PHRASE}|{_QUOTED}) *)?<(?P<local>{_LOCAL})@(?P<domain>{_DOMAIN})>"
    rf"|(?P<bare_local>{_LOCAL})@(?P<bare_domain>{_DOMAIN})"
)
_SEPARATOR = re.compile(r", *")
MESSAGE_ID = re.compile(rf"<{_LOCAL}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>")  # make_msgid's form


class Mailbox(NamedTuple):
    """One address: the display name as written (quotes included) or None."""

    display: str | None
    local: str
    domain: str


def parse_mailbox(address: str) -> Mailbox | None:
    """The single mailbox ``address`` if it has one of the plain shapes, else None."""
    if not _plain(address):
        return None
    match = _MAILBOX.fullmatch(address)
    return _mailbox(match) if match else None


def parse_mailboxes(value: str) -> list[Mailbox] | None:
    """A comma-separated list of plain mailboxes, or None if ``value`` is anything else."""
    if not _plain(value):
        return None
    mailboxes: list[Mailbox] = []
    position, end = 0, len(value)
    while True:
        match = _MAILBOX.match(value, position)
        if match is None:
            return None
        mailboxes.append(_mailbox(match))
        if match.end() == end:
            return mailboxes
        separator = _SEPARATOR.match(value, match.end())
        if separator is None or separator.end() == end:
            return None
        position = separator.end()


def _plain(text: str) -> bool:
    """No encoded words and no control characters: those need the real parser."""
    return "=?" not in text and text.isprintable()


def _mailbox(match: re.Match[str]) -> Mailbox:
    if match["local"] is not None:
        return Mailbox(match["display"], match["local"], match["domain"])
    return Mailbox(None, match["bare_local"], match["bare_domain"])

# Django allows bare local mailboxes such as "webmaster"; so do we.
_TOLERATED_DEFECTS = {"addr-spec local part with no domain"}
# Fixed only in Python 3.15 (cpython#81074); valid when sending with SMTPUTF8.
_NON_ASCII_LOCAL_PART = "local-part contains non-ASCII characters)"


def punycode(domain: str) -> str:
    """IDNA-encode a domain name (RFC 3490), leaving ASCII names unchanged."""
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise InvalidMessage(f"Invalid domain {domain!r}: {error}") from None


NOT_AN_ADDRESS = "not an email address (an address is local-part@domain, both parts non-empty, e.g. ann@example.com)"


def envelope_address(address: str, *, force_ascii: bool = True) -> str:
    """Return the addr-spec of ``address``, refusing anything that is not one mailbox.

    With ``force_ascii`` the domain is IDNA-encoded and a non-ASCII local part is refused
    (it could only be sent with SMTPUTF8).
    """
    if not isinstance(address, str):
        raise TypeError(f"An email address must be a str, not {type(address).__name__}: {address!r}")
    plain = parse_mailbox(address)  # most addresses: no need for the email package's parser
    if plain is not None:
        with contextlib.suppress(InvalidMessage):  # a bad IDNA domain: let the parser explain
            return f"{plain.local}@{punycode(plain.domain) if force_ascii else plain.domain}"
    try:
        parsed = AddressHeader.value_parser(address)
    except (IndexError, HeaderParseError):  # the stdlib parser crashes on some input, e.g. "to@"
        raise InvalidMessage(f"Invalid address {address!r}: {NOT_AN_ADDRESS}") from None
    defects = {str(defect) for defect in parsed.all_defects} - _TOLERATED_DEFECTS
    if not force_ascii:
        defects.discard(_NON_ASCII_LOCAL_PART)
    if defects:
        raise InvalidMessage(f"Invalid address {address!r}: {'; '.join(sorted(defects))}")
    mailboxes = parsed.all_mailboxes
    if len(mailboxes) != 1:
        raise InvalidMessage(f"Invalid address {address!r}: must be a single address")
    mailbox = mailboxes[0]
    if force_ascii and mailbox.domain and not mailbox.domain.isascii():
        return str(Address(username=mailbox.local_part, domain=punycode(mailbox.domain)))
    return mailbox.addr_spec


def check_envelope_address(address: object) -> str:
    """Return ``address`` if it is an envelope address exactly as ``envelope_address`` writes one.

    For envelopes read back off the broker, which anyone with access to Redis can write: the
    worker accepts only what the producer could have produced, so both sides apply one rule.
    Printable ASCII only (no CR, LF, NUL, U+2028/U+2029/U+0085 or any other control): the
    email package's parser drops some of those silently, and
    ``"victim@example.com\\u2028.evil.test"`` would go out as ``victim@example.com.evil.test``.
    The empty reverse-path is refused too: the producer never writes one.
    """
    if not isinstance(address, str):
        raise TypeError(f"An envelope address must be a str, not {type(address).__name__}: {address!r}")
    if not (address.isascii() and address.isprintable()):
        raise InvalidMessage(f"Invalid envelope address {address!r}: only printable ASCII characters are allowed")
    if envelope_address(address) != address:
        raise InvalidMessage(f"Invalid envelope address {address!r}: not a bare addr-spec such as local@example.com")
    return address
