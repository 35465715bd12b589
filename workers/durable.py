"""Writes that must reach Redis: retried with backoff through a short outage, within a budget.

Once the SMTP server has said 250, the acceptance exists only in this process's memory until
the ledger holds it. Handing the task back the moment Redis blinks (a restart, a failover)
would run it again with the ledger still empty, and the recipient would get the message
twice. So a write that records an outcome (the ledger, a dead letter, the totals, a deferred
round) is retried, holding the outcome in memory, until Redis answers again.

The wait is bounded by ``write_budget()``, a quarter of MAILQUEUE_VISIBILITY_TIMEOUT: while
Redis is down no worker can hand this task to another, and once it is back the task's
unacked score is younger than the timeout for at least that long, so the write lands before
any sweep could give the task to a second worker. Past the budget the error is raised, and
the round hands its task back as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from redis.exceptions import RedisError

from mailqueue.conf import settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY = 0.05  # seconds before the first retry; doubles each time
MAX_DELAY = 1.0  # the write lands at most about this long after Redis is back


def write_budget() -> float:
    """Seconds a recording write may keep retrying: a quarter of the visibility timeout."""
    return float(settings.MAILQUEUE_VISIBILITY_TIMEOUT) / 4


def retry_redis(
    operation: Callable[[], T],
    *,
    what: str,
    budget: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``operation``; on a RedisError, retry with backoff for up to ``budget`` seconds.

    ``operation`` must be safe to repeat (an SADD, an HINCRBY batch that may count twice at
    worst). ``what`` names it in the log. The last RedisError is raised once the budget is spent.
    """
    budget = write_budget() if budget is None else budget
    deadline = time.monotonic() + budget
    delay = FIRST_DELAY
    failures = 0
    while True:
        try:
            result = operation()
        except RedisError as error:
            failures += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                logger.error("Could not %s: Redis unavailable for %.1fs (%s); giving up", what, budget, error)
                raise
            if failures == 1:
                logger.warning("Could not %s (%s); retrying for up to %.1fs", what, error, remaining)
            sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_DELAY)
        else:
            if failures:
                logger.info("Could %s after %d retr%s", what, failures, "y" if failures == 1 else "ies")
            return result
