"""The buckets and reply classes the workers write and ``mailqueue metrics`` reads."""

from __future__ import annotations

import math

import pytest

from mailqueue.queue import measures


@pytest.mark.parametrize(("code", "expected"), [
    (250, "2xx"), (251, "2xx"), (451, "4xx"), (421, "4xx"), (550, "5xx"), (554, "5xx"),
    (None, "none"), (354, "none"), (199, "none"), (600, "none"), (True, "none"),
])
def test_reply_classes(code: int | None, expected: str) -> None:
    assert measures.reply_class(code) == expected
    assert measures.reply_field(code) == f"smtp_{expected}"


def test_buckets_span_a_tenth_of_a_second_to_an_hour_in_order() -> None:
    assert measures.LATENCY_BUCKETS[0] == 0.1 and measures.LATENCY_BUCKETS[-1] == 3600.0
    assert list(measures.LATENCY_BUCKETS) == sorted(set(measures.LATENCY_BUCKETS))


@pytest.mark.parametrize(("seconds", "bucket"), [
    (0.0, "0.1"), (0.1, "0.1"), (0.1001, "0.25"), (1, "1.0"), (59.9, "60.0"), (3600, "3600.0"),
    (3600.5, "+Inf"), (math.inf, "+Inf"),
])
def test_an_observation_lands_in_the_smallest_bucket_holding_it(seconds: float, bucket: str) -> None:
    assert measures.bucket_for(seconds) == bucket


@pytest.mark.parametrize("bad", [math.nan, "1", None])
def test_a_latency_that_is_not_a_number_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="latency must be a number"):
        measures.bucket_for(bad)  # type: ignore[arg-type]


def test_clock_skew_never_gives_a_negative_latency() -> None:
    assert measures.observation(-3.0) == 0.0
    assert measures.observation(2.5) == 2.5


def test_cumulative_buckets_add_up_and_end_with_inf() -> None:
    counts: dict[str, int] = {}
    for seconds in (0.05, 0.2, 0.2, 7, 5000):
        field = measures.bucket_for(seconds)
        counts[field] = counts.get(field, 0) + 1
    buckets = dict(measures.cumulative_buckets(counts))
    assert list(buckets)[-1] == "+Inf" and len(buckets) == len(measures.LATENCY_BUCKETS) + 1
    assert (buckets["0.1"], buckets["0.25"], buckets["5.0"], buckets["10.0"], buckets["3600.0"], buckets["+Inf"]) \
        == (1, 3, 3, 4, 4, 5)
    values = list(buckets.values())
    assert values == sorted(values)


def test_an_unknown_field_is_not_counted_in_any_bucket() -> None:
    assert dict(measures.cumulative_buckets({"7.0": 3}))["+Inf"] == 0
