"""The limits a fleet is measured against: one connection, one process, pre-built bytes.

- ``smtplib_loop``: ``smtplib.SMTP.sendmail`` in a loop, lock-step: four round trips per
  message (MAIL, RCPT, DATA, the data), the classic limit of one connection.
- ``pipelined_loop``: RFC 2920 written out by hand, one round trip per message in steady
  state: after DATA's 354, one write carries the body, its dot, and the next message's
  MAIL, RCPT and DATA; the replies to all four come back together (DATA itself must wait
  for 354, so it is the last command of a group).

Both return the rate and the CPU the loop took per message (``time.process_time``).
"""

from __future__ import annotations

import re
import smtplib
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mailqueue.queue.envelope import Envelope

WARM_UP = 20
TIMEOUT = 30.0
_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class LoopResult:
    messages: int
    seconds: float
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_per_message(self) -> float:
        return self.cpu_seconds / self.messages


def measured(send: Callable[[Sequence[Envelope]], None], envelopes: Sequence[Envelope]) -> LoopResult:
    send(envelopes[:WARM_UP])
    cpu, started = time.process_time(), time.perf_counter()
    send(envelopes)
    return LoopResult(len(envelopes), time.perf_counter() - started, time.process_time() - cpu)


def smtplib_loop(port: int, envelopes: Sequence[Envelope]) -> LoopResult:
    """Lock-step over one persistent smtplib connection (its warm-up on the same connection)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT) as smtp:
        smtp.ehlo()

        def send(batch: Sequence[Envelope]) -> None:
            for envelope in batch:
                smtp.sendmail(envelope.sender, list(envelope.recipients), envelope.message)

        return measured(send, envelopes)


class PipelineRefused(RuntimeError):
    """The sink answered something else than the benchmark expects (it accepts everything)."""


class PipelinedConnection:
    """One raw SMTP connection speaking RFC 2920; every reply is checked, none is skipped."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.replies = self.sock.makefile("rb")
        self.expect(b"220")
        self.sock.sendall(b"EHLO bench.localhost\r\n")
        if b"PIPELINING" not in self.expect(b"250").upper():
            raise PipelineRefused("the server does not advertise PIPELINING")

    def expect(self, *codes: bytes) -> bytes:
        """Read one reply per code, in order; return their text."""
        text = []
        for code in codes:
            while True:
                line = self.replies.readline()
                if not line.startswith(code):
                    raise PipelineRefused(f"expected {code.decode()}, got {line!r}")
                text.append(line)
                if line[3:4] != b"-":
                    break
        return b"".join(text)

    def send(self, envelopes: Sequence[Envelope]) -> None:
        """Each envelope's body goes in one write with the next one's MAIL/RCPT/DATA."""
        if not envelopes:
            return
        self.sock.sendall(commands(envelopes[0]))
        self.expect(*transaction_codes(envelopes[0]))
        for index, envelope in enumerate(envelopes):
            following = envelopes[index + 1] if index + 1 < len(envelopes) else None
            self.sock.sendall(data(envelope) + (commands(following) if following else b""))
            self.expect(b"250", *(transaction_codes(following) if following else ()))

    def close(self) -> None:
        try:
            self.sock.sendall(b"QUIT\r\n")
            self.expect(b"221")
        finally:
            self.replies.close()
            self.sock.close()


def commands(envelope: Envelope) -> bytes:
    rcpts = b"".join(b"RCPT TO:<%s>\r\n" % address.encode() for address in envelope.recipients)
    return b"MAIL FROM:<%s>\r\n%bDATA\r\n" % (envelope.sender.encode(), rcpts)


def transaction_codes(envelope: Envelope) -> tuple[bytes, ...]:
    return (b"250", *(b"250" for _ in envelope.recipients), b"354")


def data(envelope: Envelope) -> bytes:
    """The message, dot-stuffed, with CRLF line ends and the end-of-data line."""
    body = re.sub(rb"\r?\n|\r", b"\r\n", envelope.message)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return _LEADING_DOT.sub(b"..", body) + b".\r\n"


def pipelined_loop(port: int, envelopes: Sequence[Envelope]) -> LoopResult:
    """One round trip per message over one connection (dot-stuffed per message, as smtplib does)."""
    connection = PipelinedConnection(port)
    try:
        return measured(connection.send, envelopes)
    finally:
        connection.close()
