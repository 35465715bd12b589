"""retry_redis: a recording write waits out a short Redis outage, and gives up past its budget."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

from mailqueue.conf import override_settings
from workers.durable import retry_redis, write_budget


def test_a_write_made_while_redis_is_down_lands_once_it_is_back(own_redis: Any) -> None:
    server = own_redis()
    client = redis.Redis.from_url(server.url, socket_connect_timeout=0.5)
    server.kill()
    threading.Timer(0.5, server.start).start()

    started = time.monotonic()
    assert retry_redis(lambda: client.sadd("ledger", "ann@example.com"), what="record", budget=10) == 1
    assert time.monotonic() - started < 5
    assert client.smembers("ledger") == {b"ann@example.com"}


def test_past_its_budget_the_redis_error_is_raised(own_redis: Any) -> None:
    server = own_redis()
    client = redis.Redis.from_url(server.url, socket_connect_timeout=0.5)
    server.kill()

    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        retry_redis(lambda: client.sadd("ledger", "ann@example.com"), what="record", budget=0.3)
    assert time.monotonic() - started < 5


def test_the_budget_is_a_quarter_of_the_visibility_timeout() -> None:
    with override_settings(MAILQUEUE_VISIBILITY_TIMEOUT=300):
        assert write_budget() == 75.0
