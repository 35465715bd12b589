"""kombu's Redis transport for the workers: whatever is on the queue list, the worker lives.

kombu's channel pops an entry (BRPOP), decodes it as JSON, builds a message, records it as
unacknowledged (ZADD + HSET), then hands it to Celery. Two things end the worker's main
process there, and lose the entry, since it is already off the list:

- **Garbage.** Bytes that are not a JSON kombu message raise out of the read. Here they are
  moved aside (``workers.garbage``) and the worker reads on. So is a task whose reading raises
  in Celery (an ``id`` missing from its headers, say).
- **A full Redis.** With ``maxmemory`` and ``noeviction``, BRPOP still succeeds (it frees memory)
  but recording the task in flight is refused (OOM). So the channel stops taking tasks above the
  workers' high-water mark (``mailqueue.queue.memory``), and takes again once memory is back
  below it. A task popped and then refused anyway (a race with the fleet's other writes) is held
  in this process and recorded, then delivered, as soon as Redis accepts it; a channel that
  closes meanwhile gives it to the next one, or back to the head of its queue.

What is held lives in this process only: killed with SIGKILL while Redis is full, the process
loses it. The mark makes that window small: the pop frees what recording takes back.
"""

from __future__ import annotations

import functools
import logging
import socket
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from mailqueue.queue.memory import MemoryGauge, MemoryReading, high_water_fraction, read_memory, worker_fraction
from mailqueue.queue.priority import taken_steps
from workers import garbage
from workers.store import redis_client

logger = logging.getLogger(__name__)

RETRY_HELD_EVERY_SECONDS = 0.5


class Unreadable(Exception):
    """An entry off the queue list that is no kombu message, or a task Celery cannot read."""

    def __init__(self, reason: str, *, task_id: str = "") -> None:
        super().__init__(reason)
        self.task_id = task_id


class NotRecorded(Exception):
    """Redis refused to record a popped task as in flight (out of memory, read-only)."""


@dataclass(frozen=True, slots=True)
class Held:
    """An entry off the list that is not yet where it belongs: recorded in flight, or moved aside."""

    queue: str
    raw: bytes
    payload: dict[str, Any] | None  # None: garbage still to move aside
    reason: str = ""


# Per process, not per channel: a reconnect closes the channel, and its successor takes over.
_held: deque[Held] = deque()


class QoS(kombu_redis.QoS):
    """kombu's Redis QoS, whose sweep for a dead worker's tasks waits out a full Redis."""

    _refused_sweep = False

    def restore_visible(self, *args: Any, **kwargs: Any) -> Any:
        # The sweep takes a lock (SET NX), which a full Redis refuses: at start-up that ended the worker.
        try:
            result = super().restore_visible(*args, **kwargs)
        except redis.ResponseError as error:
            if not self._refused_sweep:
                logger.warning("Redis refused the sweep for a dead worker's tasks (%r); it runs again once "
                               "Redis accepts writes.", error)
            self._refused_sweep = True
            return None
        self._refused_sweep = False
        return result


