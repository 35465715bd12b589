"""The fast path: a message's RFC 5322 bytes (policy SMTP) written without the email package.

``EmailMessage.message().as_bytes()`` spends most of its time parsing and refolding headers
(``email.headerregistry``) that we wrote ourselves a moment before. For the common
messages (text and html bodies, plain or alternative, simple attachments, ordinary
headers, ASCII or UTF-8 text, IDNA domains) ``serialize()`` writes the same bytes
directly, more than ten times faster. Anything else, and any doubt, takes the standard
build: the fast path never guesses.

Validation is shared, not duplicated: ``header_items()`` refuses header injection exactly
as ``message()`` does, and every address it cannot parse with certainty sends the message
down the standard path, which raises its usual errors.
"""

from __future__ import annotations

import binascii
import random
import re
import sys
from collections.abc import Sequence
from email import quoprimime
from email.policy import Policy
from typing import Any, NamedTuple

from mailqueue.message import fastheaders
from mailqueue.message.attachments import decode_text
from mailqueue.message.model import EmailMessage, EmailMultiAlternatives

__all__ = ["Serialized", "fast_serialize", "serialize"]

POLICY = fastheaders.POLICY  # the one policy the fast path writes (SMTP)
_MAX_LINE = fastheaders.MAX_LINE
_TOKEN = re.compile(r"[a-z0-9][a-z0-9.+-]*")  # a MIME subtype we write without quoting
_FILENAME = re.compile(r"[A-Za-z0-9._-]+(?: [A-Za-z0-9._-]+)*")
_MIME_VERSION = b"MIME-Version: 1.0\r\n"
_REMOVED_ATTRIBUTES = ("mixed_subtype", "alternative_subtype")  # refused by the standard build


class Serialized(NamedTuple):
    message: bytes
    message_id: str


class _Part(NamedTuple):
    """A MIME part before flattening: its header lines and its body, both CRLF-terminated."""

    headers: list[bytes]
    body: bytes


def serialize(email_message: Any, *, policy: Policy = POLICY) -> Serialized:
    """The message's bytes and Message-ID: the fast path if it applies, else the email package."""
    fast = fast_serialize(email_message, policy=policy)
    if fast is not None:
        return fast
    built = email_message.message(policy=policy)
    return Serialized(built.as_bytes(), str(built["Message-ID"]))


def fast_serialize(email_message: Any, *, policy: Policy = POLICY) -> Serialized | None:
    """The fast path alone: None when the message is not one it writes (nothing raised then,
    except the validation errors ``header_items()`` raises for every build)."""
    if policy is not POLICY or not _plain_class(type(email_message)):
        return None
    if email_message._charset() != "utf-8":
        return None
    tree = _MessageTree(email_message)
    if not tree.possible():
        return None
    top = fastheaders.header_block(email_message.header_items())
    if top is None:
        return None
    lines, message_id = top
    part = tree.build()
    if part is None:
        return None
    return Serialized(b"".join(part.headers) + b"".join(lines) + b"\r\n" + part.body, message_id)


# --- Which messages ---------------------------------------------------------------------------

_PLAIN_CLASSES: dict[type, bool] = {}


def _plain_class(cls: type) -> bool:
    """True if ``cls`` builds its message exactly as EmailMessage or EmailMultiAlternatives
    does: a subclass that overrides a building step must get the standard build."""
    known = _PLAIN_CLASSES.get(cls)
    if known is None:
        known = _PLAIN_CLASSES[cls] = issubclass(cls, EmailMessage) and (
            getattr(cls, "message", None) is EmailMessage.message
            and getattr(cls, "_add_attachments", None) is EmailMessage._add_attachments
            and getattr(cls, "_charset", None) is EmailMessage._charset
            and getattr(cls, "_add_bodies", None) in (EmailMessage._add_bodies, EmailMultiAlternatives._add_bodies)
        )
    return known


