"""A round's first step: claim the task, or find it cancelled and end it with nothing sent.

The claim and the producers' cancel write the same per-task state key, each in one Lua script
(``mailqueue.queue.cancel``), so a task is either begun by a worker or cancelled, never both.
Every round claims (a retry round too: its task was begun already, so the claim holds).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.exceptions import Reject
from redis.exceptions import RedisError

from mailqueue.queue.cancel import cancelled_report, claim
from workers.durable import retry_redis
from workers.report import Report
from workers.store import Stores

logger = logging.getLogger(__name__)


def end_if_cancelled(task_id: str, batch: list[Any], stores: Stores) -> Report | None:
    """None if this round may deliver; the "cancelled" report if the task was cancelled first.

    Redis away for longer than the write budget: the task goes back to the broker, unsent.
    """
    try:
        claimed = retry_redis(lambda: claim(stores.client, task_id), what=f"claim task {task_id}")
    except RedisError as error:
        logger.error("Delivery task %s: Redis unavailable (%s); requeueing the task", task_id, error)
        raise Reject(error, requeue=True) from error
    if claimed:
        return None
    report = cancelled_report(task_id, batch, hostname=stores.hostname)
    retry_redis(lambda: stores.count(cancelled=len(report["messages"])), what="add to the totals")
    logger.info("Task %s was cancelled before delivery: %d message(s) not sent", task_id, len(report["messages"]))
    return report
