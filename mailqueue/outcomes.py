"""Per-recipient delivery outcomes.

Django throws away what the SMTP server said about each recipient; the queue needs it to
tell a retry from a failure, so the SMTP backend reports one outcome per recipient.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.StrEnum):
    ACCEPTED = "accepted"
    TRANSIENT = "transient"  # 4xx, disconnect, timeout, refused connection: try again later
    PERMANENT = "permanent"  # 5xx: retrying cannot help



@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """What happened to one envelope recipient on one attempt."""

    recipient: str
    status: Status
    code: int | None = None  # SMTP reply code; None when no reply was received
    reply: str = ""

    @property
    def accepted(self) -> bool:
        return self.status is Status.ACCEPTED

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status.value, "code": self.code, "reply": self.reply}


def status_for_code(code: int | None) -> Status:
    """Classify an SMTP reply code; anything that is not a 5xx may succeed later."""
    if code is not None and 200 <= code < 300:
        return Status.ACCEPTED
    if code is not None and 500 <= code < 600:
        return Status.PERMANENT
    return Status.TRANSIENT
