"""A development SMTP server: accepts everything, prints or saves it, and can play bounces.

It is what ``mailqueue devserver`` runs and what ``mailqueue demo`` delivers to. With
``simulate_failures`` on, recipients whose local part starts with ``bounce`` are refused
for good (550) and those starting with ``greylist`` are refused once (451), then accepted:
enough to watch the workers fail, retry and dead-letter without a real mail server.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import signal
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

BOUNCE_PREFIX = "bounce"
GREYLIST_PREFIX = "greylist"
DEFAULT_PORT = 1025
SUMMARY_LINE = "{count:>6}  {sender} -> {recipients}  {subject!r}  ({size} bytes)"


class DevServerHandler:
    """aiosmtpd handler that prints each message (summary or in full) and/or saves it as .eml."""

    def __init__(
        self,
        *,
        out: TextIO | None = None,
        save_dir: str | Path | None = None,
        full: bool = False,
        simulate_failures: bool = False,
    ) -> None:
        self.out = out
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self.full = full
        self.simulate_failures = simulate_failures
        self.lock = threading.Lock()
        self.received = 0
        self.refused: dict[int, int] = {}  # SMTP code -> how many RCPTs were refused with it
        self._greylisted: set[str] = set()
        self._names = itertools.count(1)
        if self.save_dir is not None:
            self.save_dir.mkdir(parents=True, exist_ok=True)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self.simulated_refusal(address) if self.simulate_failures else None
        if refusal is not None:
            with self.lock:
                code = int(refusal[:3])
                self.refused[code] = self.refused.get(code, 0) + 1
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        with self.lock:
            self.received += 1
            count = self.received
        sender = str(envelope.mail_from)
        recipients = [str(address) for address in envelope.rcpt_tos]
        if self.save_dir is not None:
            self.save(sender, recipients, content)
        if self.out is not None:
            self.show(count, sender, recipients, content)
        return "250 2.0.0 Message accepted for delivery"

    def simulated_refusal(self, address: str) -> str | None:
        """The refusal a special test address gets, or None to accept it."""
        local = address.rpartition("@")[0].lower()
        if local.startswith(BOUNCE_PREFIX):
            return "550 5.1.1 Mailbox does not exist (simulated bounce)"
        if local.startswith(GREYLIST_PREFIX):
            with self.lock:
                if address.lower() not in self._greylisted:
                    self._greylisted.add(address.lower())
                    return "451 4.7.1 Greylisted, please try again later (simulated)"
        return None

    def save(self, sender: str, recipients: Iterable[str], content: bytes) -> Path:
        """Write the message as received, after envelope headers (Bcc recipients appear only there)."""
        assert self.save_dir is not None
        with self.lock:
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._names):06d}.eml"
        envelope_headers = f"X-Envelope-From: <{sender}>\r\nX-Envelope-To: {', '.join(recipients)}\r\n"
        path = self.save_dir / name
        path.write_bytes(envelope_headers.encode("utf-8") + content)
        return path

    def show(self, count: int, sender: str, recipients: list[str], content: bytes) -> None:
        assert self.out is not None
        if self.full:
            rule = "-" * 79
            text = content.replace(b"\r\n", b"\n").decode("utf-8", errors="replace")
            lines = [rule, f"From: <{sender}>  To: {', '.join(recipients)}", rule, text.rstrip("\n"), rule]
        else:
            message = email.message_from_bytes(content, policy=email.policy.default)
            subject = str(message.get("Subject", ""))
            lines = [SUMMARY_LINE.format(
                count=count, sender=sender, recipients=", ".join(recipients), subject=subject, size=len(content)
            )]
        with self.lock:
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()


def start_devserver(handler: DevServerHandler, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> Controller:
    """Start the server in a background thread (aiosmtpd's Controller); stop it with ``.stop()``."""
    with socket.socket() as probe:  # fail at once on a busy port; aiosmtpd would wait out its ready timeout
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    controller = Controller(
        handler, hostname=host, port=port, enable_SMTPUTF8=True, ready_timeout=10.0, data_size_limit=None
    )
    controller.start()
    return controller


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (aiosmtpd cannot be asked for port 0)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def serve_until_signalled(controller: Controller) -> None:
    """Block until SIGINT or SIGTERM, then stop the server cleanly."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stop.wait()
    finally:
        controller.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
