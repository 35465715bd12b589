"""(d) memory: the size of a worker process, and the bytes a message takes on the broker.

Worker sizes come from the fleet runs (warm processes, right after delivering). The
broker bytes are measured by enqueueing to a queue nobody consumes and reading back what
Redis holds: the whole task message (kombu envelope, Celery headers, JSON payload with
the base64 of the RFC 5322 bytes), alone and in a batch.
"""

from __future__ import annotations

import os
from statistics import mean
from typing import Any

import redis

import mailqueue.message
from benchmarks.mixes import MIXES
from benchmarks.report import table
from mailqueue.backends.queue import EmailBackend
from mailqueue.conf import override_settings, settings
from mailqueue.queue.envelope import Envelope
from mailqueue.queue.producer import close_publishers

MIB = 1024 * 1024


def broker_bytes(*, redis_url: str) -> dict[str, Any]:
    queue = f"mailqueue-bench-bytes-{os.getpid()}"
    client = redis.Redis.from_url(redis_url)
    result: dict[str, Any] = {}
    try:
        with override_settings(MAILQUEUE_BROKER_URL=redis_url, MAILQUEUE_QUEUE=queue):
            batch = int(settings.MAILQUEUE_BATCH_SIZE)
            for mix in MIXES:
                raw = len(Envelope.from_email_message(mix.build(mailqueue.message), max_size=10**8).message)
                entry = {"label": mix.label, "rfc5322_bytes": raw}
                for name, count in (("alone", 1), ("in_batch", batch)):
                    client.delete(queue)
                    EmailBackend().send_messages([mix.build(mailqueue.message) for _ in range(count)])
                    items: list[bytes] = client.lrange(queue, 0, -1)  # type: ignore[assignment]
                    stored = sum(len(item) for item in items)
                    entry[f"broker_bytes_{name}"] = stored / count
                entry["batch_size"] = batch
                result[mix.key] = entry
    finally:
        client.delete(queue)
        client.close()
        close_publishers()
    return result


def worker_sizes(fleet: dict[str, Any]) -> dict[str, Any]:
    sizes = {}
    for key, entry in fleet["runs"].items():
        memory = entry["memory"]
        sizes[key] = {"processes": entry["processes"], "main_rss": memory["main"]["rss"],
                      "pool_rss_mean": mean(p["rss"] for p in memory["pool"]),
                      "pool_uss_mean": mean(p["uss"] for p in memory["pool"])}
    return sizes


def render(result: dict[str, Any]) -> str:
    parts = []
    if "workers" in result:
        rows = [[f"{entry['processes']} pool process(es)", f"{entry['main_rss'] / MIB:.1f} MiB",
                 f"{entry['pool_rss_mean'] / MIB:.1f} MiB", f"{entry['pool_uss_mean'] / MIB:.1f} MiB"]
                for entry in result["workers"].values()]
        parts.append(table("(d) memory per worker process (warm, after delivering)",
                           ["fleet", "main process RSS", "pool process RSS", "pool process USS (own pages)"], rows))
    rows = [[entry["label"], f"{entry['rfc5322_bytes']:,}", f"{entry['broker_bytes_alone']:,.0f}",
             f"{entry['broker_bytes_in_batch']:,.0f}", f"{entry['broker_bytes_in_batch'] / entry['rfc5322_bytes']:.2f}"]
            for entry in result["broker"].values()]
    parts.append(table("(d) payload bytes on the broker per message",
                       ["mix", "message bytes", "on broker, alone", "on broker, in a batch of 50",
                        "batch / message"], rows))
    return "\n".join(parts)
