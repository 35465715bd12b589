"""Cancelling a task that no worker has begun: one state key per task, settled by whoever is first.

``keys.task_state_key(task_id)`` is written by two Lua scripts, each atomic in Redis:

- ``cancel`` (producers, ``mailqueue cancel``): unless the key says "started" (or the task has a
  result already), set it to "cancelled" and take the task off the schedule, if it is scheduled;
- ``claim`` (a worker, at the start of every round): unless the key says "cancelled", set it to
  "started". A round that finds it cancelled sends nothing and reports every message "cancelled".

So exactly one of them wins: a cancel that returns True means no worker has begun, and none
will. Immediate sends cost nothing here: the producer writes no state when it enqueues.
The key lives as long as the task's report (MAILQUEUE_RESULT_EXPIRES).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from mailqueue.conf import settings
from mailqueue.queue import keys

__all__ = ["CANCELLED", "STARTED", "Cancellation", "cancel", "cancelled_report", "claim", "state"]

CANCELLED, STARTED = "cancelled", "started"
CANCELLED_REPLY = "cancelled before delivery began"

# KEYS: state, result, then the scheduled store (schedule, entries, claims, claim times).
_CANCEL = """
local state = redis.call('GET', KEYS[1])
if state == 'started' then return {0} end
if state ~= 'cancelled' and redis.call('EXISTS', KEYS[2]) == 1 then return {0} end
redis.call('SET', KEYS[1], 'cancelled', 'EX', ARGV[2])
local entry = redis.call('HGET', KEYS[4], ARGV[1]) or redis.call('HGET', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
if entry then return {1, entry} end
return {1}
"""

_CLAIM = """
if redis.call('GET', KEYS[1]) == 'cancelled' then return 0 end
redis.call('SET', KEYS[1], 'started', 'EX', ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class Cancellation:
    cancelled: bool  # False: a worker had begun (or finished) the task
    payloads: list[dict[str, Any]] | None = None  # the scheduled task's, when it was scheduled


def _ttl() -> int:
    return max(1, int(settings.MAILQUEUE_RESULT_EXPIRES))


def cancel(client: Any, task_id: str) -> Cancellation:
    """Cancel ``task_id`` unless a worker began it; a scheduled task leaves the schedule at once."""
    found = client.eval(_CANCEL, 6, keys.task_state_key(task_id), keys.result_key(task_id),
                        *keys.scheduled_keys(), task_id, _ttl())
    if not int(found[0]):
        return Cancellation(False)
    payloads = json.loads(found[1]).get("payloads") if len(found) > 1 else None
    return Cancellation(True, payloads if isinstance(payloads, list) else None)


def claim(client: Any, task_id: str) -> bool:
    """A worker starts a round: True if it may deliver, False if the task was cancelled first."""
    return bool(int(client.eval(_CLAIM, 1, keys.task_state_key(task_id), _ttl())))


def state(client: Any, task_id: str) -> str | None:
    """"cancelled", "started", or None (neither yet, or forgotten)."""
    value = client.get(keys.task_state_key(task_id))
    return value.decode() if isinstance(value, bytes) else value


def cancelled_report(task_id: str, payloads: list[Any], *, hostname: str = "") -> dict[str, Any]:
    """The final report of a cancelled task: every message and recipient "cancelled", nothing sent.

    It has the shape of the workers' reports (``workers.report``), so ``delivery.get()`` and
    ``mailqueue status`` read it as any other; payloads are read leniently (they are not sent).
    """
    messages: dict[str, Any] = {}
    for payload in payloads:
        if not isinstance(payload, dict) or not isinstance(payload.get("message_id"), str):
            continue
        given = payload.get("recipients")
        recipients: list[Any] = given if isinstance(given, list) else []
        messages[payload["message_id"]] = {
            "status": CANCELLED, "attempts": 0, "dead_letter": None,
            "recipients": {str(address): {"status": CANCELLED, "code": None, "reply": CANCELLED_REPLY,
                                          "permanent": False} for address in recipients},
        }
    now = time.time()
    return {"task_id": task_id, "sent": 0, "failed": 0, "pending": 0, "cancelled": len(messages), "retries": 0,
            "attempts": 0, "hostname": hostname, "started_at": now, "finished_at": now, "next_attempt_at": None,
            "messages": messages}
