"""A message given as a whole .eml file, sendable through any backend like an EmailMessage."""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
from collections.abc import Sequence
from email.policy import Policy

from mailqueue.exceptions import InvalidMessage
from mailqueue.message import EmailMessage, make_msgid


def _addresses(message: email.message.Message, header: str) -> list[str]:
    values = [str(value) for value in message.get_all(header, [])]
    return [email.utils.formataddr(pair) for pair in email.utils.getaddresses(values) if pair[1]]


class RawEmailMessage(EmailMessage):
    """The bytes of an RFC 5322 message, sent as they are.

    Recipients come from the To, Cc and Bcc headers unless given; the Bcc header is
    removed. A Message-ID and a Date are added when missing, once, so every backend
    (and every retry) sees the same message.
    """

    def __init__(
        self,
        raw: bytes,
        *,
        from_email: str | None = None,
        to: Sequence[str] | None = None,
        cc: Sequence[str] | None = None,
        bcc: Sequence[str] | None = None,
    ) -> None:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        if parsed.defects and not parsed.keys():
            raise InvalidMessage(f"The .eml input is not an RFC 5322 message: {parsed.defects[0]!r}")
        senders = _addresses(parsed, "From")
        if not (from_email or senders):
            raise InvalidMessage("The .eml message has no From header; give one with --from.")
        super().__init__(
            subject=str(parsed.get("Subject", "")),
            from_email=from_email or senders[0],
            to=list(to) if to else _addresses(parsed, "To"),
            cc=list(cc) if cc else _addresses(parsed, "Cc"),
            bcc=list(bcc) if bcc else _addresses(parsed, "Bcc"),
        )
        del parsed["Bcc"]
        if parsed["Message-ID"] is None:
            parsed["Message-ID"] = make_msgid()
        if parsed["Date"] is None:
            parsed["Date"] = email.utils.formatdate(localtime=False)
        self.raw = parsed.as_bytes()

    def message(self, *, policy: Policy = email.policy.default) -> email.message.EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=policy)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed
