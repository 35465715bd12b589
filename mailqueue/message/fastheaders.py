"""Header lines written directly, for the fast path (``mailqueue.message.fastpath``).

The email package parses every header value into a token tree and folds that tree back
into lines: most of the cost of building a message. For the common shapes of a value
(words; simple ``Name <local@domain>`` lists; make_msgid's ids; a generated Date) the same
text is written straight away, encoded and folded the way the email package does it.

Anything else, or a non-ASCII header longer than one line, is written by the email
package itself, one header at a time. Either way the bytes are the standard build's
(``tests/message/test_fastpath.py`` holds us to that).
"""

from __future__ import annotations

import binascii
import datetime
import email.message
import email.policy
import email.utils
from email.headerregistry import AddressHeader, UnstructuredHeader
from typing import Any

from mailqueue.exceptions import InvalidMessage
from mailqueue.message.addresses import MESSAGE_ID, Mailbox, parse_mailboxes, punycode
from mailqueue.message.headers import ADDRESS_ARGUMENT_HEADERS, punycode_address_headers

POLICY = email.policy.SMTP
MAX_LINE = 78  # POLICY.max_line_length: the longest line, CRLF excluded
_REGISTRY: dict[str, type] = POLICY.header_factory.registry  # type: ignore[attr-defined]
# Headers the MIME structure writes: given again in ``headers``, the email package refuses
# them or writes them twice; only the standard build knows which.
_MIME_HEADERS = frozenset({"mime-version", "content-type", "content-transfer-encoding", "content-disposition"})

_SPECIALS = frozenset('()<>@,:;."[]\\')


# --- The header block -------------------------------------------------------------------------


def header_block(items: list[tuple[str, Any]]) -> tuple[list[bytes], str] | None:
    """The lines of ``header_items()`` and the Message-ID, or None for the standard build.

    A header we cannot write directly is written by the email package on its own: the
    same code as in the standard build, so the same bytes, at a fraction of the cost of
    building the whole message that way.
    """
    lines = []
    message_id = None
    seen: set[str] = set()
    for name, value in items:
        key = name.lower()
        if key in _MIME_HEADERS or key in seen and getattr(_REGISTRY.get(key), "max_count", None):
            return None  # the email package refuses a second one: let it say so
        seen.add(key)
        line = _direct_line(name, key, value)
        text = value
        if line is None:
            standard = _standard_line(name, value)
            if standard is None:
                return None
            line, text = standard
        lines.append(line)
        if key == "message-id":
            message_id = text
    return (lines, message_id) if message_id else None


def _direct_line(name: str, key: str, value: Any) -> bytes | None:
    if key == "date":
        # A datetime (the generated Date) is written as the email package writes it.
        if not isinstance(value, datetime.datetime):
            return None
        return f"{name}: {email.utils.format_datetime(value)}\r\n".encode("ascii")
    if not isinstance(value, str):
        return None
    if key == "message-id":
        return message_id(name, value)
    kind = _REGISTRY.get(key, UnstructuredHeader)
    if key in ADDRESS_ARGUMENT_HEADERS or issubclass(kind, AddressHeader):
        return addresses(name, value)
    if issubclass(kind, UnstructuredHeader):
        return unstructured(name, value)
    return None


def _standard_line(name: str, value: Any) -> tuple[bytes, str] | None:
    """One header as the standard build writes it, and its parsed value; None if the
    email package raises (the standard build of the whole message then raises it)."""
    try:
        holder = email.message.EmailMessage(policy=POLICY)
        holder[name] = value
        punycode_address_headers(holder)
        header = holder[name]
        return POLICY.fold_binary(name, header), str(header)
    except Exception:  # noqa: BLE001 - whatever it is, the standard build raises it again
        return None


# --- Writing ------------------------------------------------------------------------------


def fold(name: str, pieces: list[str]) -> bytes | None:
    """``Name: value`` folded where the email package folds it, for ASCII values.

    ``pieces`` are the value cut where it may be folded: each starts with its space,
    except the first and the list separators. Like the email package, we keep the whole
    value on the first line if it fits, else on a line of its own, else place the pieces
    one by one, each on the current line or at the start of a new one. None if a piece
    fits nowhere (the email package would then encode it as an encoded word).
    """
    value = "".join(pieces)
    if len(name) + 2 + len(value) <= MAX_LINE:
        return f"{name}: {value}\r\n".encode("ascii")
    if len(value) + 1 <= MAX_LINE:
        return f"{name}:\r\n {value}\r\n".encode("ascii")
    lines = [name + ": "]
    for piece in pieces:
        if len(piece) <= MAX_LINE - len(lines[-1]):
            lines[-1] += piece
            continue
        if len(piece) + 1 > MAX_LINE:
            return None
        if lines[-1].endswith(" "):  # the space moves to the start of the new line
            lines[-1] = lines[-1][:-1]
            lines.append(" " + piece)
        elif piece.startswith(" "):
            lines.append(piece)
        else:
            return None
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _words(text: str) -> list[str]:
    """``"a b c"`` as pieces to fold: ``["a", " ", "b", " ", "c"]``."""
    pieces: list[str] = []
    for word in text.split(" "):
        pieces += (" ", word)
    return pieces[1:]


