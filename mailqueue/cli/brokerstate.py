"""Reading the fleet's state straight from the broker's Redis, for the operator commands.

Queue and in-flight keys belong to kombu, the rest to the workers; every name comes from
``mailqueue.queue.keys``. Nothing here writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import redis

from mailqueue.cli.base import CommandError
from mailqueue.queue import keys
from mailqueue.queue.broker import broker_url, redacted

# kombu's Redis transport keeps priority levels 3, 6 and 9 in lists named queue + SEP + level.
KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
KOMBU_PRIORITY_STEPS = (3, 6, 9)
SCAN_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Deferred:
    tasks: int
    messages: int
    next_due: float | None  # epoch seconds of the earliest retry


def reply(value: Any) -> Any:
    """redis-py types every reply as maybe-awaitable; these clients are synchronous."""
    return cast(Any, value)


def broker_client() -> tuple[redis.Redis, str]:
    """A client on the broker's Redis (the embedded one if none is configured) and its URL."""
    url = broker_url()
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise CommandError(f"This command reads the broker's Redis, but MAILQUEUE_BROKER_URL is {redacted(url)}.")
    client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=10.0)
    return client, url


def queue_lists(queue: str | None = None) -> list[str]:
    base = keys.queue_key(queue)
    return [base, *(f"{base}{KOMBU_PRIORITY_SEPARATOR}{step}" for step in KOMBU_PRIORITY_STEPS)]


def queue_depth(client: redis.Redis, queue: str | None = None) -> int:
    """Tasks waiting for a worker."""
    with client.pipeline(transaction=False) as pipe:
        for name in queue_lists(queue):
            pipe.llen(name)
        return sum(int(length) for length in pipe.execute())


def depth_by_priority(client: redis.Redis, queue: str | None = None) -> dict[str, int]:
    """Tasks waiting for a worker, per priority (``mailqueue.queue.priority``)."""
    from mailqueue.queue.priority import PRIORITIES, list_name

    base = keys.queue_key(queue)
    with client.pipeline(transaction=False) as pipe:
        for name in PRIORITIES:
            pipe.llen(list_name(base, name))
        return {name: int(length) for name, length in zip(PRIORITIES, pipe.execute(), strict=True)}


def scheduled(client: redis.Redis) -> Deferred:
    """Scheduled sends waiting for their send_at (``mailqueue.queue.schedule``)."""
    schedule, entries, claims, _times = keys.scheduled_keys()
    messages = sum(len(json.loads(raw).get("payloads", [])) for name in (entries, claims)
                   for _task_id, raw in _hash_items(client, name))
    first = reply(client.zrange(schedule, 0, 0, withscores=True))
    tasks = int(reply(client.zcard(schedule))) + int(reply(client.hlen(claims)))
    return Deferred(tasks=tasks, messages=messages, next_due=float(first[0][1]) if first else None)


def scheduled_for(client: redis.Redis, task_id: str) -> float | None:
    """When a scheduled task is due (epoch seconds), or None if it is not scheduled."""
    schedule, _entries, claims, _times = keys.scheduled_keys()
    due = reply(client.zscore(schedule, task_id))
    if due is None and client.hexists(claims, task_id):
        return float(json.loads(reply(client.hget(claims, task_id)))["due"])
    return None if due is None else float(due)


def in_flight(client: redis.Redis) -> int:
    """Tasks a worker has taken and not yet acknowledged."""
    return int(reply(client.hlen(keys.unacked_key())))


def deferred(client: redis.Redis) -> Deferred:
    """Rounds waiting for their retry, and how many messages they hold."""
    from workers.deferral import Deferrals

    messages = sum(len(json.loads(raw).get("payloads", []))
                   for name in (keys.deferred_entries_key(), keys.deferred_claims_key())
                   for _task_id, raw in _hash_items(client, name))
    first = reply(client.zrange(keys.deferred_schedule_key(), 0, 0, withscores=True))
    return Deferred(tasks=Deferrals(client).count(), messages=messages,
                    next_due=float(first[0][1]) if first else None)


def totals(client: redis.Redis) -> dict[str, int]:
    """The running totals the workers keep (sent, failed, retries, dead_lettered, ...)."""
    raw = reply(client.hgetall(keys.stats_key()))
    return {name.decode(): int(value) for name, value in raw.items()}


def locate(client: redis.Redis, task_id: str, queue: str | None = None) -> str | None:
    """Where a task without a stored result is: "cancelled", "scheduled", "queued", "in flight",
    "deferred", or None."""
    from mailqueue.queue.cancel import CANCELLED, state

    if state(client, task_id) == CANCELLED:
        return "cancelled"
    if scheduled_for(client, task_id) is not None:
        return "scheduled"
    needle = task_id.encode()
    for name in queue_lists(queue):
        for start in range(0, int(reply(client.llen(name))), SCAN_CHUNK):
            if any(needle in raw for raw in reply(client.lrange(name, start, start + SCAN_CHUNK - 1))):
                return "queued"
    if any(needle in raw for _tag, raw in _hash_items(client, keys.unacked_key())):
        return "in flight"
    if client.hexists(keys.deferred_entries_key(), task_id) or client.hexists(keys.deferred_claims_key(), task_id):
        return "deferred"
    return None


def _hash_items(client: redis.Redis, name: str) -> Iterator[tuple[bytes, bytes]]:
    yield from client.hscan_iter(name, count=SCAN_CHUNK)


def connections(client: redis.Redis) -> dict[str, dict[str, int]]:
    """Per relay with a fleet-wide connection limit: the connections holding a lease now, and the limit."""
    from workers.connection_slots import ConnectionSlots
    from workers.relays import relays

    return {relay.name: {"open": ConnectionSlots(client, relay.name, relay.max_connections).held(),
                         "limit": relay.max_connections}
            for relay in relays().values() if relay.max_connections is not None}
