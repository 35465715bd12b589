"""High-priority latency behind a low-priority backlog (issue 11's figure).

``python -m benchmarks.priority [--backlog 20000] [--sends 20] [--processes 2]``: enqueues the
backlog at priority "low", starts ``celery -A workers worker`` with 2 pool processes, waits
until they are busy with it, then sends one high-priority message at a time and times it from
``send_messages`` to the SMTP server's end of DATA. It prints p50/p99/max over the sends, and
how much of the backlog was still queued at the end (a single FIFO would have made each high
message wait for all of it).

The SMTP server is an aiosmtpd controller in this process, so that it can note when each high
message arrives; it accepts everything.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from types import SimpleNamespace
from typing import Any

import redis
from aiosmtpd.controller import Controller

from benchmarks.fleet import fleet, worker_settings
from benchmarks.servers import free_port, redis_server
from mailqueue.backends import queue
from mailqueue.conf import override_settings
from mailqueue.message import EmailMessage
from mailqueue.queue.priority import list_name
from mailqueue.queue.producer import close_publishers


class ArrivalHandler:
    """Accepts everything; notes when each message whose subject names a high send arrives."""

    def __init__(self) -> None:
        self.accepted = 0
        self.arrivals: dict[str, float] = {}
        self.arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        now = time.monotonic()
        with self.arrived:
            self.accepted += 1
            if b"Subject: high " in envelope.content:
                subject = envelope.content.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
                self.arrivals[subject] = now
            self.arrived.notify_all()
        return "250 OK"

    def wait(self, ready: Any, timeout: float) -> bool:
        with self.arrived:
            return self.arrived.wait_for(ready, timeout=timeout)


def message(subject: str, recipient: str) -> EmailMessage:
    return EmailMessage(subject, "A line of text.\n" * 20, "bench@example.com", [recipient])


def measure(*, backlog: int, sends: int, processes: int, redis_url: str | None) -> dict[str, Any]:
    handler = ArrivalHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with redis_server(redis_url) as url:
            values = worker_settings(redis_url=url, port=controller.port, processes=processes)
            with override_settings(**values):
                queue.EmailBackend(priority="low").send_messages(
                    [message(f"low {n}", f"low-{n}@example.com") for n in range(backlog)])
                with fleet(redis_url=url, sink=SimpleNamespace(port=controller.port), processes=processes,
                           port=controller.port):
                    if not handler.wait(lambda: handler.accepted >= 100, timeout=120):
                        raise RuntimeError("the workers did not start on the backlog")
                    latencies = [send_high(handler, n) for n in range(sends)]
                    left = redis.Redis.from_url(url).llen(list_name(values["MAILQUEUE_QUEUE"], "low"))
            close_publishers()
    finally:
        controller.stop()
    ordered = sorted(latencies)
    return {"backlog": backlog, "sends": sends, "processes": processes,
            "p50_s": statistics.median(ordered), "p99_s": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "max_s": ordered[-1], "low_tasks_still_queued": left}


def send_high(handler: ArrivalHandler, n: int) -> float:
    subject = f"high {n}"
    started = time.monotonic()
    queue.EmailBackend(priority="high").send_messages([message(subject, f"high-{n}@example.com")])
    if not handler.wait(lambda: subject in handler.arrivals, timeout=60):
        raise RuntimeError(f"{subject} did not arrive within 60 s")
    time.sleep(0.2)  # the next send finds the workers busy with the backlog again
    return handler.arrivals[subject] - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=20000)
    parser.add_argument("--sends", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--redis-url", help="an existing Redis (default: a private redis-server)")
    args = parser.parse_args()
    result = measure(backlog=args.backlog, sends=args.sends, processes=args.processes, redis_url=args.redis_url)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
