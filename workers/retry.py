"""When to try a transient failure again, or when to give up: a small pure policy.

The delay doubles with each attempt, starting at ``min_delay`` and capped at ``max_delay``,
and is shortened by a random share of up to ``jitter`` so that a fleet whose server went down
does not come back to it all in the same second. The worker only asks ``next_delay``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from mailqueue.conf import settings
from mailqueue.exceptions import ImproperlyConfigured

_MAX_EXPONENT = 64  # 2**64 times any sane min_delay is far past any max_delay


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    min_delay: float
    max_delay: float
    max_retries: int
    jitter: float = 0.25  # share of the delay that may be taken off at random, 0..1
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.min_delay < 0:
            raise ValueError(f"min_delay must be >= 0, got {self.min_delay!r}")
        if self.max_delay < self.min_delay:
            raise ValueError(f"max_delay ({self.max_delay!r}) must be >= min_delay ({self.min_delay!r})")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter!r}")

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        """The policy of MAILQUEUE_RETRY_*; a bad value is an error naming the settings."""
        try:
            return cls(
                min_delay=float(settings.MAILQUEUE_RETRY_MIN_DELAY),
                max_delay=float(settings.MAILQUEUE_RETRY_MAX_DELAY),
                max_retries=int(settings.MAILQUEUE_MAX_RETRIES),
            )
        except ValueError as error:
            names = "MAILQUEUE_RETRY_MIN_DELAY, MAILQUEUE_RETRY_MAX_DELAY and MAILQUEUE_MAX_RETRIES"
            raise ImproperlyConfigured(f"{names} do not make a retry policy: {error}") from None

    def next_delay(self, attempt: int) -> float | None:
        """Seconds to wait after failed attempt number ``attempt`` (1 = the first try); None = give up."""
        if attempt < 1:
            raise ValueError(f"attempt counts from 1, got {attempt!r}")
        if attempt > self.max_retries:
            return None
        base = min(self.max_delay, self.min_delay * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
        jittered = base * (1.0 - self.jitter * self.rng.random())
        return max(self.min_delay, min(self.max_delay, jittered))
