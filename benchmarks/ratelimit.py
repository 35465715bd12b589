"""The fleet-wide rate limiter's accuracy, measured where it matters: at the SMTP server.

    python benchmarks/ratelimit.py            # 20/s (1,000 messages, 3 processes), 200/s (4 processes)
    python benchmarks/ratelimit.py --quick    # a smoke run, seconds

A real ``celery -A workers worker`` (prefork) drains a backlog through an aiosmtpd server
that time-stamps every message it accepts. For each limit the table gives the busiest
one-second window (sliding, over every accepted message) and the mean rate from the first
to the last message: the limit must be respected (issue 11: at most 24 in any second at
20/s) and used (a mean of at least 18/s).
"""

from __future__ import annotations

import argparse
import bisect
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402

import mailqueue.message  # noqa: E402
from benchmarks.fleet import TEXT_MIX, fleet  # noqa: E402
from benchmarks.report import table  # noqa: E402
from benchmarks.servers import free_port, redis_server  # noqa: E402
from mailqueue.backends.queue import EmailBackend  # noqa: E402
from mailqueue.conf import override_settings  # noqa: E402
from mailqueue.queue.producer import close_publishers  # noqa: E402


class StampingHandler:
    """Accepts every message and notes when."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        with self.lock:
            self.times.append(time.monotonic())
        return "250 OK"


class StampingSink:
    """What ``benchmarks.fleet.fleet`` needs of a sink (its port), plus the time stamps."""

    kind = "aiosmtpd, time-stamping"

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = StampingHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def wait_for(self, count: int, *, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.handler.times) < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


def busiest_second(times: list[float]) -> int:
    """The most messages in any one-second window that starts at a message."""
    ordered = sorted(times)
    return max(bisect.bisect_left(ordered, start + 1.0) - index for index, start in enumerate(ordered))


def measure(*, redis_url: str, limit: str, per_second: float, processes: int, count: int) -> dict[str, Any]:
    sink = StampingSink()
    sink.controller.start()
    os.environ["MAILQUEUE_RATE_LIMIT"] = limit  # the worker's environment (fleet() copies os.environ)
    try:
        with fleet(redis_url=redis_url, sink=sink, processes=processes) as team:  # type: ignore[arg-type]
            messages = [TEXT_MIX.build(mailqueue.message) for _ in range(count)]
            with override_settings(**team.settings, MAILQUEUE_BATCH_SIZE=10):
                EmailBackend().send_messages(messages)
            if not sink.wait_for(count, timeout=count / per_second * 2 + 30):
                raise RuntimeError(f"{len(sink.handler.times)} of {count} delivered; log:\n"
                                   f"{team.log.read_text()[-3000:]}")
    finally:
        del os.environ["MAILQUEUE_RATE_LIMIT"]
        sink.controller.stop()
        close_publishers()
    times = sink.handler.times
    return {"limit": limit, "processes": processes, "messages": count, "busiest_second": busiest_second(times),
            "mean_per_second": (len(times) - 1) / (max(times) - min(times))}


def run(*, redis_url: str, quick: bool) -> list[dict[str, Any]]:
    cases = [("20/s", 20.0, 3, 100 if quick else 1000), ("200/s", 200.0, 4, 400 if quick else 4000)]
    return [measure(redis_url=redis_url, limit=limit, per_second=per_second, processes=processes, count=count)
            for limit, per_second, processes, count in cases]


def render(results: list[dict[str, Any]]) -> str:
    rows = [[r["limit"], str(r["processes"]), f"{r['messages']:,}", str(r["busiest_second"]),
             f"{r['mean_per_second']:.1f}/s"] for r in results]
    return table("fleet-wide rate limit, measured at the SMTP server",
                 ["MAILQUEUE_RATE_LIMIT", "worker processes", "messages", "busiest 1-s window", "mean rate"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer messages: a smoke run")
    parser.add_argument("--redis-url", help="an existing Redis (default: a private redis-server)")
    args = parser.parse_args(argv)
    with redis_server(args.redis_url) as url:
        print(render(run(redis_url=url, quick=args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
