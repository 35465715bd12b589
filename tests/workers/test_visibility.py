"""The visibility keeper: a round longer than the visibility timeout never runs in two workers."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from celery import Celery

from mailqueue.queue import keys
from tests.fixtures.celery import delivered_pairs, make_payload, send_batch
from tests.fixtures.smtp import SMTPTestServer
from workers.visibility import VisibilityKeeper, refresh_interval


def test_refresh_moves_held_tasks_to_now_and_never_brings_back_an_acknowledged_one(
    redis_client: redis.Redis,
) -> None:
    redis_client.zadd("index", {"held": 1.0})
    keeper = VisibilityKeeper(redis_client, index_key="index", visibility_timeout=4,
                              tags=lambda: ["held", "acked-meanwhile"])

    assert keeper.refresh() == 1
    assert float(redis_client.zscore("index", "held") or 0) > time.time() - 5
    assert redis_client.zscore("index", "acked-meanwhile") is None


def test_refresh_interval_leaves_room_for_missed_refreshes() -> None:
    assert refresh_interval(300) == 30.0
    assert refresh_interval(4) == 1.0
    assert refresh_interval(0.1) == 0.2


@pytest.mark.faults
@pytest.mark.timeout(90)
def test_a_round_slower_than_the_visibility_timeout_runs_once(
    worker_process: Any, celery_app: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    """Every RCPT answered within EMAIL_TIMEOUT, the message as a whole 3x the visibility timeout.

    Without the keeper, the sweep hands the task to the second worker after 2 s, and every
    recipient gets the message twice.
    """
    smtp_server.delay_at("rcpt", 0.5)
    recipients = [f"slow{i}@example.com" for i in range(8)]  # about 4 s of RCPTs
    fleet = {"concurrency": 1, "MAILQUEUE_VISIBILITY_TIMEOUT": 2, "EMAIL_TIMEOUT": 1.0}
    worker_process(name="first", **fleet)
    payload = make_payload(to=recipients)
    result = send_batch(celery_app, [payload])
    worker_process(name="second", **fleet)  # idle, free to take the task if the sweep hands it out

    report = result.get(timeout=60)
    time.sleep(4.5)  # a second run, had one started, has finished by now

    assert report["sent"] == 1
    pairs = delivered_pairs(smtp_server)
    assert set(pairs) == {(payload["message_id"], r) for r in recipients}
    assert set(pairs.values()) == {1}, "a recipient got the message twice"
    assert redis_client.zcard(keys.unacked_index_key()) == 0
