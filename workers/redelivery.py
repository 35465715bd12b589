"""Tasks stranded by a Redis outage go back to the queue within a second of Redis returning.

kombu's Redis transport keeps every task handed to a worker in an "unacked" hash until the
worker acknowledges it. Two things go wrong when Redis goes away while tasks are in hand:

- When the consumer loses its connection, kombu closes the channel and restores *every*
  unacknowledged message of it to the queue, the running ones included. If Redis is back
  before that restore gives up (redis-py retries for a few seconds), the reconnected worker
  receives a task that one of its own processes is still running, and an idle process sends
  the rest of its batch a second time. If the connection is already released, the restore
  raises AttributeError instead, and the worker's main process dies.
- An acknowledgement or a hand-back (``Reject(requeue=True)``) made while Redis is down is
  lost. The task stays in the unacked hash, and only a sweep hands it out again, once
  MAILQUEUE_VISIBILITY_TIMEOUT (5 minutes by default) has passed.

So this worker restores only what it no longer holds, and does so itself:

- ``HeldAwareRestore`` replaces the restore of the task channel: tasks this worker still
  holds (reserved or running) stay where they are, and a failing restore is logged, never fatal.
- ``Reclaimer``, a thread of the main process, remembers every delivery tag this worker
  received. A tag no longer held that is still in the unacked hash (its ack or hand-back was
  lost) is restored to the head of its queue, the way kombu does it, as soon as Redis answers.
  A task whose ack was lost runs again harmlessly: the ledger skips its accepted recipients
  and Celery skips a redelivered task whose result is already SUCCESS.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery, bootsteps
from celery.signals import task_received
from celery.worker import state
from kombu.transport import virtual

from workers.visibility import held_delivery_tags

logger = logging.getLogger(__name__)

ACK, REQUEUE = "acknowledge", "hand back"
TICK_SECONDS = 0.5
GRACE_TICKS = 2  # an ack is made right after a task ends: give it a second before calling it lost


def held_tags() -> set[str]:
    """Delivery tags of every request this worker holds, reserved or running (main process only)."""
    return set(held_delivery_tags())


def shutting_down(*, cold: bool) -> bool:
    """Has this worker been asked to stop (cold only, or either kind)?

    In a cold shutdown Celery counts the pool's requests as ended while pool processes still
    finish the task in hand (workers.signals); such a task must not be handed to another worker.
    """
    terminate = state.should_terminate not in (None, False)
    return terminate if cold else terminate or state.should_stop not in (None, False)


class HeldAwareRestore:
    """kombu's ``QoS.restore_unacked`` for one channel, leaving alone what this worker still holds."""

    def __init__(self, qos: Any, held: Callable[[], set[str]] = held_tags) -> None:
        self.qos = qos
        self.held = held

    def __call__(self, client: Any = None) -> None:
        if shutting_down(cold=True):  # the pool's tasks count as ended, yet they still finish
            logger.info("Cold shutdown: this worker's unacknowledged tasks come back after the visibility timeout")
            self.qos._delivered.clear()
            return
        keep = self.held()
        for tag in list(self.qos._delivered):
            if tag in keep:
                continue
            try:
                self.qos.restore_by_tag(tag, client=client, leftmost=True)
            except Exception as error:  # the connection may be gone: the Reclaimer tries again
                logger.warning("Could not hand delivery %s back to the queue now (%r); it will be once Redis answers",
                               tag, error)
        self.qos._delivered.clear()  # kombu forgets them too; a later ack of a held one still works


class SettleLater:
    """Wraps the task channel's ``QoS.ack``/``reject``: one that fails (Redis away, or the channel's
    connection already released after a reconnect) is handed to the Reclaimer instead of raising
    into the consumer, where it would end the worker's main process."""

    def __init__(self, qos: Any, reclaimer: Reclaimer) -> None:
        self.qos = qos
        self.reclaimer = reclaimer
        self.ack_now = qos.ack
        self.reject_now = qos.reject

    def ack(self, delivery_tag: str) -> None:
        self._settle(delivery_tag, ACK, lambda: self.ack_now(delivery_tag))

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        action = REQUEUE if requeue else ACK
        self._settle(delivery_tag, action, lambda: self.reject_now(delivery_tag, requeue=requeue))

    def _settle(self, tag: str, action: str, now: Callable[[], None]) -> None:
        try:
            now()
        except Exception as error:
            logger.warning("Could not %s delivery %s now (%r); it will be once Redis answers", action, tag, error)
            self.reclaimer.settle(tag, action)
            virtual.QoS.ack(self.qos, tag)  # settled as far as this channel is concerned

    def install(self) -> None:
        self.qos.ack = self.ack
        self.qos.reject = self.reject


