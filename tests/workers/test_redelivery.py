"""The Reclaimer: a task this worker no longer holds, left in the unacked hash, goes back at once."""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery
from kombu import Queue

from mailqueue.conf import settings
from mailqueue.queue import keys
from tests.fixtures.celery import make_payload, send_batch
from workers.redelivery import REQUEUE, Reclaimer


def deliver_one(app: Celery) -> tuple[Any, str]:
    """Publish one message and take it as a worker would (unacknowledged): its connection and tag."""
    send_batch(app, [make_payload()])
    connection = app.connection_for_write()
    queue = Queue(settings.MAILQUEUE_QUEUE, channel=connection.default_channel)
    message = queue.get(no_ack=False)
    assert message is not None
    return connection, message.delivery_tag


def test_a_stranded_task_is_handed_back_once_no_longer_held(celery_app: Celery, redis_client: redis.Redis) -> None:
    connection, tag = deliver_one(celery_app)
    held = {tag}
    reclaimer = Reclaimer(celery_app, held=lambda: held)
    reclaimer.remember(tag)

    assert reclaimer.run_once() == 0  # still held: left alone
    held.clear()
    assert reclaimer.run_once() == 0  # the grace: an ack may be on its way
    assert reclaimer.run_once() == 1

    assert redis_client.hlen(keys.unacked_key()) == 0
    assert redis_client.llen(settings.MAILQUEUE_QUEUE) == 1
    connection.release()
    reclaimer.stop()


def test_a_lost_hand_back_is_made_and_a_lost_ack_settled(celery_app: Celery, redis_client: redis.Redis) -> None:
    connection, requeued = deliver_one(celery_app)
    _, acked = deliver_one(celery_app)
    reclaimer = Reclaimer(celery_app, held=set)
    reclaimer.settle(requeued, REQUEUE)
    reclaimer.settle(acked, "acknowledge")

    assert reclaimer.run_once() == 2

    assert redis_client.hlen(keys.unacked_key()) == 0
    assert redis_client.llen(settings.MAILQUEUE_QUEUE) == 1  # the hand-back only
    connection.release()
    reclaimer.stop()
