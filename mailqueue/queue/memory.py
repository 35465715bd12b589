"""How full the broker's Redis is, and the high-water marks producers and workers keep below.

With ``maxmemory`` and ``noeviction`` (what the README recommends: evicting would drop mail),
a full Redis refuses every write that needs memory. kombu then pops a task and cannot record
it as unacknowledged, and the ledger and the reports cannot be written. So there are two marks
below ``maxmemory``:

- producers refuse new mail above ``MAILQUEUE_BROKER_MAX_MEMORY_FRACTION`` (0.9): the room
  above is the fleet's, for what it writes while it drains the queue (in-flight copies,
  ledger entries, reports);
- workers stop taking tasks halfway from there to full (0.95), and take again once memory
  is back below it: a task is taken only when there is room to record it as in flight.

``INFO memory`` is read at most once a second per gauge, cheap next to a publish; but within 10%
of the producers' mark, before every publish, so that a burst cannot overshoot it by a second's worth.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import kombu.exceptions
import redis

from mailqueue.conf import settings
from mailqueue.exceptions import ImproperlyConfigured

__all__ = ["MemoryGauge", "MemoryReading", "high_water_fraction", "read_memory", "worker_fraction"]

logger = logging.getLogger(__name__)

MAX_AGE_SECONDS = 1.0
NEAR = 0.1  # within 10% of a mark, a reading is not reused: one INFO per publish, only then


@dataclass(frozen=True, slots=True)
class MemoryReading:
    used: int  # INFO memory used_memory, bytes
    maximum: int  # maxmemory, bytes; 0: no limit

    def above(self, fraction: float) -> bool:
        """True when a limit is set and ``used`` has reached ``fraction`` of it (1.0 and above: never)."""
        return 0 < fraction < 1 and self.maximum > 0 and self.used >= self.maximum * fraction

    def near(self, fraction: float, *, within: float = NEAR) -> bool:
        """True when ``used`` is within ``within`` (a fraction of the mark) of the mark, or above."""
        return self.above(fraction * (1 - within))

    def describe(self, fraction: float) -> str:
        percent = 100 * self.used / self.maximum if self.maximum else 0.0
        return (f"used_memory {self.used} of maxmemory {self.maximum} bytes ({percent:.0f}%; "
                f"the mark is {100 * fraction:.0f}%)")


def read_memory(client: Any) -> MemoryReading:
    """One ``INFO memory`` from a redis-py client."""
    info = client.info("memory")
    return MemoryReading(used=int(info.get("used_memory", 0)), maximum=int(info.get("maxmemory", 0)))


def high_water_fraction() -> float:
    """MAILQUEUE_BROKER_MAX_MEMORY_FRACTION, checked: above it producers refuse new mail."""
    value = settings.MAILQUEUE_BROKER_MAX_MEMORY_FRACTION
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ImproperlyConfigured(
            f"MAILQUEUE_BROKER_MAX_MEMORY_FRACTION must be a number above 0 and at most 1 (1 turns the "
            f"high-water mark off), not {value!r}."
        )
    return float(value)


def worker_fraction(producer_fraction: float) -> float:
    """Where workers stop taking tasks: halfway from the producers' mark to full."""
    return (1.0 + producer_fraction) / 2


class MemoryGauge:
    """A cached ``read()``: at most one reading per ``max_age`` seconds, shared by threads.

    A read that fails (INFO refused by an ACL, say) reports "no limit" for ``max_age``: the
    gauge must never be why mail is refused.
    """

    def __init__(self, read: Callable[[], MemoryReading] | None = None, *, max_age: float = MAX_AGE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, MemoryReading] | None = None
        self._written = 0  # bytes this process wrote since the last reading
        self.last_error: Exception | None = None

    def account(self, nbytes: int) -> None:
        """Count a write of about ``nbytes``: until the next reading, it counts as used.

        A burst from one process then cannot overshoot a mark by a second's worth of writes.
        """
        self._written += nbytes

    def reading(self, read: Callable[[], MemoryReading] | None = None, *,
                max_age: float | None = None) -> MemoryReading:
        """The last reading if it is younger than ``max_age`` (default: the gauge's), else a new one
        from ``read`` (default: the gauge's own)."""
        read = read or self._read
        if read is None:
            raise TypeError("MemoryGauge.reading() needs a read function: the gauge was given none")
        max_age = self._max_age if max_age is None else max_age
        now = self._clock()
        cached = self._cached
        if cached is not None and now - cached[0] < max_age:
            return self._with_written(cached[1])
        with self._lock:
            cached = self._cached
            if cached is not None and now - cached[0] < max_age:
                return self._with_written(cached[1])
            try:
                value = read()
                self.last_error = None
            except (ConnectionError, TimeoutError, redis.ConnectionError, redis.TimeoutError,
                    kombu.exceptions.OperationalError):
                raise  # the broker is down: the publish fails with BrokerUnavailable, not a warning
            except Exception as error:  # noqa: BLE001 - see the class's docstring
                if self.last_error is None:  # once per outage, not once a second
                    logger.warning("Could not read the broker's memory use (INFO memory: %r); its high-water "
                                   "mark is not enforced until it can be read.", error)
                value, self.last_error = MemoryReading(used=0, maximum=0), error
            self._cached, self._written = (now, value), 0
            return value

    def _with_written(self, reading: MemoryReading) -> MemoryReading:
        written = self._written
        return MemoryReading(used=reading.used + written, maximum=reading.maximum) if written else reading

    def forget(self) -> None:
        """Read again next time (after freeing memory, say)."""
        self._cached = None
