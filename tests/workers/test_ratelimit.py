"""The fleet-wide token bucket, on a real Redis: parsing, drawing, sharing and pausing."""

from __future__ import annotations

import bisect
import threading
import time
from typing import Any

import pytest
import redis
from celery import Celery

from mailqueue.conf import override_settings
from tests.fixtures.celery import delivered_pairs, final_report, make_payload, send_batch
from tests.fixtures.smtp import SMTPTestServer
from workers.ratelimit import Rate, RateLimiter


@pytest.mark.parametrize(("text", "per_second", "burst"), [
    ("20/s", 20.0, 2), ("1/s", 1.0, 1), ("600/m", 10.0, 1), ("7200/h", 2.0, 1), (" 200 / s ", 200.0, 20),
    ("2.5/s", 2.5, 1),
])
def test_rates_are_read_per_second_minute_or_hour(text: str, per_second: float, burst: int) -> None:
    rate = Rate.parse(text, setting="MAILQUEUE_RATE_LIMIT")
    assert rate is not None
    assert (rate.per_second, rate.burst) == (pytest.approx(per_second), burst)


def test_an_empty_rate_is_no_limit() -> None:
    assert Rate.parse("", setting="MAILQUEUE_RATE_LIMIT") is None
    assert Rate.parse("  ", setting="MAILQUEUE_RATE_LIMIT") is None


@pytest.mark.parametrize("text", ["20", "20/d", "0/s", "-1/s", "fast", "20/s/s", "1e3/s"])
def test_a_bad_rate_is_an_error_naming_the_setting(text: str) -> None:
    with pytest.raises(ValueError, match="RELAY_X.*is not a rate"):
        Rate.parse(text, setting="RELAY_X")


def test_a_rate_that_is_not_a_string_is_an_error() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        Rate.parse(20, setting="MAILQUEUE_RATE_LIMIT")  # type: ignore[arg-type]


def test_a_full_bucket_gives_its_burst_then_says_how_long_to_wait(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    rate = Rate(20, 1.0)  # burst 2
    first = limiter.draw("default", rate, 5)
    assert first.granted == 2
    assert 0 < first.wait <= 0.05 + 0.002
    assert limiter.draw("default", rate).granted == 0
    time.sleep(first.wait + 0.01)
    assert limiter.draw("default", rate).granted == 1


def test_relays_have_buckets_of_their_own(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    rate = Rate(1, 1.0)
    assert limiter.draw("default", rate).granted == 1
    assert limiter.draw("default", rate).granted == 0
    assert limiter.draw("bulk", rate).granted == 1


def test_without_a_limit_every_token_is_granted(redis_client: redis.Redis) -> None:
    assert RateLimiter(redis_client).draw("default", None, 500).granted == 500


def test_a_bucket_shared_by_many_drawers_never_gives_more_than_the_rate(redis_client: redis.Redis) -> None:
    """Eight threads, each with a client of its own (as eight worker processes), hammer one bucket."""
    rate = Rate(50, 1.0)  # burst 5
    granted: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + 1.5

    def drawer() -> None:
        own_pool = redis.ConnectionPool(**redis_client.connection_pool.connection_kwargs)
        limiter = RateLimiter(redis.Redis(connection_pool=own_pool))
        while time.monotonic() < stop:
            draw = limiter.draw("shared", rate)
            if draw.granted:
                with lock:
                    granted.append(time.monotonic())
            else:
                time.sleep(min(draw.wait, 0.01))

    threads = [threading.Thread(target=drawer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 1.5 s at 50/s plus the burst: 80 at most; the limit is used, not just respected.
    assert 60 <= len(granted) <= 5 + 75 + 1
    granted.sort()
    busiest = max(sum(1 for t in granted if start <= t < start + 1.0) for start in granted)
    assert busiest <= 50 + 5 + 1


def test_a_pause_holds_every_draw_until_it_ends(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    limiter.pause("default", 0.3)
    limited, unlimited = limiter.draw("default", Rate(100, 1.0)), limiter.draw("default", None)
    assert (limited.granted, unlimited.granted) == (0, 0)
    assert 0.2 < limited.wait <= 0.3 and 0.2 < unlimited.wait <= 0.3
    assert limiter.draw("bulk", None).granted == 1  # another relay is not paused
    time.sleep(0.35)
    assert limiter.draw("default", None).granted == 1
    assert limiter.paused_for("default") == 0


def test_a_pause_is_only_ever_lengthened(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    limiter.pause("default", 10)
    limiter.pause("default", 1)
    assert limiter.paused_for("default") > 9
    limiter.pause("default", 20)
    assert limiter.paused_for("default") > 19


# --- The whole fleet, measured at the SMTP server ---------------------------------------------------


def busiest_second(times: list[float]) -> int:
    times = sorted(times)
    return max(bisect.bisect_left(times, start + 1.0) - index for index, start in enumerate(times))


@pytest.mark.faults
def test_three_worker_processes_together_keep_to_the_fleet_rate(
    worker_process: Any, celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    """20/s over 3 processes: no 1-second window above 24 at the server, and the limit is used (>= 18/s)."""
    count = 200
    payloads = [make_payload(to=[f"r{n}@example.com"]) for n in range(count)]
    batches = [payloads[start:start + 10] for start in range(0, count, 10)]
    worker_process(concurrency=3, MAILQUEUE_RATE_LIMIT="20/s")
    results = [send_batch(celery_app, batch) for batch in batches]

    smtp_server.wait_for_messages(count, timeout=40)
    reports = [final_report(result, timeout=20) for result in results]

    times = [received.received_at for received in smtp_server.messages]
    assert sum(report["sent"] for report in reports) == count
    assert set(delivered_pairs(smtp_server).values()) == {1}  # none twice
    assert busiest_second(times) <= 24
    assert (count - 1) / (max(times) - min(times)) >= 18


def test_a_round_held_back_by_the_limit_is_deferred_without_counting_a_retry(
    celery_app: Celery, celery_worker: Any, smtp_server: SMTPTestServer
) -> None:
    payloads = [make_payload(to=[f"r{n}@example.com"]) for n in range(4)]
    with override_settings(MAILQUEUE_RATE_LIMIT="4/s", MAILQUEUE_RATE_LIMIT_MAX_WAIT=0.05, MAILQUEUE_MAX_RETRIES=0):
        report = final_report(send_batch(celery_app, payloads), timeout=20)
    assert (report["sent"], report["failed"], report["retries"]) == (4, 0, 0)
    assert {entry["attempts"] for entry in report["messages"].values()} == {1}
    times = sorted(received.received_at for received in smtp_server.messages)
    assert times[-1] - times[0] >= 0.6  # one every 250 ms: deferred three times, not sent at once


@pytest.mark.faults
def test_a_421_pauses_the_relay_for_every_worker_process(
    worker_process: Any, celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    smtp_server.fail_sender(421, "4.7.0 Too many messages, slow down", times=1)
    worker_process(concurrency=3, MAILQUEUE_THROTTLE_PAUSE=2.0)
    first = send_batch(celery_app, [make_payload(to=["first@example.com"])])
    time.sleep(0.5)  # the first 421 has paused the relay
    paused_at = time.time()
    others = [send_batch(celery_app, [make_payload(to=[f"o{n}@example.com"])]) for n in range(6)]

    reports = [final_report(result, timeout=30) for result in [first, *others]]

    assert sum(report["sent"] for report in reports) == 7
    assert set(delivered_pairs(smtp_server).values()) == {1}
    earliest = min(received.received_at for received in smtp_server.messages)
    assert earliest >= paused_at + 1.0  # nobody sent while the relay was paused
