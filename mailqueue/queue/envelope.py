"""The wire format: the only contract between the producer and the workers.

A payload is JSON-safe: the RFC 5322 bytes (base64), the SMTP envelope and the
Message-ID that identifies the delivery. Workers never rebuild a message, and no
credentials ever travel in a payload.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mailqueue.exceptions import MessageTooLarge, UnsupportedPayload
from mailqueue.message.addresses import check_envelope_address, envelope_address
from mailqueue.message.fastpath import serialize
from mailqueue.message.headers import has_line_break

if TYPE_CHECKING:
    from mailqueue.message import EmailMessage

# Version 2 adds "relay". A payload for the default relay is still written as version 1, so
# workers of an older release keep reading it; one that names a relay is version 2, which they
# dead-letter instead of sending it through the wrong relay.
WIRE_VERSION = 2
READABLE_VERSIONS = (1, 2)
DELIVER_TASK = "mailqueue.deliver"  # producers send this task by name; workers/tasks.py defines it
DEFAULT_RELAY = "default"  # the workers' EMAIL_* settings (MAILQUEUE_RELAYS names the others)
RELAY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_relay_name(name: object, *, what: str = "relay") -> str:
    """A relay name as producers may write it and workers read it: letters, digits, "_.-", at most 64."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str naming a relay in the workers' MAILQUEUE_RELAYS, "
                        f"got {type(name).__name__}")
    if RELAY_NAME.fullmatch(name) is None:
        raise ValueError(f"{what}={name!r} is not a relay name: use letters, digits, '_', '.' and '-' "
                         "(at most 64, starting with a letter or digit).")
    return name


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message ready for SMTP: bytes plus MAIL FROM / RCPT TO."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    message: bytes
    enqueued_at: float
    relay: str = DEFAULT_RELAY  # a name only: credentials stay in the workers' settings

    @classmethod
    def from_email_message(
        cls, email_message: EmailMessage, *, max_size: int, relay: str = DEFAULT_RELAY
    ) -> Envelope:
        """Serialize once, validate everything, and refuse what cannot be sent.

        ``mailqueue.message.fastpath`` writes the common messages directly and hands the rest to
        ``message(policy=SMTP)``; both raise the same validation errors.
        """
        raw, message_id = serialize(email_message, policy=email.policy.SMTP)
        if len(raw) > max_size:
            raise MessageTooLarge(
                f"Message {message_id} is {len(raw)} bytes, larger than "
                f"MAILQUEUE_MAX_MESSAGE_SIZE ({max_size} bytes)."
            )
        return cls(
            message_id=message_id,
            sender=envelope_address(email_message.from_email),
            recipients=tuple(envelope_address(address) for address in email_message.recipients()),
            message=raw,
            enqueued_at=time.time(),
            relay=relay,
        )

    def with_recipients(self, recipients: Iterable[str]) -> Envelope:
        return replace(self, recipients=tuple(recipients))

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "v": 1,
            "message_id": self.message_id,
            "sender": self.sender,
            "recipients": list(self.recipients),
            "message": base64.b64encode(self.message).decode("ascii"),
            "enqueued_at": self.enqueued_at,
        }
        if self.relay != DEFAULT_RELAY:
            payload.update(v=2, relay=self.relay)
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Envelope:
        """Read a payload off the broker, refusing anything the producer could not have written.

        What comes off the broker is untrusted: anyone who can write to Redis can put a task
        there. Each field is checked for type and form (addresses with the producer's own rule,
        ``check_envelope_address``); anything else raises UnsupportedPayload naming the field.
        """
        version = payload.get("v") if isinstance(payload, dict) else None
        if type(version) is not int or version not in READABLE_VERSIONS:  # not True, not 1.0
            raise UnsupportedPayload(
                f"Payload version {version!r} is not supported (this mailqueue reads versions "
                f"{' and '.join(map(str, READABLE_VERSIONS))})."
            )
        return cls(
            message_id=_message_id(_field(payload, "message_id")),
            sender=_address("sender", _field(payload, "sender")),
            recipients=_recipients(_field(payload, "recipients")),
            message=_message(_field(payload, "message")),
            enqueued_at=_timestamp(_field(payload, "enqueued_at")),
            relay=_relay(version, payload),
        )


def _malformed(name: str, problem: str) -> UnsupportedPayload:
    return UnsupportedPayload(f"Malformed payload: field {name!r} {problem}")


def _field(payload: dict[str, Any], name: str) -> Any:
    if name not in payload:
        raise _malformed(name, "is missing")
    return payload[name]


def _message_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _malformed("message_id", f"must be a non-empty str, got {_shown(value)}")
    if has_line_break(value) or "\0" in value:  # the producer refuses these in any header
        raise _malformed("message_id", f"contains a line break or NUL: {value!r}")
    return value


def _address(name: str, value: Any) -> str:
    try:
        return check_envelope_address(value)
    except (TypeError, ValueError) as error:  # InvalidMessage is a ValueError
        raise _malformed(name, f"is not a valid envelope address: {error}") from None


def _recipients(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _malformed("recipients", f"must be a non-empty list of addresses, got {_shown(value)}")
    return tuple(_address(f"recipients[{index}]", item) for index, item in enumerate(value))


def _message(value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise _malformed("message", f"must be a non-empty base64 str, got {_shown(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:  # ValueError: a non-ASCII str
        raise _malformed("message", f"is not valid base64 ({error})") from None


def _timestamp(value: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):  # not a bool, not NaN
        raise _malformed("enqueued_at", f"must be a number (a Unix time), got {_shown(value)}")
    return float(value)


def _relay(version: int, payload: dict[str, Any]) -> str:
    if version == 1:
        if "relay" in payload:  # a version 1 producer never writes it: an old worker would ignore it
            raise _malformed("relay", "is not part of a version 1 payload")
        return DEFAULT_RELAY
    try:
        return check_relay_name(_field(payload, "relay"))
    except (TypeError, ValueError) as error:
        raise _malformed("relay", f"is invalid: {error}") from None


def _shown(value: Any) -> str:
    """A value as an error message shows it: its type and a bounded repr."""
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 80 else text[:77] + '...'}"

def summarize(payloads: list[dict[str, Any]]) -> str:
    """What monitoring tools (Flower, celery inspect) show for a task instead of the mail itself."""
    first = payloads[0].get("message_id", "") if payloads else ""
    more = f" and {len(payloads) - 1} more" if len(payloads) > 1 else ""
    return f"[{len(payloads)} message(s): {first}{more}]"
