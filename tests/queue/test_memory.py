"""The broker-memory gauge and its marks (mailqueue.queue.memory), against a real Redis."""

from __future__ import annotations

import pytest
import redis

from mailqueue.conf import override_settings
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.queue.memory import MemoryGauge, MemoryReading, high_water_fraction, read_memory, worker_fraction


def test_a_reading_is_above_a_mark_only_with_a_limit_set() -> None:
    assert MemoryReading(used=95, maximum=100).above(0.9)
    assert not MemoryReading(used=89, maximum=100).above(0.9)
    assert not MemoryReading(used=10**9, maximum=0).above(0.9)  # no maxmemory: never full
    assert not MemoryReading(used=100, maximum=100).above(1.0)  # 1.0 turns the mark off
    assert MemoryReading(used=82, maximum=100).near(0.9) and not MemoryReading(used=80, maximum=100).near(0.9)


def test_workers_stop_taking_halfway_from_the_producers_mark_to_full() -> None:
    assert worker_fraction(0.9) == pytest.approx(0.95)
    assert worker_fraction(1.0) == 1.0


@pytest.mark.parametrize("value", [0, -0.5, 1.5, True, "0.9"])
def test_a_bad_fraction_is_refused_naming_the_setting(value: object) -> None:
    with override_settings(MAILQUEUE_BROKER_MAX_MEMORY_FRACTION=value):
        with pytest.raises(ImproperlyConfigured, match="MAILQUEUE_BROKER_MAX_MEMORY_FRACTION"):
            high_water_fraction()


def test_the_gauge_reads_at_most_once_per_max_age_and_counts_what_was_written(redis_client: redis.Redis) -> None:
    now = [0.0]
    reads = []

    def read() -> MemoryReading:
        reads.append(now[0])
        return read_memory(redis_client)

    gauge = MemoryGauge(read, max_age=1.0, clock=lambda: now[0])
    first = gauge.reading()
    assert first.used > 0
    gauge.account(5000)
    assert gauge.reading().used == first.used + 5000 and len(reads) == 1
    now[0] = 1.5
    gauge.reading()
    assert len(reads) == 2
    gauge.reading(max_age=0)
    assert len(reads) == 3


def test_a_failing_read_reports_no_limit_rather_than_refusing_mail() -> None:
    def read() -> MemoryReading:
        raise redis.ResponseError("NOPERM this user has no permissions to run the 'info' command")

    gauge = MemoryGauge(read)
    assert not gauge.reading().above(0.5)
    assert isinstance(gauge.last_error, redis.ResponseError)
