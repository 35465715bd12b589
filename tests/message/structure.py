"""Describe a serialized message as comparable data: the MIME tree, headers and payloads.

Two messages built from the same inputs differ only in Date, Message-ID and multipart
boundaries; ``describe()`` masks those, so equal descriptions mean equal messages as a mail
client sees them. ``normalized_bytes()`` does the same on the raw serialization, for a
byte-for-byte comparison.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.headerregistry import ParameterizedMIMEHeader
from email.message import Message
from typing import Any, cast

MASKED = "<masked>"
# Headers whose values are generated anew for every message.
GENERATED_HEADERS = frozenset({"date", "message-id"})

_BOUNDARY = re.compile(rb"={15}\d+==")
_GENERATED_LINE = re.compile(rb"^(Date|Message-ID): [^\r\n]*", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True)
class Part:
    """One MIME part: its headers (decoded, in order), type, encoding and decoded payload."""

    headers: tuple[tuple[str, Any], ...]
    content_type: str
    params: tuple[tuple[str, str], ...]
    cte: str | None
    disposition: str | None
    filename: str | None
    payload: bytes | None
    parts: tuple[Part, ...]
    defects: tuple[str, ...]


def as_bytes(source: bytes | str | Message) -> bytes:
    """The serialized message: a stdlib message is flattened with its own policy."""
    if isinstance(source, Message):
        return source.as_bytes()
    return source.encode("utf-8", "surrogateescape") if isinstance(source, str) else source


def describe(source: bytes | str | Message) -> Part:
    """Parse ``source`` with the modern email API and describe its whole tree."""
    parsed = email.message_from_bytes(as_bytes(source), policy=email.policy.default)
    return describe_part(parsed)


def describe_part(part: Message) -> Part:
    params = tuple(sorted((k, v) for k, v in part.get_params(failobj=[])[1:] if k != "boundary"))
    if part.is_multipart() or part.get_content_maintype() == "message":
        children = tuple(describe_part(child) for child in _children(part))
        payload = None
    else:
        children = ()
        payload = cast(bytes, part.get_payload(decode=True))
    return Part(
        headers=tuple(_header(name, value) for name, value in part.items()),
        content_type=part.get_content_type(),
        params=params,
        cte=part.get("Content-Transfer-Encoding") and str(part["Content-Transfer-Encoding"]),
        disposition=part.get_content_disposition(),
        filename=part.get_filename(),
        payload=payload,
        parts=children,
        defects=tuple(sorted(type(defect).__name__ for defect in part.defects)),
    )


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    return [child for child in payload if isinstance(child, Message)] if isinstance(payload, list) else []


def _header(name: str, value: Any) -> tuple[str, Any]:
    """A header as ``(name, decoded value)``; generated values and boundaries are masked."""
    if name.lower() in GENERATED_HEADERS:
        return name, MASKED
    if isinstance(value, ParameterizedMIMEHeader):
        params = tuple(sorted((k, v) for k, v in value.params.items() if k != "boundary"))
        return name, (str(value).split(";", 1)[0].strip().lower(), params)
    return name, str(value)


def normalized_bytes(source: bytes | str | Message) -> bytes:
    """The raw serialization with Date and Message-ID values masked and boundaries
    renamed in order of first appearance."""
    raw = _GENERATED_LINE.sub(lambda m: m.group(1) + b": " + MASKED.encode(), as_bytes(source))
    names: dict[bytes, bytes] = {}

    def rename(match: re.Match[bytes]) -> bytes:
        return names.setdefault(match.group(0), b"BOUNDARY-%d" % len(names))

    return _BOUNDARY.sub(rename, raw)


def tree(part: Part) -> tuple[Any, ...]:
    """Just the MIME tree, e.g. ``("multipart/mixed", ("text/plain",), ...)``: short and
    readable in assertion messages."""
    return (part.content_type, *(tree(child) for child in part.parts))