class Channel(kombu_redis.Channel):
    """kombu's Redis channel, reading the queue list as untrusted (see the module's docstring)."""

    QoS = QoS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fraction = high_water_fraction()
        self._take_below = worker_fraction(fraction)
        self._memory = MemoryGauge(self._read_memory) if fraction < 1 else None
        self._paused = False
        self._held_tried_at = 0.0
        self._taken_steps = taken_steps()  # MAILQUEUE_WORKER_PRIORITIES: the lists it pops, high first

    def _read_memory(self) -> MemoryReading:
        with self.conn_or_acquire() as client:
            return read_memory(client)

    def _size(self, queue: str) -> int:
        # kombu counts in a MULTI, and a Redis over maxmemory refuses anything queued in a MULTI:
        # declaring the queue at start-up then ended the worker. LLEN alone is always allowed.
        with self.conn_or_acquire() as client:
            with client.pipeline(transaction=False) as pipe:
                for priority in self.priority_steps:
                    pipe.llen(self._q_for_pri(queue, priority))
                return sum(size for size in pipe.execute() if isinstance(size, int))

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        # Declaring writes the binding (SADD), which a full Redis refuses even when it is there
        # already. Producers publish to the queue by name, which needs no binding: wait it out.
        try:
            super()._queue_bind(exchange, routing_key, pattern, queue)
        except redis.ResponseError as error:
            logger.warning("Redis refused to record the binding of queue %r (%r); tasks sent to it by name "
                           "are taken all the same.", queue, error)

    # --- taking: only when there is room, and after what is held --------------------------------

    def _brpop_start(self, timeout: Any = None) -> None:
        if _held and not self._settle_held():
            return  # Redis still refuses what this process holds: take nothing new
        if self._memory_full():
            return  # the event loop ticks at least every second: we look again then
        self._brpop_start_in_order(timeout)

    def _brpop_start_in_order(self, timeout: Any) -> None:
        """kombu's _brpop_start, naming the lists high, normal, low (``mailqueue.queue.priority``),
        and only those of this worker's priorities; kombu names them by step, 0 (normal) first.

        Only the BRPOP changes: ``priority_steps`` stays kombu's, so what this worker puts back
        (a restore, a retry it sends) still lands in the list of its own priority.
        """
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        keys = [self._q_for_pri(queue, step) for step in self._taken_steps for queue in queues]
        self._in_poll = self.client.connection
        self._brpop_sent_at = time.monotonic()  # type: ignore[assignment]  # kombu declares it None
        command = ["BRPOP", *keys, (self.brpop_timeout if timeout is None else timeout) or 0]
        if self.global_keyprefix:
            command = self.client._prefix_args(command)
        self.client.connection.send_command(*command)

    def _memory_full(self) -> bool:
        if self._memory is None:
            return False
        reading = self._memory.reading()
        full = reading.above(self._take_below)
        if full and not self._paused:
            logger.warning("The broker's Redis is nearly full (%s): this worker takes no task until it is "
                           "below the mark again; nothing is lost meanwhile.", reading.describe(self._take_below))
        elif self._paused and not full:
            logger.warning("The broker's Redis has room again: this worker takes tasks again.")
        self._paused = full
        return full

    def _settle_held(self) -> bool:
        """Deliver or move aside what is held, oldest first; False while Redis still refuses."""
        now = time.monotonic()
        if now - self._held_tried_at < RETRY_HELD_EVERY_SECONDS:
            return False
        self._held_tried_at = now
        while _held:
            held = _held[0]
            if held.payload is not None and held.queue not in self.connection._callbacks:
                return True  # a queue this channel does not consume: not ours to settle
            _held.popleft()
            if held.payload is None:
                settled = self._move_aside(held.raw, held.queue, held.reason, hold=False)
            else:
                settled = self._deliver_entry(held.queue, held.raw, held.payload)
            if not settled:
                _held.appendleft(held)
                return False
        return True

    # --- reading: kombu's _brpop_read, with the entry checked before it is trusted ----------------

    def _brpop_read(self, **options: Any) -> bool:
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()  # as kombu does: the next poll reconnects
                raise
            if not dest__item:
                raise kombu_redis.Empty()
            dest, item = dest__item
            queue = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(queue)
            self._receive_entry(queue, item)
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]  # kombu declares it bool, sets None
            flush = getattr(self, "_flush_brpop_reauth", None)  # kombu >= 5.6
            if flush is not None:
                flush()

    def _receive_entry(self, queue: str, item: bytes) -> None:
        try:
            payload = loads(bytes_to_str(item))
        except (ValueError, TypeError) as error:  # JSONDecodeError, UnicodeDecodeError
            self._move_aside(item, queue, f"not JSON ({garbage.describe(error)})")
            return
        if not isinstance(payload, dict):
            self._move_aside(item, queue, f"not a kombu message (JSON {type(payload).__name__})")
            return
        if not self._deliver_entry(queue, item, payload):
            logger.warning("Redis refused to record a task as in flight; this worker holds it and delivers "
                           "it once Redis accepts the write (%d held).", len(_held) + 1)
            _held.append(Held(queue=queue, raw=item, payload=payload))

    def _deliver_entry(self, queue: str, raw: bytes, payload: dict[str, Any]) -> bool:
        """Hand an entry to its consumer; False if Redis refused to record it in flight."""
        try:
            self.connection._deliver(payload, queue)
        except Unreadable as error:
            self._move_aside(raw, queue, str(error), task_id=error.task_id)
        except NotRecorded:
            return False
        return True

    def basic_consume(self, queue: str, no_ack: bool, callback: Any, consumer_tag: str, **kwargs: Any) -> Any:
        result = super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)
        self.connection._callbacks[queue] = functools.partial(self._on_entry, no_ack, callback)
        return result

    def _on_entry(self, no_ack: bool, callback: Any, payload: dict[str, Any]) -> Any:
        """kombu's consume callback (build, record in flight, hand over), raising what we handle."""
        try:
            message = self.Message(payload, channel=self)
            delivery = message.delivery_info
            delivery["exchange"], delivery["routing_key"]  # noqa: B018 - what recording needs
        except Exception as error:
            raise Unreadable(f"not a kombu message ({garbage.describe(error)})") from None
        problem = task_body_problem(message)
        if problem:  # Celery would fail on it inside the pool, after acknowledging it: keep it here
            raise Unreadable(f"unreadable task ({problem})", task_id=garbage.header(message, "id"))
        if not no_ack:
            try:
                self.qos.append(message, message.delivery_tag)
            except redis.ResponseError as error:  # OOM, READONLY: nothing was written (MULTI)
                raise NotRecorded(garbage.describe(error)) from None
        try:
            return callback(message)
        except self._broker_errors():
            raise
        except Exception as error:  # Celery could not read it as a task
            if no_ack or message.acknowledged:
                logger.exception("A consumer failed on a message it already settled")
                return None
            task_id = garbage.header(message, "id")
            message.ack()  # out of the in-flight hash: it is kept in the quarantine instead
            raise Unreadable(f"unreadable task ({garbage.describe(error)})", task_id=task_id) from None

    def _broker_errors(self) -> tuple[type[BaseException], ...]:
        """What the consumer recovers from by reconnecting; KeyError is in kombu's list, not in ours."""
        errors = (*self.connection.connection_errors, *self.connection.channel_errors)
        return (redis.RedisError, *(error for error in errors if error is not KeyError))

    # --- moving aside, and closing with something held ------------------------------------------

    def _move_aside(self, raw: bytes, queue: str, reason: str, *, task_id: str = "", hold: bool = True) -> bool:
        """Keep ``raw`` in the quarantine; if Redis refuses, hold it (``hold``) and return False."""
        try:
            garbage.move_aside(redis_client(), raw, reason=reason, queue=queue, task_id=task_id,
                               hostname=socket.gethostname())
        except redis.RedisError as error:
            if hold:
                logger.warning("Could not move aside an entry of queue %r (%s) now (%r); this worker keeps it "
                               "and tries again.", queue, reason, error)
                _held.append(Held(queue=queue, raw=raw, payload=None, reason=reason))
            return False
        return True

    def close(self) -> None:
        if _held and not self.closed:
            self._hand_back_held()
        super().close()

    def _hand_back_held(self) -> None:
        """Closing: what is held goes back to the head of its queue, where any worker takes it first."""
        try:
            with self.conn_or_acquire() as client:
                while _held:
                    held = _held[0]
                    if held.payload is not None:  # to the list of its own priority
                        target = self._q_for_pri(held.queue, self._get_message_priority(held.payload))
                        client.rpush(target, dumps(held.payload))
                    else:
                        garbage.move_aside(redis_client(), held.raw, reason=held.reason, queue=held.queue)
                    _held.popleft()
        except Exception as error:  # noqa: BLE001 - the next channel of this process settles them
            logger.error("%d entries this worker holds could not be handed back now (%r); the next "
                         "connection settles them. As they were: %s", len(_held), error,
                         [bytes_to_str(held.raw)[:500] for held in _held])


