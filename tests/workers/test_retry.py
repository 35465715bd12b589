"""The backoff policy on its own: when next, or give up."""

from __future__ import annotations

import random

import pytest

from mailqueue.conf import override_settings
from workers.retry import RetryPolicy


def policy(**overrides: object) -> RetryPolicy:
    options: dict = {"min_delay": 10.0, "max_delay": 1000.0, "max_retries": 8, "jitter": 0.0}
    options.update(overrides)
    return RetryPolicy(**options)


def test_without_jitter_the_delay_doubles_from_min_delay() -> None:
    assert [policy().next_delay(attempt) for attempt in (1, 2, 3, 4)] == [10.0, 20.0, 40.0, 80.0]


def test_delay_is_capped_at_max_delay() -> None:
    assert policy(max_delay=50.0).next_delay(8) == 50.0


def test_gives_up_after_max_retries() -> None:
    retry_policy = policy(max_retries=3)
    assert retry_policy.next_delay(3) is not None
    assert retry_policy.next_delay(4) is None


def test_zero_max_retries_never_retries() -> None:
    assert policy(max_retries=0).next_delay(1) is None


def test_jittered_delays_stay_between_min_and_max() -> None:
    retry_policy = policy(jitter=1.0, max_retries=40, rng=random.Random(7))
    delays = [retry_policy.next_delay(attempt) for attempt in range(1, 41) for _ in range(20)]
    assert all(delay is not None and 10.0 <= delay <= 1000.0 for delay in delays)


def test_jitter_spreads_the_delays_of_one_attempt() -> None:
    retry_policy = policy(jitter=0.5, rng=random.Random(1))
    delays = {retry_policy.next_delay(4) for _ in range(50)}
    assert len(delays) > 40
    assert all(delay is not None and 40.0 <= delay <= 80.0 for delay in delays)


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert policy(max_retries=10**6).next_delay(10**5) == 1000.0


@pytest.mark.parametrize(
    ("overrides", "culprit"),
    [({"min_delay": -1.0}, "min_delay"), ({"max_delay": 5.0}, "max_delay"),
     ({"max_retries": -1}, "max_retries"), ({"jitter": 1.5}, "jitter")],
)
def test_invalid_options_are_refused_naming_the_option(overrides: dict, culprit: str) -> None:
    with pytest.raises(ValueError, match=culprit):
        policy(**overrides)


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="attempt"):
        policy().next_delay(0)


def test_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        RetryPolicy(1.0, 2.0, 3)  # type: ignore[call-arg]


def test_from_settings_reads_the_retry_settings() -> None:
    with override_settings(MAILQUEUE_RETRY_MIN_DELAY=2.0, MAILQUEUE_RETRY_MAX_DELAY=9.0, MAILQUEUE_MAX_RETRIES=4):
        retry_policy = RetryPolicy.from_settings()
    assert (retry_policy.min_delay, retry_policy.max_delay, retry_policy.max_retries) == (2.0, 9.0, 4)