def unstructured(name: str, value: str) -> bytes | None:
    """A free-text header (Subject, X-...): ASCII words folded as the email package folds
    them; non-ASCII text encoded as it encodes it, when the header fits on one line."""
    if not value:
        return f"{name}:\r\n".encode("ascii")
    if not _plain_text(value):
        return None
    if value.isascii():
        return fold(name, _words(value))
    return _one_line(name, _encoded_words(value))


def addresses(name: str, value: str) -> bytes | None:
    """An address header (From, To, Cc, Reply-To, Sender, ...), domains IDNA-encoded."""
    mailboxes = parse_mailboxes(value)
    if not mailboxes:
        return None
    if all(mailbox.domain.isascii() for mailbox in mailboxes) and value != _as_written(mailboxes):
        # The email package keeps the value's own spacing and angle brackets unless it
        # rewrites the header for IDNA domains: only the canonical spelling is ours to write.
        return None
    pieces: list[str] = []
    for mailbox in mailboxes:
        text = _mailbox_text(mailbox)
        if text is None:
            return None
        pieces += (",", f" {text}") if pieces else (text,)
    if all(mailbox.display is None or mailbox.display.isascii() for mailbox in mailboxes):
        return fold(name, pieces)
    return _one_line(name, "".join(pieces))


def message_id(name: str, value: str) -> bytes | None:
    """``<id@domain>`` in its plain form (make_msgid's output)."""
    if not MESSAGE_ID.fullmatch(value):
        return None
    return fold(name, [value])


def _as_written(mailboxes: list[Mailbox]) -> str:
    """The list in its canonical spelling: ``a@b, Name <c@d>``, before any encoding."""
    return ", ".join(
        f"{m.local}@{m.domain}" if m.display is None else f"{m.display} <{m.local}@{m.domain}>" for m in mailboxes
    )


def _mailbox_text(mailbox: Mailbox) -> str | None:
    """``local@domain`` or ``Name <local@domain>``, as the email package writes it."""
    try:
        domain = punycode(mailbox.domain)
    except InvalidMessage:
        return None  # the email package's build raises the same error, in its own order
    address = f"{mailbox.local}@{domain}"
    display = mailbox.display
    if display is None:
        return address
    if display.startswith('"'):
        text = display[1:-1]
        if not _plain_text(text) or not text.isascii():
            return None  # quoted non-ASCII names: the email package's own rules apply
        if domain != mailbox.domain and _SPECIALS.isdisjoint(text):
            # The email package rewrites a header with IDNA domains from its parsed
            # addresses, which drops quotes a name does not need.
            display = text
    elif not display.isascii():
        if not _plain_text(display):
            return None
        display = _encoded_words(display)
    return f"{display} <{address}>"


def _one_line(name: str, text: str) -> bytes | None:
    """``Name: text`` if it fits on one line. A longer one is left to the email package:
    it folds encoded words in ways its own parser reads back with spaces added or lost
    (a stdlib bug), and the fast path must stay identical to it."""
    line = f"{name}: {text}\r\n"
    return line.encode("ascii") if len(line) - 2 <= MAX_LINE else None


def _encoded_words(text: str) -> str:
    """``text`` as the email package writes it on one line: the ASCII words before the
    first and after the last non-ASCII word as they are, the run between them as one
    encoded word, Q or B, whichever it finds shorter."""
    words = text.split(" ")
    non_ascii = [index for index, word in enumerate(words) if not word.isascii()]
    first, last = non_ascii[0], non_ascii[-1] + 1
    run = " ".join(words[first:last]).encode("utf-8")
    q = run.decode("latin-1").translate(_Q_TABLE)
    b = binascii.b2a_base64(run, newline=False).decode("ascii")
    word = f"=?utf-8?q?{q}?=" if len(q) - len(b) < 5 else f"=?utf-8?b?{b}?="
    return " ".join([*words[:first], word, *words[last:]])


def _q_table() -> dict[int, str]:
    """RFC 2047 Q encoding as the email package does it (on latin-1 decoded bytes):
    letters, digits and ``-!*+/`` as they are, space as ``_``, other bytes as ``=XX``."""
    safe = b"-!*+/ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    table = {byte: f"={byte:02X}" for byte in range(256) if byte not in safe}
    table[ord(" ")] = "_"
    return table


_Q_TABLE = _q_table()


def _plain_text(text: str) -> bool:
    """Printable, single spaces between words, none at either end, no encoded words."""
    return (
        text.isprintable()
        and "  " not in text
        and "=?" not in text
        and not text.startswith(" ")
        and not text.endswith(" ")
    )