def task_body_problem(message: Any) -> str | None:
    """What is wrong with a JSON task message's body, or None (also for what Celery refuses itself).

    Celery's protocol 2 body is ``[args, kwargs, embed]``; Celery unpacks it only in the pool
    process, where a wrong shape fails after the message was acknowledged. The decoded body is
    cached on the message, and Celery decodes it here anyway, so the check costs no second decode.
    """
    headers = message.headers or {}
    if "task" not in headers or message.content_type != "application/json":
        return None  # not a protocol 2 task, or content Celery refuses (and RefusedMessages keeps)
    try:
        body = message.payload
    except Exception:  # noqa: BLE001 - Celery's own decode error handling (RefusedMessages) applies
        return None
    if not isinstance(body, list | tuple) or len(body) != 3:
        return f"the body is not [args, kwargs, embed] but {type(body).__name__}"
    args, kwargs, embed = body
    if not isinstance(args, list | tuple | dict | str):  # iterable: deliver() reads the odd ones itself
        return f"the task's args are {type(args).__name__}, not a list"
    if not isinstance(kwargs, dict):
        return f"the task's kwargs are {type(kwargs).__name__}, not a mapping"
    if embed is not None and not isinstance(embed, dict):
        return f"the task's embed is {type(embed).__name__}, not a mapping"
    return None


class Transport(kombu_redis.Transport):
    Channel = Channel


def held_count() -> int:
    """How many popped entries this process holds (for logs and tests)."""
    return len(_held)
