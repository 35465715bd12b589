"""Attachments: what ``attach()`` stores, and how each kind becomes a MIME part.

The email package's content manager takes a different argument shape per main type
(str for ``text/*``, a message for ``message/*``, bytes for the rest); this module is the
one place that knows those shapes.
"""

from __future__ import annotations

import email
import mimetypes
from email.message import EmailMessage as StdlibEmailMessage
from email.message import Message
from email.policy import Policy
from typing import Any, NamedTuple

from mailqueue.exceptions import InvalidMessage
from mailqueue.message.headers import has_line_break

# MIME type of an attachment whose type is not given and cannot be guessed from its name.
DEFAULT_ATTACHMENT_MIME_TYPE = "application/octet-stream"


class EmailAttachment(NamedTuple):
    filename: str | None
    content: Any
    mimetype: str


def split_mimetype(mimetype: str) -> tuple[str, str]:
    """Return ``(maintype, subtype)``, or raise naming the malformed MIME type."""
    maintype, slash, subtype = str(mimetype).partition("/")
    if not (maintype and slash and subtype):
        raise InvalidMessage(f"Invalid MIME type {mimetype!r}: expected 'maintype/subtype'.")
    return maintype, subtype


def guess_mimetype(filename: str | None) -> str:
    """The MIME type implied by ``filename``'s extension, or the default."""
    if filename is None:
        return DEFAULT_ATTACHMENT_MIME_TYPE
    return mimetypes.guess_type(filename)[0] or DEFAULT_ATTACHMENT_MIME_TYPE


def check_filename(filename: object) -> None:
    """Refuse a line break in a filename: it ends up in a Content-Disposition header."""
    if isinstance(filename, str) and has_line_break(filename):
        raise InvalidMessage(f"Attachment filename contains a line break: {filename!r}")


def decode_text(content: Any, mimetype: str) -> tuple[Any, str]:
    """Decode ``text/*`` bytes as UTF-8; bytes that are not UTF-8 are really binary, so
    they keep their bytes and become ``application/octet-stream``."""
    if split_mimetype(mimetype)[0] == "text" and isinstance(content, bytes):
        try:
            return content.decode(), mimetype
        except UnicodeDecodeError:
            return content, DEFAULT_ATTACHMENT_MIME_TYPE
    return content, mimetype


def make_attachment(filename: str | None, content: Any, mimetype: str | None) -> EmailAttachment:
    """What ``attach(filename, content, mimetype)`` stores: the type guessed if not given,
    text bytes decoded."""
    if content is None:
        raise ValueError("content must be provided.")
    check_filename(filename)
    content, mimetype = decode_text(content, mimetype or guess_mimetype(filename))
    return EmailAttachment(filename, content, mimetype)


def to_bytes(value: Any, encoding: str = "utf-8") -> bytes:
    """Bytes for a non-text part: str is encoded, other objects go through str()."""
    if isinstance(value, bytes):
        return value if encoding == "utf-8" else value.decode().encode(encoding)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return str(value).encode(encoding)


def rfc822_message(content: Any, policy: Policy) -> Message:
    """The message inside a ``message/*`` attachment.

    ``content`` may be a stdlib message (used as is), anything with a ``message(policy=)``
    method such as a mailqueue EmailMessage (built with the outer policy), or the raw
    message as str or bytes (parsed).
    """
    if isinstance(content, Message):
        return content
    build = getattr(content, "message", None)
    if callable(build):
        built: Message = build(policy=policy)
        return built
    return email.message_from_bytes(to_bytes(content), policy=policy)


def add_attachment(msg: StdlibEmailMessage, attachment: Any, *, encoding: str) -> None:
    """Add one ``(filename, content, mimetype)`` attachment to the multipart ``msg``."""
    filename, content, mimetype = attachment
    check_filename(filename)
    # Attachments may be appended to .attachments directly, bypassing attach().
    content, mimetype = decode_text(content, mimetype)
    maintype, subtype = split_mimetype(mimetype)
    if maintype == "text":
        msg.add_attachment(content, subtype=subtype, filename=filename, charset=encoding)
    elif maintype == "message":
        inner = rfc822_message(content, msg.policy)
        msg.add_attachment(inner, subtype=subtype, filename=filename)
    else:
        msg.add_attachment(to_bytes(content), maintype=maintype, subtype=subtype, filename=filename)