class Reclaimer:
    """Restores, every ``tick`` seconds, the tasks this worker received, no longer holds, and never settled."""

    def __init__(self, app: Celery, *, tick: float = TICK_SECONDS, held: Callable[[], set[str]] = held_tags) -> None:
        self.app = app
        self.tick = tick
        self.held = held
        self.seen: dict[str, int] = {}  # tag -> ticks seen not held
        self.pending: dict[str, str] = {}  # tag -> ACK or REQUEUE, the settlement a channel could not make
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: Any = None

    def remember(self, tag: str) -> None:
        with self.lock:
            self.seen[tag] = 0

    def settle(self, tag: str, action: str) -> None:
        with self.lock:
            self.pending[tag] = action
            self.seen.pop(tag, None)

    def due(self) -> list[str]:
        """Tags not held for GRACE_TICKS ticks in a row (each call is one tick)."""
        if shutting_down(cold=False):  # a stopping worker's tasks may run on, unheld: leave them be
            return []
        held = self.held()
        with self.lock:
            for tag in self.seen:
                self.seen[tag] = 0 if tag in held else self.seen[tag] + 1
            return [tag for tag, ticks in self.seen.items() if ticks >= GRACE_TICKS]

    def run_once(self) -> int:
        """Make the settlements that failed, restore the stranded tasks; returns how many were handled."""
        with self.lock:
            pending = dict(self.pending)
        due = self.due()
        if not due and not pending:
            return 0
        qos = self._channel().qos
        for tag, action in pending.items():
            if action == REQUEUE:
                qos.restore_by_tag(tag, leftmost=True)
            else:
                qos._remove_from_indices(tag).execute()
            logger.info("Delivery %s: %s done, now that Redis answers", tag,
                        "hand-back" if action == REQUEUE else "ack")
            with self.lock:
                self.pending.pop(tag, None)
        if not due:
            return len(pending)
        client = qos.channel.client
        with client.pipeline(transaction=False) as pipe:
            for tag in due:
                pipe.hexists(qos.unacked_key, tag)
            stranded = [tag for tag, exists in zip(due, pipe.execute(), strict=True) if exists]
        for tag in stranded:
            qos.restore_by_tag(tag, leftmost=True)
            logger.warning("Delivery %s was left in flight by this worker; handed back to the queue", tag)
        with self.lock:
            for tag in due:
                self.seen.pop(tag, None)
        return len(pending) + len(stranded)

    def _channel(self) -> Any:
        if self._connection is None:
            self._connection = self.app.connection_for_write()
        return self._connection.default_channel

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.release()
            except Exception:
                pass

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.run_once()
            except Exception as error:  # Redis away: the tags stay remembered, try next tick
                logger.debug("Reclaiming stranded tasks failed (%r); trying again", error)
                self._drop_connection()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mailqueue-reclaimer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._drop_connection()


class Redelivery(bootsteps.StartStopStep):
    """Consumer step: installs ``HeldAwareRestore`` on each new task channel and runs the ``Reclaimer``."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.reclaimer: Reclaimer | None = None

    def start(self, parent: Any) -> None:
        channel = getattr(parent.task_consumer, "channel", None)
        qos = getattr(channel, "qos", None)
        if qos is None or not hasattr(qos, "restore_by_tag"):  # not the Redis transport
            return
        if self.reclaimer is None:
            self.reclaimer = Reclaimer(parent.app)
            task_received.connect(self._on_received, sender=parent, weak=False)
            self.reclaimer.start()
        qos.restore_unacked = HeldAwareRestore(qos)
        SettleLater(qos, self.reclaimer).install()

    def _on_received(self, sender: Any = None, request: Any = None, **kwargs: Any) -> None:
        tag = getattr(getattr(request, "message", None), "delivery_tag", None)
        if self.reclaimer is not None and isinstance(tag, str):
            self.reclaimer.remember(tag)

    def shutdown(self, parent: Any) -> None:
        if self.reclaimer is not None:
            self.reclaimer.stop()
