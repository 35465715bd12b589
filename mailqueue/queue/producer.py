"""Publishing delivery tasks by name, through one pooled publisher per broker and process.

An application pays for this inside a web request, so the hot path is kept to one
Redis round trip, an LPUSH of the task message:

- on a Redis broker the publisher writes the task message itself
  (``mailqueue.queue.task_message``: byte for byte what Celery and kombu would write) over
  one redis-py connection pool. Celery's and kombu's publish path (producer pool, channel,
  exchange lookup, a ``Redis`` object built per publish) cost about twice the round
  trip in Python. Other brokers (RabbitMQ) go through kombu;
- the publisher has NO result backend: with a Redis result backend configured, Celery
  subscribes to the task's result channel on every send, an extra round trip. The
  ``Delivery`` handle reads results through a separate app (``mailqueue.queue.delivery``);
- the queue is not declared: a task sent to the default exchange is an LPUSH to the list
  named after the queue (and priority), which needs no binding;
- the task body is not base64-encoded a second time (the payload already is JSON).

It fails fast: one connection attempt bounded by MAILQUEUE_BROKER_CONNECT_TIMEOUT and
no retry (a retried LPUSH whose first reply was lost would enqueue the mail twice), so an
unreachable broker raises BrokerUnavailable within seconds.

The producer never imports ``workers``: the task is sent by name (``DELIVER_TASK``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import kombu.exceptions
from celery import Celery
from celery.utils.nodenames import anon_nodename
from redis import Redis, RedisError
from redis.backoff import NoBackoff
from redis.retry import Retry

from mailqueue.conf import settings
from mailqueue.exceptions import BrokerFull, BrokerUnavailable
from mailqueue.queue import task_message
from mailqueue.queue.broker import broker_url, redacted, shared_celery_config
from mailqueue.queue.envelope import DELIVER_TASK, summarize
from mailqueue.queue.memory import MemoryGauge, MemoryReading, high_water_fraction, read_memory
from mailqueue.queue.priority import DEFAULT_PRIORITY, list_name, step_of
from mailqueue.queue.schedule import scheduled_entry, write_entry
from mailqueue.queue.signing import signature_headers

__all__ = ["Publisher", "close_publishers", "get_publisher"]

FAST_SCHEMES = ("redis", "rediss")  # brokers the publisher writes to directly


@dataclass(frozen=True, slots=True)
class _PublisherKey:
    url: str
    connect_timeout: float
    socket_timeout: float
    pid: int  # a forked child must not share its parent's sockets


class Publisher:
    """Sends delivery tasks to one broker; thread-safe, one per process and broker URL."""

    def __init__(self, url: str, *, connect_timeout: float, socket_timeout: float) -> None:
        self.url = url
        self._origin = anon_nodename()
        self._fraction = high_water_fraction()
        self._redis: Redis | None = None
        self._app: Celery | None = None
        if urlsplit(url).scheme in FAST_SCHEMES:
            self._redis = Redis.from_url(
                url, socket_connect_timeout=connect_timeout, socket_timeout=socket_timeout,
                retry=Retry(NoBackoff(), 0),
                client_name=f"mailqueue-producer-{os.getpid()}",  # so CLIENT LIST shows who publishes
            )
            # A broker that answers but refuses the write (out of memory, read-only replica)
            # has not enqueued anything either.
            self._errors: tuple[type[BaseException], ...] = (RedisError,)
        else:
            self._app = _publishing_app(url, connect_timeout=connect_timeout, socket_timeout=socket_timeout)
            connection = self._app.connection_for_write()  # not connected: only asked for its error types
            self._errors = (kombu.exceptions.OperationalError, *connection.connection_errors,
                            *connection.channel_errors)
        # INFO memory goes over the publishing pool, so a publish still holds one connection.
        self._memory = MemoryGauge() if self._redis is not None and self._fraction < 1 else None

    def publish(self, payloads: Sequence[dict[str, Any]], *, task_id: str, queue: str,
                priority: str = DEFAULT_PRIORITY) -> None:
        """Put one delivery task (a batch of payloads) on ``queue``, or raise BrokerUnavailable.

        This is what ``app.send_task(DELIVER_TASK, args=[payloads], task_id=task_id,
        queue=queue, priority=...)`` puts on the wire, minus its result-backend call and retry
        loop. ``priority`` picks the list the task waits in (``mailqueue.queue.priority``).
        """
        batch = list(payloads)
        headers = signature_headers(task_id, batch)  # MAILQUEUE_SIGNING_KEY; none without a key
        try:
            if self._redis is None:
                self._publish_through_kombu(batch, task_id=task_id, queue=queue, priority=priority, headers=headers)
                return
            message = task_message.encode(batch, task_id=task_id, queue=queue, priority_step=step_of(priority),
                                          origin=self._origin, extra_headers=headers)
            self._refuse_if_full(self._redis)
            self._redis.lpush(list_name(queue, priority), message)
            if self._memory is not None:
                self._memory.account(len(message))
        except BrokerFull:
            raise
        except self._errors as error:
            raise self._unavailable(error) from error

    def _publish_through_kombu(self, batch: list[dict[str, Any]], *, task_id: str, queue: str, priority: str,
                               headers: dict[str, str]) -> None:
        assert self._app is not None
        amqp = self._app.amqp
        message = amqp.create_task_message(
            task_id, DELIVER_TASK, [batch], argsrepr=summarize(batch), kwargsrepr="{}", origin=self._origin,
        )
        with self._app.producer_pool.acquire(block=True) as producer:
            amqp.send_task_message(producer, DELIVER_TASK, message, queue=queue, declare=[], retry=False,
                                   headers=headers, priority=step_of(priority))

    def schedule(self, payloads: Sequence[dict[str, Any]], *, task_id: str, queue: str, priority: str,
                 due: float) -> None:
        """Store one delivery task until ``due`` (epoch seconds), signed; the workers enqueue it then."""
        entry = scheduled_entry(task_id=task_id, payloads=list(payloads), due=due, queue=queue, priority=priority)
        with self.redis() as client:
            write_entry(client, entry)
        if self._memory is not None:
            self._memory.account(_approximate_size(entry["payloads"]))

    @contextmanager
    def redis(self, *, refuse_if_full: bool = True) -> Iterator[Redis]:
        """The publishing pool's Redis client (scheduling, cancelling), errors translated.

        A cancel passes ``refuse_if_full=False``: it frees room, so a nearly full broker takes it."""
        if self._redis is None:
            raise BrokerUnavailable(f"Scheduled sends and cancelling need a Redis broker, not {redacted(self.url)}.")
        try:
            if refuse_if_full:
                self._refuse_if_full(self._redis)
            yield self._redis
        except BrokerFull:
            raise
        except self._errors as error:
            raise self._unavailable(error) from error

    def _unavailable(self, error: BaseException) -> BrokerUnavailable:
        return BrokerUnavailable(
            f"Could not enqueue on the broker at {redacted(self.url)}: {str(error).rstrip('.')}. Check "
            "MAILQUEUE_BROKER_URL and that the broker is running and accepts writes."
        )

    def _refuse_if_full(self, client: Redis) -> None:
        """Raise BrokerFull above the high-water mark (``mailqueue.queue.memory``), before any write."""
        if self._memory is None:
            return

        def read() -> MemoryReading:
            return read_memory(client)

        reading = self._memory.reading(read)
        if reading.near(self._fraction):
            reading = self._memory.reading(read, max_age=0)  # close to the mark: look now, not a second ago
        if reading.above(self._fraction):
            raise BrokerFull(
                f"Not enqueued: the broker at {redacted(self.url)} is nearly full "
                f"({reading.describe(self._fraction)}). The room left is for the workers to drain the "
                "queue; retry later, or raise Redis's maxmemory (MAILQUEUE_BROKER_MAX_MEMORY_FRACTION "
                "sets the mark).",
                used=reading.used, maximum=reading.maximum, limit=int(reading.maximum * self._fraction),
            )

    def close(self) -> None:
        """Close the pooled connections (they reopen on the next publish)."""
        if self._redis is not None:
            self._redis.connection_pool.disconnect()
        if self._app is not None:
            self._app.close()
        if self._memory is not None:
            self._memory.forget()


def _approximate_size(batch: list[dict[str, Any]]) -> int:
    """About what a task takes in Redis: its messages, plus a kilobyte of headers and envelope."""
    return 1024 + sum(len(payload.get("message") or "") for payload in batch if isinstance(payload, dict))


def _publishing_app(url: str, *, connect_timeout: float, socket_timeout: float) -> Celery:
    """A minimal Celery app that only sends tasks by name (brokers other than Redis); it has
    no tasks and no result backend."""
    app = Celery("mailqueue-producer", set_as_current=False, broker=url, backend=None)
    config = shared_celery_config()
    config["broker_transport_options"] = {
        **config["broker_transport_options"],
        "max_retries": 0,  # kombu would otherwise retry the connection in a loop
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": socket_timeout,
    }
    config.update(broker_connection_retry=False, broker_connection_timeout=connect_timeout, result_backend=None)
    app.conf.update(config)
    return app


_publishers: dict[_PublisherKey, Publisher] = {}
_publishers_lock = threading.Lock()


def get_publisher(url: str | None = None) -> Publisher:
    """The process's publisher for ``url`` (default: MAILQUEUE_BROKER_URL), created once."""
    key = _PublisherKey(
        url=url or broker_url(),
        connect_timeout=float(settings.MAILQUEUE_BROKER_CONNECT_TIMEOUT),
        socket_timeout=float(settings.MAILQUEUE_BROKER_SOCKET_TIMEOUT),
        pid=os.getpid(),
    )
    publisher = _publishers.get(key)
    if publisher is None:
        with _publishers_lock:
            publisher = _publishers.get(key)
            if publisher is None:
                publisher = Publisher(key.url, connect_timeout=key.connect_timeout, socket_timeout=key.socket_timeout)
                _publishers[key] = publisher
    return publisher


def close_publishers() -> None:
    """Close and forget every publisher of this process (tests, shutdown)."""
    with _publishers_lock:
        publishers = list(_publishers.values())
        _publishers.clear()
    for publisher in publishers:
        publisher.close()
