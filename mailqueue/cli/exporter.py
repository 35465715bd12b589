"""The Prometheus collector behind ``mailqueue metrics``: the broker's Redis, read at scrape time.

Nothing is cached and nothing runs between scrapes: each scrape reads the workers' running
totals and the queue's state once, so every exporter of a fleet shows the same numbers, and
a restart of the exporter loses nothing. A broker that cannot be read is reported as
``mailqueue_broker_up 0`` (and nothing else), never as an error page: that is what an alert
rule can see.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from mailqueue.cli import brokerstate
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.queue import keys, measures

logger = logging.getLogger(__name__)

# Running totals the workers keep in the stats hash -> (metric name, help).
COUNTERS = {
    "sent": ("mailqueue_delivered", "Messages delivered: every recipient settled, at least one accepted."),
    "failed": ("mailqueue_failed", "Messages that failed for good (each is dead-lettered)."),
    "dead_lettered": ("mailqueue_dead_lettered", "Dead letters written (failed messages and unreadable payloads)."),
    "retries": ("mailqueue_retries", "Delivery rounds deferred for a retry."),
    "deferred": ("mailqueue_deferred", "Messages parked for a retry (counted at each deferral)."),
    "moved_aside": ("mailqueue_moved_aside", "Unreadable entries moved off the queue by a worker."),
}


def oldest_enqueued_at(client: redis.Redis, queue: str) -> float | None:
    """When the oldest message waiting in ``queue`` was enqueued (epoch seconds), or None.

    kombu pushes on the left and pops on the right, so the oldest task of each priority list is
    its last element. What is read there is untrusted: anything unreadable is skipped.
    """
    times = []
    for name in brokerstate.queue_lists(queue):
        raw = brokerstate.reply(client.lindex(name, -1))
        if raw is not None:
            times += _enqueue_times(raw)
    return min(times) if times else None


def _enqueue_times(raw: bytes) -> list[float]:
    try:
        message = json.loads(raw)
        body: Any = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        payloads = json.loads(body)[0][0]
        return [float(payload["enqueued_at"]) for payload in payloads
                if isinstance(payload, dict) and isinstance(payload.get("enqueued_at"), (int, float))]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return []


class BrokerCollector(Collector):
    """Reads the fleet's counters and the queue's gauges from the broker's Redis on each scrape."""

    def __init__(self, client: redis.Redis, queues: Sequence[str]) -> None:
        self.client = client
        self.queues = list(dict.fromkeys(queues))

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("mailqueue_broker_up", "1 if the broker's Redis answered this scrape, else 0.")
        try:
            metrics = list(self._read())
        except (redis.RedisError, OSError) as error:
            logger.warning("Cannot read the broker's Redis: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def _read(self) -> Iterator[Metric]:
        totals = brokerstate.totals(self.client)
        for field, (name, documentation) in COUNTERS.items():
            yield CounterMetricFamily(name, documentation, value=totals.get(field, 0))
        replies = CounterMetricFamily("mailqueue_smtp_replies", "SMTP replies to recipients by class "
                                      "(none: no reply, e.g. the connection failed).", labels=["class"])
        for reply_class in measures.REPLY_CLASSES:
            replies.add_metric([reply_class], totals.get(measures.REPLY_FIELD_PREFIX + reply_class, 0))
        yield replies
        yield self._latency()
        yield from self._gauges()

    def _latency(self) -> HistogramMetricFamily:
        raw = brokerstate.reply(self.client.hgetall(keys.latency_key()))
        fields = {name.decode(): value.decode() for name, value in raw.items()}
        counts = {name: int(value) for name, value in fields.items() if value.lstrip("-").isdigit()}
        try:
            total = float(fields.get(measures.SUM_FIELD, 0))
        except ValueError:  # not the workers' writing; the buckets still say what they can
            total = float("nan")
        return HistogramMetricFamily(
            "mailqueue_delivery_latency_seconds",
            "Seconds from enqueue to the SMTP server's acceptance, one observation per accepted recipient.",
            buckets=measures.cumulative_buckets(counts), sum_value=total,
        )

    def _gauges(self) -> Iterator[Metric]:
        from workers.deadletters import DeadLetters
        from workers.quarantine import Quarantine

        depth = GaugeMetricFamily("mailqueue_queue_depth", "Tasks waiting for a worker.", labels=["queue"])
        age = GaugeMetricFamily("mailqueue_queue_oldest_age_seconds",
                                "Age of the oldest message waiting in the queue (0: empty).", labels=["queue"])
        now = time.time()
        for queue in self.queues:
            depth.add_metric([queue], brokerstate.queue_depth(self.client, queue))
            oldest = oldest_enqueued_at(self.client, queue)
            age.add_metric([queue], 0.0 if oldest is None else max(0.0, now - oldest))
        yield depth
        yield age
        yield GaugeMetricFamily("mailqueue_in_flight", "Tasks taken by a worker and not yet acknowledged.",
                                value=brokerstate.in_flight(self.client))
        deferred = brokerstate.deferred(self.client)
        yield GaugeMetricFamily("mailqueue_deferred_tasks", "Delivery rounds waiting for their retry.",
                                value=deferred.tasks)
        yield GaugeMetricFamily("mailqueue_deferred_messages", "Messages in the rounds waiting for a retry.",
                                value=deferred.messages)
        yield GaugeMetricFamily("mailqueue_dead_letters", "Dead letters stored (see 'mailqueue dead list').",
                                value=DeadLetters(self.client).count())
        yield GaugeMetricFamily("mailqueue_quarantined", "Tasks refused as unsigned or forged, held for review.",
                                value=Quarantine(self.client).count())
        held = GaugeMetricFamily("mailqueue_relay_connections", "SMTP connections open to a relay with a "
                                 "fleet-wide limit (each holds a lease).", labels=["relay"])
        limit = GaugeMetricFamily("mailqueue_relay_connections_limit", "A relay's fleet-wide connection limit.",
                                  labels=["relay"])
        try:
            relays = brokerstate.connections(self.client)
        except ImproperlyConfigured as error:  # the other series still answer
            logger.warning("Cannot read the relays' connection limits: %s", error)
            return
        for relay, figures in relays.items():
            held.add_metric([relay], figures["open"])
            limit.add_metric([relay], figures["limit"])
        yield held
        yield limit
