"""The wire format: the only contract between the producer and the workers.

A payload is JSON-safe: the RFC 5322 bytes (base64), the SMTP envelope and the
Message-ID that identifies the delivery. Workers never rebuild a message, and no
credentials ever travel in a payload.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mailqueue.exceptions import MessageTooLarge, UnsupportedPayload
from mailqueue.message.addresses import envelope_address
from mailqueue.message.fastpath import serialize

if TYPE_CHECKING:
    from mailqueue.message import EmailMessage

WIRE_VERSION = 1
DELIVER_TASK = "mailqueue.deliver"  # producers send this task by name; workers/tasks.py defines it


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message ready for SMTP: bytes plus MAIL FROM / RCPT TO."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    message: bytes
    enqueued_at: float

    @classmethod
    def from_email_message(cls, email_message: EmailMessage, *, max_size: int) -> Envelope:
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
        )

    def with_recipients(self, recipients: Iterable[str]) -> Envelope:
        return replace(self, recipients=tuple(recipients))

    def to_payload(self) -> dict[str, Any]:
        return {
            "v": WIRE_VERSION,
            "message_id": self.message_id,
            "sender": self.sender,
            "recipients": list(self.recipients),
            "message": base64.b64encode(self.message).decode("ascii"),
            "enqueued_at": self.enqueued_at,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Envelope:
        version = payload.get("v") if isinstance(payload, dict) else None
        if version != WIRE_VERSION:
            raise UnsupportedPayload(
                f"Payload version {version!r} is not supported (this mailqueue reads version {WIRE_VERSION})."
            )
        try:
            return cls(
                message_id=payload["message_id"],
                sender=payload["sender"],
                recipients=tuple(payload["recipients"]),
                message=base64.b64decode(payload["message"], validate=True),
                enqueued_at=float(payload["enqueued_at"]),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as error:
            raise UnsupportedPayload(f"Malformed payload: {error!r}") from None


def summarize(payloads: list[dict[str, Any]]) -> str:
    """What monitoring tools (Flower, celery inspect) show for a task instead of the mail itself."""
    first = payloads[0].get("message_id", "") if payloads else ""
    more = f" and {len(payloads) - 1} more" if len(payloads) > 1 else ""
    return f"[{len(payloads)} message(s): {first}{more}]"
