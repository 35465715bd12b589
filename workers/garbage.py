"""What comes off the queue list and cannot be a delivery task: moved aside, logged, never dropped.

Anyone who can write to Redis can put anything on the queue list: bytes that are not JSON, JSON
that is not a kombu message, a kombu message in a content type the workers refuse (pickle), or
a task name no worker knows. kombu would end the worker's main process on the first; Celery
rejects the others, and the entry is gone. Here each is kept in the quarantine
(``workers.quarantine``) with the reason ``undecodable: ...`` and the exact bytes that were on
the list (up to ``MAX_RAW_BYTES``), for an operator to look at with
``mailqueue dead list --quarantine`` (or ``moved_aside()``). The quarantine is bounded, so a
flood of garbage cannot fill the Redis the real mail needs.

Two places feed it: the worker's Redis transport (``workers.transport``), for what kombu cannot
read, and ``RefusedMessages``, a consumer bootstep, for what Celery refuses.
"""

from __future__ import annotations

import base64
import builtins
import itertools
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

import redis
from celery import bootsteps

from mailqueue.queue import keys
from workers.quarantine import Quarantine, QuarantinedTask
from workers.store import redis_client

logger = logging.getLogger(__name__)

UNDECODABLE = "undecodable"
MAX_RAW_BYTES = 64 * 1024
_moved_here = itertools.count(1)  # this process's running count, for the log


def raw_record(raw: bytes | str, *, queue: str) -> dict[str, Any]:
    """The entry as it was on the list: text if it is UTF-8, else base64; cut at MAX_RAW_BYTES."""
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
    kept = data[:MAX_RAW_BYTES]
    try:
        text, encoding = kept.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(kept).decode("ascii"), "base64"
    return {"raw": text, "raw_encoding": encoding, "size": len(data), "truncated": len(data) > len(kept),
            "queue": queue}


def move_aside(client: redis.Redis, raw: bytes | str, *, reason: str, queue: str, task_id: str = "",
               hostname: str = "", origin: str = "") -> QuarantinedTask:
    """Keep ``raw`` in the quarantine as ``undecodable: <reason>`` and log it; raises redis errors."""
    entry = Quarantine(client).add(
        task_id=task_id, reason=f"{UNDECODABLE}: {reason}", payloads=raw_record(raw, queue=queue),
        attempt=None, report=None, hostname=hostname or socket.gethostname(), origin=origin,
    )
    try:
        client.hincrby(keys.stats_key(), "moved_aside", 1)
    except redis.RedisError:
        pass  # the count is a convenience; the entry itself is kept
    logger.warning(
        "Moved aside an entry of queue %r that no worker can deliver (%s): %d bytes kept in the quarantine "
        "as %s; %d moved aside by this worker so far. See `mailqueue dead list --quarantine`.",
        queue, reason, len(raw), entry.id, next(_moved_here),
    )
    return entry


def moved_aside(client: redis.Redis, *, limit: int = 100) -> builtins.list[QuarantinedTask]:
    """The quarantined entries that were moved aside as undecodable, oldest first."""
    store, offset, page = Quarantine(client), 0, 500
    found: builtins.list[QuarantinedTask] = []
    while len(found) < limit:
        entries = store.list(limit=page, offset=offset)
        found += [entry for entry in entries if entry.reason.startswith(f"{UNDECODABLE}:")]
        if len(entries) < page:
            break
        offset += page
    return found[:limit]


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:200]}"


def raw_of(message: Any) -> bytes | str:
    """What was on the queue list for a kombu message (the virtual transport keeps it decoded)."""
    raw = getattr(message, "_raw", None)
    if isinstance(raw, dict):
        return json.dumps(raw, default=repr)
    body = getattr(message, "body", b"")
    return body if isinstance(body, bytes | str) else repr(body)


def header(message: Any, name: str) -> str:
    headers = getattr(message, "headers", None)
    value = headers.get(name, "") if isinstance(headers, dict) else ""
    return value if isinstance(value, str) else repr(value)


class RefusedMessages(bootsteps.StartStopStep):
    """Consumer step: what Celery refuses (a content type it does not accept, an unknown task name,
    a message that is not a task) is moved aside before Celery rejects it.

    It wraps the consumer's own hooks (``on_invalid_task``, ``on_unknown_task``,
    ``on_unknown_message``, ``on_decode_error``) once, when the consumer is built, before the
    event loop reads them. If the entry cannot be kept (Redis refuses the write), the message is
    left unacknowledged, so that it comes back later, rather than rejected and lost.
    """

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.client_for: Callable[[], redis.Redis] = lambda: _stores_client(parent)
        self.hostname = str(getattr(parent, "hostname", "") or "")
        parent.on_invalid_task = self.guard(
            parent.on_invalid_task, lambda body, message, exc: refused_why(message, exc))
        parent.on_unknown_task = self.guard(
            parent.on_unknown_task, lambda body, message, exc: f"unknown task name {header(message, 'task')!r}")
        parent.on_unknown_message = self.guard(
            parent.on_unknown_message, lambda body, message: "not a Celery task message")
        parent.on_decode_error = self.guard(
            parent.on_decode_error, lambda message, exc: refused_why(message, exc), message_at=0)

    def guard(self, hook: Callable[..., Any], why: Callable[..., str], *, message_at: int = 1) -> Callable[..., Any]:
        def guarded(*args: Any) -> Any:
            message = args[message_at]
            try:
                reason = why(*args)
                with_queue = getattr(message, "delivery_info", None) or {}
                move_aside(self.client_for(), raw_of(message), reason=reason, task_id=header(message, "id"),
                           queue=str(with_queue.get("routing_key", "")), hostname=self.hostname,
                           origin=header(message, "origin"))
            except Exception:  # kept nowhere: leave it unacknowledged, to come back
                logger.exception("Could not move aside a message Celery refused; it stays unacknowledged "
                                 "and comes back after MAILQUEUE_VISIBILITY_TIMEOUT")
                return None
            return hook(*args)

        return guarded


def refused_why(message: Any, error: BaseException) -> str:
    content_type = getattr(message, "content_type", None)
    return f"content type {content_type!r} refused ({describe(error)})"


def _stores_client(consumer: Any) -> redis.Redis:
    return redis_client(consumer.app.conf.broker_url)
