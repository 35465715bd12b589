"""The peer's fleet, run from mailqueue's venv: its Celery worker and its producer (the driver).

Both are processes of the peer's venv. The worker is ``celery -A benchmarks.peer.app
worker`` (the same flags as mailqueue's); the producer is ``benchmarks.peer.driver``, told
over a pipe to prepare messages and to send them, so the benchmark times the peer's
send_messages-to-sink exactly as it times mailqueue's.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.fleet import ROOT, celery_command, worker_process


def peer_env(*, redis_url: str, port: int, queue: str, chunk_size: int) -> dict[str, str]:
    """What benchmarks/peer/settings.py reads: the same for the worker and the driver."""
    return dict(os.environ, PEER_BROKER_URL=redis_url, PEER_SMTP_PORT=str(port), PEER_QUEUE=queue,
                PEER_CHUNK_SIZE=str(chunk_size), DJANGO_SETTINGS_MODULE="benchmarks.peer.settings",
                PYTHONPATH=str(ROOT))


@dataclass
class PeerWorker:
    """A running peer worker: its main process (for CPU readings) and its log."""

    process: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def peer_worker(python: Path, env: dict[str, str], *, pool: str, concurrency: int) -> Iterator[PeerWorker]:
    command = [*celery_command(str(python), "benchmarks.peer.app", pool=pool, concurrency=concurrency,
                               name="peer"), "--queues", env["PEER_QUEUE"]]
    with worker_process(command, env) as (process, log):
        yield PeerWorker(process, log)


class PeerDriverFailed(RuntimeError):
    """The peer's producer process answered with an error or not at all."""


class PeerDriver:
    """The peer's producer: one process of the peer's venv, one JSON reply per command."""

    def __init__(self, python: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([str(python), "-m", "benchmarks.peer.driver"], cwd=ROOT, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise PeerDriverFailed(f"the peer driver exited (status {self.process.wait()}) on {command!r}")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise PeerDriverFailed(reply["error"])
        return reply

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
