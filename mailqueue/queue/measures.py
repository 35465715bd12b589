"""What the workers measure for ``mailqueue metrics``: SMTP reply classes and delivery latency.

Shared by both sides so that the names and buckets the workers write are the ones the
exporter reads. Latency is counted per bucket (one increment per observation, cheap in the
workers' one stats write per round); the exporter adds them up into Prometheus' cumulative
``le`` buckets at scrape time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

# Seconds from enqueue to the server's acceptance: 0.1 s (a local relay) to 1 h (a long retry).
LATENCY_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
                                      600.0, 1800.0, 3600.0)
INFINITY = "+Inf"
SUM_FIELD = "sum"
COUNT_FIELD = "count"
REPLY_CLASSES = ("2xx", "4xx", "5xx", "none")
REPLY_FIELD_PREFIX = "smtp_"


def reply_class(code: int | None) -> str:
    """The class of an SMTP reply code: 2xx, 4xx, 5xx, or "none" (no reply, or not a reply code)."""
    if isinstance(code, int) and not isinstance(code, bool) and 200 <= code < 600 and code // 100 in (2, 4, 5):
        return f"{code // 100}xx"
    return "none"


def reply_field(code: int | None) -> str:
    """The stats-hash field counting the replies of ``code``'s class, e.g. ``smtp_4xx``."""
    return REPLY_FIELD_PREFIX + reply_class(code)


def bucket_label(bound: float) -> str:
    """How a bucket bound is written, in the Redis hash and as Prometheus' ``le``."""
    return INFINITY if math.isinf(bound) else repr(float(bound))


def bucket_for(seconds: float) -> str:
    """The field of the smallest bucket holding ``seconds`` (negative, from clock skew, is 0)."""
    if not isinstance(seconds, (int, float)) or math.isnan(seconds):
        raise ValueError(f"latency must be a number of seconds, got {seconds!r}")
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            return bucket_label(bound)
    return INFINITY


def observation(seconds: float) -> float:
    """The latency to record: clock skew between producer and worker must not make it negative."""
    return max(0.0, float(seconds))


def cumulative_buckets(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Per-bucket counts (as the workers write them) as Prometheus' cumulative (le, count) pairs."""
    total = 0
    buckets = []
    for label in [*(bucket_label(bound) for bound in LATENCY_BUCKETS), INFINITY]:
        total += int(counts.get(label, 0))
        buckets.append((label, total))
    return buckets
