"""Envelope addresses: what goes after MAIL FROM and RCPT TO.

The envelope is always derived from ``from_email`` and ``recipients()``, never from header
overrides, and its non-ASCII domains are IDNA-encoded so any server accepts them.
"""

from __future__ import annotations

import contextlib
from email.errors import HeaderParseError
from email.headerregistry import Address, AddressHeader

from mailqueue.exceptions import InvalidMessage
from mailqueue.mailboxes import parse_mailbox

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
        raise InvalidMessage(f"Invalid address {address!r}: cannot be parsed") from None
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