class _MessageTree:
    """The MIME tree ``message()`` would build: text body, alternatives, attachments."""

    def __init__(self, email_message: Any) -> None:
        self.body = email_message.body
        self.subtype = email_message.content_subtype
        self.attachments = email_message.attachments
        multi = type(email_message)._add_bodies is EmailMultiAlternatives._add_bodies
        self.alternatives = email_message.alternatives if multi else []
        # message() sets the body on the top part unless other parts carry the content; the
        # top part then keeps its MIME-Version header when it becomes a multipart.
        self.has_body = bool(self.body) or not (self.alternatives or self.attachments)
        self.removed_attributes = any(hasattr(email_message, name) for name in _REMOVED_ATTRIBUTES)

    def possible(self) -> bool:
        """Cheap checks, before any validation: could the fast path write this?

        Legacy ``MIMEBase`` attachments and the removed ``mixed_subtype`` and
        ``alternative_subtype`` attributes take the standard build, which attaches the
        first as they are and refuses the others as Django 6.1 does.
        """
        return (
            not self.removed_attributes
            and isinstance(self.body, str)
            and isinstance(self.subtype, str)
            and _TOKEN.fullmatch(self.subtype) is not None
            and all(_text_alternative(alternative) is not None for alternative in self.alternatives)
            and all(_simple_attachment(attachment) for attachment in self.attachments)
        )

    def build(self) -> _Part | None:
        parts = [_text_part(self.body, self.subtype)] if self.has_body else []
        if self.alternatives:
            for alternative in self.alternatives:
                text, subtype = _text_alternative(alternative) or ("", "")
                parts.append(_text_part(text, subtype, mime_version=True))
            parts = [_multipart("alternative", parts)]
        if self.attachments:
            parts += [_attachment_part(attachment) for attachment in self.attachments]
            parts = [_multipart("mixed", parts)]
        part = parts[0]
        if part is None or not self.has_body:
            return part
        if part.headers[0].startswith(b"Content-Type: multipart/"):
            return _Part([_MIME_VERSION, *part.headers], part.body)
        return _Part([*part.headers, _MIME_VERSION], part.body)


def _text_alternative(alternative: Sequence[Any]) -> tuple[str, str] | None:
    """``(text, subtype)`` of a text/* alternative, or None (other types take the standard path)."""
    content, mimetype = alternative
    maintype, _, subtype = mimetype.partition("/") if isinstance(mimetype, str) else ("", "", "")
    if maintype != "text" or not _TOKEN.fullmatch(subtype):
        return None
    if isinstance(content, bytes):
        try:
            content = content.decode()
        except UnicodeDecodeError:
            return None
    return (content, subtype) if isinstance(content, str) else None


def _simple_attachment(attachment: Any) -> bool:
    """A ``(filename, content, mimetype)`` with a plain ASCII filename and a simple type."""
    if not (isinstance(attachment, tuple) and len(attachment) == 3):
        return False  # a MIMEPart, used as it is: the standard path
    filename, content, mimetype = attachment
    if not (isinstance(filename, str) and _FILENAME.fullmatch(filename) and isinstance(mimetype, str)):
        return False
    maintype, _, subtype = mimetype.partition("/")
    if not (_TOKEN.fullmatch(maintype) and _TOKEN.fullmatch(subtype)) or maintype in ("message", "multipart"):
        return False
    content, mimetype = decode_text(content, mimetype)
    return isinstance(content, str) if mimetype.startswith("text/") else isinstance(content, bytes)


# --- Parts ----------------------------------------------------------------------------------


def _text_part(text: str, subtype: str, *, mime_version: bool = False, filename: str | None = None) -> _Part | None:
    encoded = encode_text(text)
    if encoded is None:
        return None
    cte, body = encoded
    headers = _finish_headers([b'Content-Type: text/%s; charset="utf-8"\r\n' % subtype.encode(), cte],
                              mime_version=mime_version, filename=filename)
    return None if headers is None else _Part(headers, body)


