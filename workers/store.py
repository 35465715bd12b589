"""The Redis the workers keep their state in (ledger, deferred retries, dead letters).

It is the broker's Redis: the state then lives and dies with the tasks it describes, and an
operator has one server to back up. One client per URL per process; redis-py clients are
thread-safe and reset their connection pool in a forked child.
"""

from __future__ import annotations

import functools
import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from mailqueue.conf import settings
from mailqueue.queue import keys, measures
from mailqueue.queue.broker import broker_url
from workers.deadletters import DeadLetters
from workers.deferral import Deferrals
from workers.ledger import Ledger
from workers.ratelimit import RateLimiter
from workers.retry import RetryPolicy


@functools.lru_cache(maxsize=8)
def client_for(url: str) -> redis.Redis:
    # Bounded waits: a stalled Redis fails the round (the task is requeued) instead of hanging it.
    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10, health_check_interval=30)


def redis_client(url: str | None = None) -> redis.Redis:
    """The client for ``url``; by default the broker's (which may start the embedded Redis)."""
    return client_for(url or broker_url())


@dataclass(frozen=True, slots=True)
class Stores:
    """What one delivery round needs, built from the current settings."""

    client: redis.Redis
    ledger: Ledger
    deferrals: Deferrals
    dead_letters: DeadLetters
    limiter: RateLimiter
    policy: RetryPolicy
    hostname: str

    @classmethod
    def from_settings(cls, *, url: str | None = None, hostname: str | None = None) -> Stores:
        client = redis_client(url)
        return cls(
            client=client,
            ledger=Ledger(client, ttl=settings.MAILQUEUE_LEDGER_TTL),
            deferrals=Deferrals(client),
            dead_letters=DeadLetters(client),
            limiter=RateLimiter(client),
            policy=RetryPolicy.from_settings(),
            hostname=hostname or socket.gethostname(),
        )

    def count(self, latencies: Sequence[float] = (), /, **increments: int) -> None:
        """Add to the running totals that `mailqueue stats` and `mailqueue metrics` show.

        ``latencies`` are seconds from enqueue to acceptance, one per accepted recipient; they
        go into the latency histogram in the same pipeline (one round trip per round).
        """
        increments = {name: amount for name, amount in increments.items() if amount}
        if not increments and not latencies:
            return
        with self.client.pipeline(transaction=False) as pipe:
            for name, amount in increments.items():
                pipe.hincrby(keys.stats_key(), name, amount)
            if latencies:
                for bucket, amount in Counter(measures.bucket_for(seconds) for seconds in latencies).items():
                    pipe.hincrby(keys.latency_key(), bucket, amount)
                pipe.hincrby(keys.latency_key(), measures.COUNT_FIELD, len(latencies))
                pipe.hincrbyfloat(keys.latency_key(), measures.SUM_FIELD, sum(latencies))
            pipe.execute()
