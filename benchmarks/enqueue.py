"""(b) enqueue: what ``send_mail`` through the queue backend costs the caller.

Measured beside two references, in the same run and interleaved in blocks so that drift
on a shared machine hits all of them alike:

- a redis-py ``PING`` on an open connection: one round trip, the floor;
- a direct, synchronous ``send_mail`` over SMTP to the local sink (a connection per call,
  as an application without a queue pays it);
- for context, a plain Celery ``send_task`` to the same Redis (no result backend).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import redis
from celery import Celery

from benchmarks.mixes import RECIPIENT, SENDER, SUBJECT, TEXT
from benchmarks.report import ms, percentile, ratio, table
from benchmarks.servers import Sink
from mailqueue.conf import override_settings
from mailqueue.mail import send_mail
from mailqueue.queue.producer import close_publishers

KINDS = {
    "ping": "redis-py PING (one round trip)",
    "enqueue": "send_mail, queue backend",
    "celery": "plain Celery send_task",
    "smtp": "send_mail, SMTP backend (direct)",
}


def timed(call: Callable[[], Any], count: int, into: list[float]) -> None:
    for _ in range(count):
        started = time.perf_counter()
        call()
        into.append(time.perf_counter() - started)


def run(*, redis_url: str, sink: Sink, quick: bool) -> dict[str, Any]:
    queue = f"mailqueue-bench-enqueue-{os.getpid()}"
    client = redis.Redis.from_url(redis_url)
    celery_app = Celery("bench-plain", broker=redis_url, backend=None, set_as_current=False)
    celery_app.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry=False)
    samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
    blocks, per_block, smtp_per_block = (3, 20, 5) if quick else (20, 200, 25)
    queue_settings = {"EMAIL_BACKEND": "mailqueue.backends.queue.EmailBackend", "MAILQUEUE_BROKER_URL": redis_url,
                      "MAILQUEUE_QUEUE": queue}
    smtp_settings = {"EMAIL_BACKEND": "mailqueue.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
                     "EMAIL_PORT": sink.port, "EMAIL_TIMEOUT": 10.0}

    def mail() -> None:
        send_mail(SUBJECT, TEXT, SENDER, [RECIPIENT])

    def plain_celery() -> None:
        celery_app.send_task("mailqueue.bench.noop", args=[TEXT], queue=queue + "-celery")

    # kind -> (settings active around the timed calls, the call)
    calls: dict[str, tuple[dict[str, Any], Callable[[], Any]]] = {
        "ping": ({}, client.ping), "enqueue": (queue_settings, mail), "celery": ({}, plain_celery),
        "smtp": (smtp_settings, mail),
    }
    try:
        for values, call in calls.values():  # warm up: connections, pools, imports
            with override_settings(**values):
                timed(call, 20, [])
        for _ in range(blocks):
            for kind, (values, call) in calls.items():
                with override_settings(**values):
                    timed(call, smtp_per_block if kind == "smtp" else per_block, samples[kind])
            client.delete(queue, queue + "-celery")
    finally:
        client.delete(queue, queue + "-celery")
        client.close()
        celery_app.close()
        close_publishers()
    return summarize(samples)


def summarize(samples: dict[str, list[float]]) -> dict[str, Any]:
    result: dict[str, Any] = {
        kind: {"label": KINDS[kind], "count": len(values), "p50_seconds": percentile(values, 0.5),
               "p99_seconds": percentile(values, 0.99)}
        for kind, values in samples.items()
    }
    floor = result["ping"]["p50_seconds"]
    for entry in result.values():
        entry["p50_over_ping"] = entry["p50_seconds"] / floor
    return result


def render(result: dict[str, Any]) -> str:
    rows = [[entry["label"], ms(entry["p50_seconds"]), ms(entry["p99_seconds"]), ratio(entry["p50_over_ping"]),
             str(entry["count"])] for entry in result.values()]
    return table("(b) enqueue: latency of one call, interleaved in blocks (target: queue p50 <= 3x PING)",
                 ["call", "p50", "p99", "p50 / PING p50", "samples"], rows)