def _attachment_part(attachment: Any) -> _Part | None:
    filename, content, mimetype = attachment
    content, mimetype = decode_text(content, mimetype)
    maintype, _, subtype = mimetype.partition("/")
    if maintype == "text":
        return _text_part(content, subtype, mime_version=True, filename=filename)
    headers = _finish_headers([b"Content-Type: %s\r\n" % mimetype.encode(), b"Content-Transfer-Encoding: base64\r\n"],
                              mime_version=True, filename=filename)
    return None if headers is None else _Part(headers, encode_base64(content))


def _finish_headers(headers: list[bytes], *, mime_version: bool, filename: str | None) -> list[bytes] | None:
    if filename is not None:
        disposition = b'Content-Disposition: attachment; filename="%s"\r\n' % filename.encode()
        if len(disposition) - 2 > _MAX_LINE:
            return None
        headers.append(disposition)
    if any(len(line) - 2 > _MAX_LINE for line in headers):
        return None
    if mime_version:
        headers.append(_MIME_VERSION)
    return headers


def _multipart(subtype: str, parts: list[_Part | None]) -> _Part | None:
    """A multipart part, flattened as the email package's generator does."""
    texts = []
    for part in parts:
        if part is None:
            return None
        texts.append(b"".join(part.headers) + b"\r\n" + part.body)
    boundary = _boundary(texts)
    delimiter = b"--" + boundary
    body = delimiter + b"\r\n" + (b"\r\n" + delimiter + b"\r\n").join(texts) + b"\r\n" + delimiter + b"--\r\n"
    header = b'Content-Type: multipart/%s; boundary="%s"\r\n' % (subtype.encode(), boundary)
    if len(header) - 2 > _MAX_LINE:
        header = b'Content-Type: multipart/%s;\r\n boundary="%s"\r\n' % (subtype.encode(), boundary)
    return _Part([header], body)


def _boundary(texts: list[bytes]) -> bytes:
    """A boundary in the email package's format, found in none of the parts."""
    while True:
        boundary = b"===============%019d==" % random.randrange(sys.maxsize)
        if not any(boundary in text for text in texts):
            return boundary


# --- Bodies ---------------------------------------------------------------------------------


def encode_text(text: str) -> tuple[bytes, bytes] | None:
    """``(Content-Transfer-Encoding line, body)`` for UTF-8 text, chosen as the email package
    chooses: 7bit or 8bit when every line fits, else the shorter of quoted-printable and
    base64 judged on the first ten lines. Line ends become CRLF."""
    try:
        lines = text.encode("utf-8").splitlines()
    except UnicodeEncodeError:
        return None  # lone surrogates: the email package decides what they become
    if max(map(len, lines), default=0) <= _MAX_LINE:
        body = b"\r\n".join(lines) + b"\r\n"
        return (b"Content-Transfer-Encoding: 7bit\r\n" if body.isascii() else
                b"Content-Transfer-Encoding: 8bit\r\n"), body
    sniff = b"\r\n".join(lines[:10]) + b"\r\n"
    if len(quoprimime.body_encode(sniff.decode("latin-1"), _MAX_LINE)) > len(binascii.b2a_base64(sniff)):
        return b"Content-Transfer-Encoding: base64\r\n", encode_base64(b"\r\n".join(lines) + b"\r\n")
    encoded = quoprimime.body_encode((b"\n".join(lines) + b"\n").decode("latin-1"), _MAX_LINE, "\r\n")
    return b"Content-Transfer-Encoding: quoted-printable\r\n", encoded.encode("ascii")


def encode_base64(data: bytes) -> bytes:
    """Base64 in lines of 76 characters (57 bytes each), CRLF-terminated."""
    encoded = binascii.b2a_base64(data, newline=False)
    return b"".join(encoded[i : i + 76] + b"\r\n" for i in range(0, len(encoded), 76))
