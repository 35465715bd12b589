"""A round's throttle, on a real Redis: short waits sat out, long ones deferred, 421/454 pausing."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from mailqueue.outcomes import RecipientOutcome, Status
from workers.ratelimit import Rate, RateLimiter
from workers.relays import Relay
from workers.throttle import Throttle

LIMITED = Relay("bulk", {"host": "bulk.example.net"}, Rate(10, 1.0))  # burst 1
UNLIMITED = Relay("default", {}, None)


def throttle(client: redis.Redis, *, max_wait: float = 1.0, deadline: float = 60.0) -> Throttle:
    return Throttle(RateLimiter(client), max_wait=max_wait, pause=0.5, deadline=time.monotonic() + deadline)


def test_a_short_wait_is_sat_out_before_the_message_goes(redis_client: redis.Redis) -> None:
    gate = throttle(redis_client)
    started = time.monotonic()
    assert [gate.admit(LIMITED) for _ in range(4)] == [None] * 4  # 1 at once, then one per 100 ms
    assert 0.25 <= time.monotonic() - started < 1.0
    assert gate.longest_wait == 0


def test_a_wait_longer_than_the_most_it_may_wait_defers(redis_client: redis.Redis) -> None:
    hourly = Relay("bulk", {"host": "h"}, Rate(2, 3600.0))
    gate = throttle(redis_client, max_wait=1.0)
    assert gate.admit(hourly) is None
    wait = gate.admit(hourly)
    assert wait is not None and 1700 < wait <= 1800
    assert gate.longest_wait == wait


def test_a_wait_past_the_rounds_deadline_defers(redis_client: redis.Redis) -> None:
    gate = throttle(redis_client, max_wait=5.0, deadline=0.05)
    assert gate.admit(LIMITED) is None
    assert gate.admit(LIMITED) is not None


@pytest.mark.parametrize("code", [421, 454])
def test_a_throttling_reply_pauses_the_relay_for_every_worker(redis_client: redis.Redis, code: int) -> None:
    gate, other_worker = throttle(redis_client, max_wait=0.1), throttle(redis_client, max_wait=0.1)
    busy = [RecipientOutcome("a@example.com", Status.TRANSIENT, code, "4.7.0 Too many messages, slow down")]
    assert gate.observe(UNLIMITED, busy)
    assert gate.admit(UNLIMITED) == pytest.approx(0.5, abs=0.05)
    assert other_worker.admit(UNLIMITED) == pytest.approx(0.5, abs=0.05)  # read from Redis
    assert other_worker.admit(LIMITED) is None  # another relay goes on


def test_other_replies_pause_nothing(redis_client: redis.Redis) -> None:
    gate = throttle(redis_client)
    assert not gate.observe(UNLIMITED, [RecipientOutcome("a@example.com", Status.TRANSIENT, 451, "4.3.0 Busy"),
                                        RecipientOutcome("b@example.com", Status.ACCEPTED, 250, "OK")])
    assert RateLimiter(redis_client).paused_for("default") == 0


def test_an_unlimited_relay_reads_its_pause_once_per_round(redis_client: redis.Redis) -> None:
    gate = throttle(redis_client)
    assert gate.admit(UNLIMITED) is None
    RateLimiter(redis_client).pause("default", 5)  # another worker, after this round looked
    assert gate.admit(UNLIMITED) is None
    assert throttle(redis_client, max_wait=0.1).admit(UNLIMITED) is not None  # the next round sees it


class CountingLimiter(RateLimiter):
    """The real limiter on the real Redis, counting how often a pause is read."""

    reads = 0

    def paused_for(self, relay: str) -> float:
        self.reads += 1
        time.sleep(0.01)  # a round trip, long enough for the other threads to arrive meanwhile
        return super().paused_for(relay)


def test_a_rounds_connections_starting_at_once_read_the_pause_once(redis_client: redis.Redis) -> None:
    limiter = CountingLimiter(redis_client)
    gate = Throttle(limiter, max_wait=1.0, pause=0.5, deadline=time.monotonic() + 60)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: gate.ask(UNLIMITED, wait=False), range(16)))
    assert answers == [True] * 16
    assert limiter.reads == 1


def test_ask_answers_at_once_without_wait_and_sits_the_wait_out_with_it(redis_client: redis.Redis) -> None:
    gate = throttle(redis_client)
    assert gate.ask(LIMITED, wait=False) is True  # the one token in the bucket
    assert gate.ask(LIMITED, wait=False) is None  # the next needs about 100 ms: the caller flushes first
    started = time.monotonic()
    assert gate.ask(LIMITED, wait=True) is True
    assert 0.02 <= time.monotonic() - started < 1.0


def test_ask_says_no_to_a_wait_past_what_a_round_sits_out(redis_client: redis.Redis) -> None:
    hourly = Relay("bulk", {"host": "h"}, Rate(2, 3600.0))
    gate = throttle(redis_client, max_wait=1.0)
    assert gate.ask(hourly, wait=False) is True
    assert gate.ask(hourly, wait=False) is False and gate.ask(hourly, wait=True) is False
    assert 1700 < gate.longest_wait <= 1800
