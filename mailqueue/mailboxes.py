"""The plainest address shapes, recognised by regular expressions instead of a parser.

``local@domain`` and ``Name <local@domain>`` (an ASCII dot-atom local part, a domain of
letters and digits of any script, a display name of plain words or one quoted string
without escapes) make up nearly every address an application sends to. The email
package's parser takes about 100 microseconds per address; these patterns a few. Anything
they do not match is left to that parser, so both always agree (tests/test_mailboxes.py).
"""

from __future__ import annotations

import re
from typing import NamedTuple

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
