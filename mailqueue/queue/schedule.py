"""Scheduled sends: a task held in Redis until its ``send_at``, then enqueued by the workers.

Why not a Celery eta or countdown: on Redis, a task waiting for its eta is unacknowledged,
and kombu hands it to another worker each time the visibility timeout passes. A scheduled
task is instead stored as the workers store their deferred retries (``workers.deferral``): a
sorted set scored by the due time and a hash of entries, under ``keys.scheduled_keys()``. The
producer writes the entry, signed as the task the poller will send (the poller never signs
what it reads from Redis); each worker's poller moves due entries to the queue, crash-safe.
With an append-only Redis, both survive restarts of the workers and of Redis.

An entry has the fields of ``workers.deferral.DeferredTask`` (attempt 0, no report yet): the
one format is read by the one poller.
"""

from __future__ import annotations

import datetime
import json
import time
from typing import Any

from mailqueue.queue import keys
from mailqueue.queue.signing import SIGNATURE_HEADER, signature_headers

__all__ = ["due_time", "scheduled_entry", "write_entry"]


def due_time(send_at: datetime.datetime | None, *, now: float | None = None) -> float | None:
    """The epoch second a message is due, or None to send it now (no send_at, or one past)."""
    if send_at is None:
        return None
    due = send_at.timestamp()
    return due if due > (time.time() if now is None else now) else None


def scheduled_entry(*, task_id: str, payloads: list[dict[str, Any]], due: float, queue: str,
                    priority: str) -> dict[str, Any]:
    """The stored entry of one scheduled task, signed (MAILQUEUE_SIGNING_KEY) as it will be sent."""
    signature = signature_headers(task_id, payloads).get(SIGNATURE_HEADER)  # attempt 0, report None
    return {"task_id": task_id, "payloads": payloads, "attempt": 0, "report": None, "due": due,
            "signature": signature, "queue": queue, "priority": priority}


def write_entry(client: Any, entry: dict[str, Any]) -> None:
    """Store an entry and its due time in one transaction (a Redis client, or kombu's)."""
    schedule, entries, _claims, _claim_times = keys.scheduled_keys()
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(entries, entry["task_id"], json.dumps(entry))
        pipe.zadd(schedule, {entry["task_id"]: entry["due"]})
        pipe.execute()
