"""Deferred retries against a real Redis: schedule, atomic claims, crash recovery, the poller."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from workers.deferral import DeferralPoller, Deferrals, DeferredTask

NOW = 1_000_000.0


def entry(task_id: str = "task-1", *, due: float = NOW, attempt: int = 1) -> DeferredTask:
    payloads = [{"v": 1, "message_id": f"<{task_id}@example.com>", "recipients": ["a@example.com"]}]
    return DeferredTask(task_id=task_id, payloads=payloads, attempt=attempt, report={"retries": attempt}, due=due)


@pytest.fixture
def deferrals(redis_client: redis.Redis) -> Deferrals:
    return Deferrals(redis_client)


def test_a_round_is_not_claimed_before_it_is_due(deferrals: Deferrals) -> None:
    deferrals.defer(entry(due=NOW + 10))
    assert deferrals.claim_due(now=NOW) == []
    assert deferrals.count() == 1


def test_a_due_round_is_claimed_whole(deferrals: Deferrals) -> None:
    deferrals.defer(entry(due=NOW))
    assert deferrals.claim_due(now=NOW + 1) == [entry(due=NOW)]
    assert deferrals.claim_due(now=NOW + 1) == []
    assert deferrals.get("task-1") is None


def test_claims_come_in_due_order_up_to_the_limit(deferrals: Deferrals) -> None:
    for number, due in enumerate([NOW + 3, NOW + 1, NOW + 2]):
        deferrals.defer(entry(f"task-{number}", due=due))
    claimed = deferrals.claim_due(now=NOW + 5, limit=2)
    assert [item.task_id for item in claimed] == ["task-1", "task-2"]


def test_a_newer_round_of_the_same_task_replaces_the_older(deferrals: Deferrals) -> None:
    deferrals.defer(entry(due=NOW, attempt=1))
    deferrals.defer(entry(due=NOW + 5, attempt=2))
    assert deferrals.claim_due(now=NOW + 1) == []
    assert [item.attempt for item in deferrals.claim_due(now=NOW + 6)] == [2]


def test_concurrent_pollers_never_claim_the_same_round(redis_client: redis.Redis, redis_url: str) -> None:
    for number in range(200):
        Deferrals(redis_client).defer(entry(f"task-{number}", due=NOW))
    claimed: list[str] = []
    lock = threading.Lock()

    def poll() -> None:
        own = Deferrals(redis.Redis.from_url(redis_url))
        while batch := own.claim_due(now=NOW, limit=7):
            with lock:
                claimed.extend(item.task_id for item in batch)

    threads = [threading.Thread(target=poll) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(f"task-{number}" for number in range(200))


def test_done_forgets_the_claim(deferrals: Deferrals) -> None:
    deferrals.defer(entry())
    deferrals.claim_due(now=NOW)
    deferrals.done("task-1")
    assert deferrals.count() == 0
    assert deferrals.recover(older_than=0, now=NOW + 100) == 0


def test_a_stale_claim_goes_back_on_the_schedule(deferrals: Deferrals) -> None:
    deferrals.defer(entry())
    deferrals.claim_due(now=NOW)  # the poller that took it dies before re-enqueueing
    assert deferrals.recover(older_than=30, now=NOW + 31) == 1
    assert deferrals.claim_due(now=NOW + 31) == [entry()]


def test_a_fresh_claim_is_not_recovered(deferrals: Deferrals) -> None:
    deferrals.defer(entry())
    deferrals.claim_due(now=NOW)
    assert deferrals.recover(older_than=30, now=NOW + 10) == 0
    assert deferrals.claim_due(now=NOW + 10) == []
    assert deferrals.count() == 1


def test_recovery_keeps_a_newer_round_of_the_same_task(deferrals: Deferrals) -> None:
    deferrals.defer(entry(attempt=1))
    deferrals.claim_due(now=NOW)
    deferrals.defer(entry(due=NOW + 50, attempt=2))
    deferrals.recover(older_than=30, now=NOW + 31)
    assert deferrals.claim_due(now=NOW + 31) == []
    assert [item.attempt for item in deferrals.claim_due(now=NOW + 50)] == [2]


def test_cancel_forgets_scheduled_and_claimed_rounds(deferrals: Deferrals) -> None:
    deferrals.defer(entry("task-1"))
    deferrals.defer(entry("task-2"))
    deferrals.claim_due(now=NOW, limit=1)
    deferrals.cancel("task-1")
    deferrals.cancel("task-2")
    assert deferrals.count() == 0


def test_poller_enqueues_due_rounds_and_clears_their_claims(deferrals: Deferrals) -> None:
    deferrals.defer(entry("due", due=NOW))
    deferrals.defer(entry("later", due=NOW + 60))
    enqueued: list[DeferredTask] = []
    poller = DeferralPoller(deferrals, enqueued.append, interval=0.1)

    assert poller.run_once(now=NOW) == 1
    assert [item.task_id for item in enqueued] == ["due"]
    assert deferrals.count() == 1


def test_a_failed_enqueue_leaves_the_claim_for_recovery(deferrals: Deferrals) -> None:
    deferrals.defer(entry(due=NOW))
    attempts: list[str] = []

    def broker_down(item: DeferredTask) -> None:
        attempts.append(item.task_id)
        raise ConnectionError("broker unreachable")

    poller = DeferralPoller(deferrals, broker_down, interval=0.1, claim_timeout=30)
    assert poller.run_once(now=NOW) == 0
    assert deferrals.count() == 1  # still claimed, not lost
    enqueued: list[DeferredTask] = []
    poller.enqueue = enqueued.append
    assert poller.run_once(now=NOW + 31) == 1
    assert attempts == ["task-1"] and [item.task_id for item in enqueued] == ["task-1"]


def test_poller_thread_polls_until_stopped(deferrals: Deferrals) -> None:
    poller = DeferralPoller(deferrals, lambda item: None, interval=0.05)
    poller.start()
    try:
        deferrals.defer(entry(due=time.time()))
        deadline = time.monotonic() + 5
        while deferrals.count() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert deferrals.count() == 0 and poller.running
    finally:
        poller.stop()
    assert not poller.running


def test_poll_interval_must_be_positive(deferrals: Deferrals) -> None:
    with pytest.raises(ValueError, match="interval"):
        DeferralPoller(deferrals, lambda item: None, interval=0)
