"""Deferred retries: rounds waiting in Redis until they are due, then re-sent as tasks.

Why not a Celery countdown: on Redis, a task waiting for its countdown is unacknowledged,
and kombu hands it to another worker once the visibility timeout has passed, so a long
countdown runs the task several times. A deferred round is instead stored in a sorted set
scored by its due time; a poller thread in each worker's main process re-sends due rounds
with the same task id, so whoever waits on the result keeps waiting until the final report.

Claiming is crash-safe: a Lua script moves due entries atomically from the schedule to a
claims hash; the poller deletes a claim only once the task is on the broker. A claim left
behind by a poller that died is put back on the schedule after ``claim_timeout`` seconds.
Re-sending twice is harmless: the delivery ledger stops a second send to any recipient.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, cast

import redis

from mailqueue.queue import keys
from mailqueue.queue.signing import SIGNATURE_HEADER, signature_headers

logger = logging.getLogger(__name__)

_CLAIM_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local claimed = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local entry = redis.call('HGET', KEYS[2], id)
  redis.call('HDEL', KEYS[2], id)
  if entry then
    redis.call('HSET', KEYS[3], id, entry)
    redis.call('ZADD', KEYS[4], ARGV[1], id)
    table.insert(claimed, entry)
  end
end
return claimed
"""

