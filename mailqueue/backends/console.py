"""Console backend: writes each message to a stream (stdout by default), for development."""

from __future__ import annotations

import email.message
import sys
import threading
from collections.abc import Iterable
from email.charset import Charset
from typing import IO, TYPE_CHECKING, Any

from mailqueue.backends.base import BaseEmailBackend

if TYPE_CHECKING:
    from mailqueue.message import EmailMessage

SEPARATOR = "-" * 79  # written after every message, so a reader can split the stream


def _output_charset(built: email.message.Message) -> str:
    charset = built.get_charset()
    name = charset.get_output_charset() if isinstance(charset, Charset) else None
    return name or "utf-8"


class EmailBackend(BaseEmailBackend):
    """Write messages to ``stream`` instead of sending them."""

    def __init__(self, fail_silently: bool = False, *, stream: IO[Any] | None = None, **kwargs: Any) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        # Looked up now, not at import, so a test that swaps sys.stdout is honoured.
        self.stream: IO[Any] | None = sys.stdout if stream is None else stream
        self._lock = threading.RLock()

    def write_message(self, message: EmailMessage) -> None:
        built = message.message()
        text = built.as_bytes().decode(_output_charset(built))
        assert self.stream is not None
        self.stream.write(f"{text}\n{SEPARATOR}\n")

    def send_messages(self, email_messages: Iterable[EmailMessage]) -> int:
        """Write every message, flushing after each; thread-safe."""
        if not email_messages:
            return 0
        count = 0
        with self._lock:
            try:
                created = self.open()
                try:
                    for message in email_messages:
                        self.write_message(message)
                        assert self.stream is not None
                        self.stream.flush()  # a reader tailing the stream sees whole messages
                        count += 1
                finally:
                    if created:
                        self.close()
            except Exception:
                if not self.fail_silently:
                    raise
        return count
