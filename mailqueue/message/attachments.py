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
    if not isinstance(mimetype, str):
        raise TypeError(f'"mimetype" must be a str such as "text/html", not {type(mimetype).__name__}.')
    maintype, slash, subtype = mimetype.partition("/")
    if not (maintype and slash and subtype):
        raise InvalidMessage(f"Invalid MIME type {mimetype!r}: expected 'maintype/subtype'.")
    return maintype, subtype


def guess_mimetype(filename: str | None) -> str:
    """The MIME type implied by ``filename``'s extension, or the default."""
    if filename is None:
        return DEFAULT_ATTACHMENT_MIME_TYPE
    return mimetypes.guess_type(filename)[0] or DEFAULT_ATTACHMENT_MIME_TYPE


def check_filename(filename: object) -> None:
    """Refuse what cannot be a filename: anything but a str, None or the email package's
    RFC 2231 ``(charset, language, name)`` tuple (Django crashes on bytes or a list at
    send time), or a line break (it ends up in a Content-Disposition header)."""
    name = filename[2] if _rfc2231_filename(filename) else filename  # type: ignore[index]
    if name is not None and not isinstance(name, str):
        raise TypeError(f'Attachment "filename" must be a str or None, not {type(filename).__name__}: {filename!r}')
    if isinstance(name, str) and has_line_break(name):
        raise InvalidMessage(f"Attachment filename contains a line break: {filename!r}")


def _rfc2231_filename(filename: object) -> bool:
    return (
        isinstance(filename, tuple) and len(filename) == 3 and isinstance(filename[0], str)
        and isinstance(filename[1], (str, type(None))) and isinstance(filename[2], str)
    )


def check_content(content: object, mimetype: str, *, argument: str = "content", alternative: bool = False) -> None:
    """Refuse content the email package cannot write for ``mimetype`` (Django crashes there
    with a KeyError at send time): ``text/*`` takes str or bytes; an alternative of another
    type takes bytes-like or str (anything else, Django crashes on or writes as its repr).
    Non-text attachments go through str() as in Django."""
    maintype = split_mimetype(mimetype)[0]
    if maintype == "text":
        allowed: tuple[type, ...] = (str, bytes)
    elif alternative and maintype != "message":
        allowed = (str, bytes, bytearray, memoryview)
    else:
        return
    if not isinstance(content, allowed):
        kinds = " or ".join(kind.__name__ for kind in allowed)
        raise TypeError(f'"{argument}" must be {kinds} for {mimetype}, not {type(content).__name__}.')


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
    if mimetype is None and filename is not None and not isinstance(filename, str):
        raise TypeError('"mimetype" must be given with an RFC 2231 (charset, language, name) filename.')
    mimetype = mimetype or guess_mimetype(filename)
    check_content(content, mimetype)
    content, mimetype = decode_text(content, mimetype)
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
    check_content(content, mimetype)
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
