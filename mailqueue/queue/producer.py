"""Publishing delivery tasks by name, through one pooled publisher per broker and process.

An application pays for this inside a web request, so the hot path is kept to one
Redis round trip (an LPUSH):

- the publishing Celery app has NO result backend: with a Redis result backend configured,
  Celery subscribes to the task's result channel on every send, an extra round trip. The
  ``Delivery`` handle reads results through a separate app (``mailqueue.queue.delivery``);
- kombu's producer pool reuses connections and producers across calls and threads;
- kombu's Redis channel builds a new ``redis.Redis`` client object for every publish,
  which costs about as much as the round trip itself; our channel keeps one, and one
  connection pool instead of two (a pooled producer holds one Redis connection);
- the queue is not re-declared on every publish: a task sent to the default exchange is
  an LPUSH to the list named after the queue, which needs no binding;
- the task body is not base64-encoded a second time (the payload already is JSON).

It fails fast: one connection attempt bounded by MAILQUEUE_BROKER_CONNECT_TIMEOUT and
no kombu retry loop, so an unreachable broker raises BrokerUnavailable within seconds.

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
from kombu.transport import redis as kombu_redis

from mailqueue.conf import settings
from mailqueue.exceptions import BrokerFull, BrokerUnavailable
from mailqueue.queue.broker import broker_url, redacted, shared_celery_config
from mailqueue.queue.envelope import DELIVER_TASK, summarize
from mailqueue.queue.memory import MemoryGauge, MemoryReading, high_water_fraction, read_memory
from mailqueue.queue.priority import DEFAULT_PRIORITY, step_of
from mailqueue.queue.schedule import scheduled_entry, write_entry
from mailqueue.queue.signing import signature_headers

__all__ = ["Publisher", "close_publishers", "get_publisher"]

FAST_SCHEMES = ("redis", "rediss")  # schemes served by kombu's plain Redis transport


class _ReusingClientChannel(kombu_redis.Channel):
    """A publishing Redis channel: one client object and one connection pool.

    It never consumes, so it needs no second ("asynchronous", BRPOP) pool: that would
    only hold a connection open for the PING kombu sends when the channel is created.
    """

    _publish_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        client = self._publish_client
        if client is None or client.connection_pool is not self.pool:
            client = self._publish_client = super()._create_client()
        return client


class _PublishingRedisTransport(kombu_redis.Transport):
    Channel = _ReusingClientChannel


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
        self.app = _publishing_app(url, connect_timeout=connect_timeout, socket_timeout=socket_timeout)
        self._origin = anon_nodename()
        connection = self.app.connection_for_write()  # not connected: only asked for its error types
        # Channel errors too: a broker that answers but refuses the write (out of memory, read-only
        # replica) has not enqueued anything either.
        self._errors = (kombu.exceptions.OperationalError, *connection.connection_errors, *connection.channel_errors)
        self._fraction = high_water_fraction()
        # INFO memory goes over the pooled publishing connection, so a publish still holds only one.
        fast = urlsplit(url).scheme in FAST_SCHEMES and self._fraction < 1
        self._memory = MemoryGauge() if fast else None

    def publish(self, payloads: Sequence[dict[str, Any]], *, task_id: str, queue: str,
                priority: str = DEFAULT_PRIORITY) -> None:
        """Put one delivery task (a batch of payloads) on ``queue``, or raise BrokerUnavailable.

        This is what ``app.send_task(DELIVER_TASK, args=[payloads], task_id=task_id,
        queue=queue, priority=...)`` puts on the wire, minus its result-backend call and retry
        loop. ``priority`` picks the list the task waits in (``mailqueue.queue.priority``).
        """
        amqp = self.app.amqp
        batch = list(payloads)
        message = amqp.create_task_message(
            task_id, DELIVER_TASK, [batch], argsrepr=summarize(batch), kwargsrepr="{}", origin=self._origin,
        )
        headers = signature_headers(task_id, batch)  # MAILQUEUE_SIGNING_KEY; none without a key
        try:
            with self.app.producer_pool.acquire(block=True) as producer:
                self._refuse_if_full(producer)
                amqp.send_task_message(producer, DELIVER_TASK, message, queue=queue, declare=[], retry=False,
                                       headers=headers, priority=step_of(priority))
            if self._memory is not None:
                self._memory.account(_approximate_size(batch))
        except BrokerFull:
            raise
        except self._errors as error:
            raise self._unavailable(error) from error

    def schedule(self, payloads: Sequence[dict[str, Any]], *, task_id: str, queue: str, priority: str,
                 due: float) -> None:
        """Store one delivery task until ``due`` (epoch seconds), signed; the workers enqueue it then."""
        entry = scheduled_entry(task_id=task_id, payloads=list(payloads), due=due, queue=queue, priority=priority)
        with self.redis() as client:
            write_entry(client, entry)
        if self._memory is not None:
            self._memory.account(_approximate_size(entry["payloads"]))

    @contextmanager
    def redis(self, *, refuse_if_full: bool = True) -> Iterator[Any]:
        """The pooled publishing connection's Redis client (scheduling, cancelling), errors translated.

        A cancel passes ``refuse_if_full=False``: it frees room, so a nearly full broker takes it."""
        if urlsplit(self.url).scheme not in FAST_SCHEMES:
            raise BrokerUnavailable(f"Scheduled sends and cancelling need a Redis broker, not {redacted(self.url)}.")
        try:
            with self.app.producer_pool.acquire(block=True) as producer:
                if refuse_if_full:
                    self._refuse_if_full(producer)
                yield producer.channel.client
        except BrokerFull:
            raise
        except self._errors as error:
            raise self._unavailable(error) from error

    def _unavailable(self, error: BaseException) -> BrokerUnavailable:
        return BrokerUnavailable(
            f"Could not enqueue on the broker at {redacted(self.url)}: {str(error).rstrip('.')}. Check "
            "MAILQUEUE_BROKER_URL and that the broker is running and accepts writes."
        )

    def _refuse_if_full(self, producer: Any) -> None:
        """Raise BrokerFull above the high-water mark (``mailqueue.queue.memory``), before any write."""
        if self._memory is None:
            return

        def read() -> MemoryReading:
            return read_memory(producer.channel.client)

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
        self.app.close()
        if self._memory is not None:
            self._memory.forget()


def _approximate_size(batch: list[dict[str, Any]]) -> int:
    """About what a task takes in Redis: its messages, plus a kilobyte of headers and envelope."""
    return 1024 + sum(len(payload.get("message") or "") for payload in batch if isinstance(payload, dict))


def _publishing_app(url: str, *, connect_timeout: float, socket_timeout: float) -> Celery:
    """A minimal Celery app that only sends tasks by name; it has no tasks and no result backend."""
    app = Celery("mailqueue-producer", set_as_current=False, broker=url, backend=None)
    config = shared_celery_config()
    config["broker_transport_options"] = {
        **config["broker_transport_options"],
        "max_retries": 0,  # kombu would otherwise retry the connection in a loop
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": socket_timeout,
        "body_encoding": "utf-8",  # the JSON body travels as is, not base64'd again
        "client_name": f"mailqueue-producer-{os.getpid()}",  # so CLIENT LIST shows who publishes
    }
    if urlsplit(url).scheme in FAST_SCHEMES:
        config["broker_transport"] = _PublishingRedisTransport
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