_RECOVER_STALE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[1])
for _, id in ipairs(ids) do
  local entry = redis.call('HGET', KEYS[3], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
  if entry and redis.call('HEXISTS', KEYS[2], id) == 0 then
    redis.call('HSET', KEYS[2], id, entry)
    redis.call('ZADD', KEYS[1], ARGV[2], id)
  end
end
return #ids
"""


@dataclass(frozen=True, slots=True)
class DeferredTask:
    """One delivery round waiting for its retry: what the re-sent task receives."""

    task_id: str
    payloads: list[dict[str, Any]]  # narrowed to the recipients still to be tried
    attempt: int  # attempts made so far
    report: dict[str, Any]  # the delivery report so far
    due: float  # epoch seconds
    # The signature of the task the poller sends (MAILQUEUE_SIGNING_KEY), made by the worker that
    # stored the round: the poller never signs what it reads from Redis, or anyone who can write an
    # entry there would have it signed.
    signature: str | None = None
    # The queue the round came from (MAILQUEUE_QUEUE if None): a retry goes back where it was sent,
    # so a message sent with get_connection(queue="urgent") is retried on "urgent".
    queue: str | None = None
    # Its priority ("high", "normal", "low"; mailqueue.queue.priority), kept for the same reason.
    priority: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def signed(self) -> DeferredTask:
        """This round, signed as the task the poller will send (unsigned without a key)."""
        sent = json.loads(self.to_json())  # sign exactly what the poller reads back
        headers = signature_headers(self.task_id, sent["payloads"], attempt=sent["attempt"], report=sent["report"])
        return replace(self, signature=headers.get(SIGNATURE_HEADER))

    def headers(self) -> dict[str, str]:
        """The message headers of the re-sent task: its signature, if it has one."""
        return {SIGNATURE_HEADER: self.signature} if self.signature else {}

    @classmethod
    def from_json(cls, raw: str | bytes) -> DeferredTask:
        return cls(**json.loads(raw))


class Deferrals:
    """The deferred-retry store. Keys come from ``mailqueue.queue.keys``.

    ``store_keys`` (schedule, entries, claims, claim times) names another store of the same
    layout: the scheduled sends (``keys.scheduled_keys()``), which producers write and the same
    poller enqueues when due.
    """

    def __init__(self, client: redis.Redis, *, store_keys: list[str] | None = None) -> None:
        self.client = client
        self._claim = client.register_script(_CLAIM_DUE)
        self._recover = client.register_script(_RECOVER_STALE)
        self._store_keys = store_keys or [keys.deferred_schedule_key(), keys.deferred_entries_key(),
                                          keys.deferred_claims_key(), keys.deferred_claim_times_key()]
        self._schedule, self._entries, self._claims, self._claim_times = self._store_keys

    def _keys(self) -> list[str]:
        return list(self._store_keys)

    def defer(self, entry: DeferredTask) -> None:
        """Store a round until ``entry.due``; a newer round for the same task replaces it."""
        entry = entry.signed()
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self._entries, entry.task_id, entry.to_json())
            pipe.zadd(self._schedule, {entry.task_id: entry.due})
            pipe.execute()

    def claim_due(self, *, now: float | None = None, limit: int = 100) -> list[DeferredTask]:
        """Atomically take up to ``limit`` due rounds; each stays claimed until ``done``."""
        now = time.time() if now is None else now
        raw = self._claim(keys=self._keys(), args=[now, limit])
        return [DeferredTask.from_json(item) for item in raw]

    def done(self, task_id: str) -> None:
        """The claimed round is back on the broker: forget the claim."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(self._claims, task_id)
            pipe.zrem(self._claim_times, task_id)
            pipe.execute()

    def recover(self, *, older_than: float, now: float | None = None) -> int:
        """Put claims older than ``older_than`` seconds back on the schedule, due now."""
        now = time.time() if now is None else now
        return int(self._recover(keys=self._keys(), args=[now - older_than, now]))

    def cancel(self, task_id: str) -> None:
        """Forget every trace of a task's deferred round (it finished some other way)."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.zrem(self._schedule, task_id)
            pipe.hdel(self._entries, task_id)
            pipe.hdel(self._claims, task_id)
            pipe.zrem(self._claim_times, task_id)
            pipe.execute()

    def get(self, task_id: str) -> DeferredTask | None:
        raw = cast("bytes | None", self.client.hget(self._entries, task_id))
        return None if raw is None else DeferredTask.from_json(raw)

    def count(self) -> int:
        """Rounds waiting (scheduled or claimed), for ``mailqueue stats``."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.zcard(self._schedule)
            pipe.hlen(self._claims)
            scheduled, claimed = pipe.execute()
        return int(scheduled) + int(claimed)


class DeferralPoller:
    """A thread that re-sends due rounds through ``enqueue`` every ``interval`` seconds."""

    def __init__(
        self,
        deferrals: Deferrals,
        enqueue: Callable[[DeferredTask], object],
        *,
        interval: float,
        claim_timeout: float | None = None,
        batch: int = 100,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"The poll interval must be positive, got {interval!r}")
        self.deferrals = deferrals
        self.enqueue = enqueue
        self.interval = interval
        # A claim normally lives for one broker round trip; wait much longer before stealing it.
        self.claim_timeout = claim_timeout if claim_timeout is not None else max(5.0, 10 * interval)
        self.batch = batch
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, *, now: float | None = None) -> int:
        """Recover stale claims, then re-send what is due; returns how many were re-sent."""
        self.deferrals.recover(older_than=self.claim_timeout, now=now)
        sent = 0
        for entry in self.deferrals.claim_due(now=now, limit=self.batch):
            try:
                self.enqueue(entry)
            except Exception:
                # The claim stays; recover() puts it back on the schedule later.
                logger.exception("Could not re-enqueue deferred task %s; will try again", entry.task_id)
                continue
            self.deferrals.done(entry.task_id)
            sent += 1
        return sent

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="mailqueue-deferral-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        failing = False
        while not self._stopping.wait(self.interval):
            try:
                sent = self.run_once()
            except Exception as error:  # Redis away for a moment: say so once, keep polling
                if not failing:
                    logger.warning("Deferred-retry poll failed (%s); retrying every %.1f s", error, self.interval)
                failing = True
                continue
            if failing:
                logger.info("Deferred-retry poll works again")
                failing = False
            if sent:
                logger.info("Re-enqueued %d deferred delivery task(s)", sent)
