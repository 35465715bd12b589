"""A relay's fleet-wide connection limit: leases in a real Redis, held, renewed, lapsed, given back."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from celery import Celery

from mailqueue.conf import override_settings
from mailqueue.exceptions import ImproperlyConfigured
from tests.fixtures.celery import delivered_pairs, make_payload, send_batch
from tests.fixtures.smtp import SMTPTestServer
from workers import connection_slots
from workers.connection_slots import ConnectionSlots, Keeper, Lease
from workers.session import Session


class CountingBackend:
    """Stands in for the SMTP backend of a session: the tests here are about leases, not SMTP."""

    closed = 0

    def send_serialized(self, message: bytes, *, sender: str, recipients: Any) -> list[Any]:
        return []

    def close(self) -> None:
        CountingBackend.closed += 1


def open_session() -> Session:
    session = Session(CountingBackend, max_age=300, max_messages=1000)
    session.backend = CountingBackend()  # as after a first send: a connection is open
    return session


def test_no_more_holders_than_the_limit(redis_client: redis.Redis) -> None:
    slots = ConnectionSlots(redis_client, "bulk", 2)
    assert slots.take("a") and slots.take("b")
    assert not slots.take("c")
    assert slots.held() == 2


def test_a_holder_renews_its_own_slot_and_a_given_back_slot_is_free(redis_client: redis.Redis) -> None:
    slots = ConnectionSlots(redis_client, "bulk", 1)
    assert slots.take("a")
    assert slots.take("a")  # a renewal, not a second slot
    assert not slots.take("b")
    slots.give_back("a")
    assert slots.take("b")


def test_a_lapsed_lease_frees_its_slot(redis_client: redis.Redis) -> None:
    """A process that died holding a slot: its lease lapses, and another takes the slot."""
    slots = ConnectionSlots(redis_client, "bulk", 1, lease_seconds=0.2)
    assert slots.take("dead")
    assert not slots.take("alive")
    time.sleep(0.3)
    assert slots.take("alive")
    assert slots.held() == 1


def test_each_relay_has_its_own_slots(redis_client: redis.Redis) -> None:
    assert ConnectionSlots(redis_client, "bulk", 1).take("a")
    assert ConnectionSlots(redis_client, "transactional", 1).take("b")


def test_many_threads_at_once_never_hold_more_than_the_limit(redis_client: redis.Redis) -> None:
    slots = ConnectionSlots(redis_client, "bulk", 3)
    with ThreadPoolExecutor(max_workers=12) as pool:
        taken = list(pool.map(lambda n: slots.take(f"holder-{n}"), range(40)))
    assert sum(taken) == 3


def test_a_lease_waits_for_a_slot_while_the_round_still_wants_it(redis_client: redis.Redis) -> None:
    slots = ConnectionSlots(redis_client, "bulk", 1)
    assert slots.take("other")
    asked: list[int] = []

    def wanted() -> bool:
        asked.append(1)
        if len(asked) == 3:
            slots.give_back("other")  # the other connection closes meanwhile
        return True

    lease = Lease(open_session())
    assert lease.hold(slots, wanted, sleep=lambda seconds: None)
    assert len(asked) == 3
    assert lease.slots is slots


def test_a_lease_gives_up_once_the_round_no_longer_wants_it(redis_client: redis.Redis) -> None:
    slots = ConnectionSlots(redis_client, "bulk", 1)
    assert slots.take("other")
    lease = Lease(open_session())
    assert not lease.hold(slots, lambda: False, sleep=lambda seconds: None)
    assert slots.held() == 1


def test_a_connection_whose_lease_lapsed_and_was_taken_is_closed(redis_client: redis.Redis) -> None:
    slots = ConnectionSlots(redis_client, "bulk", 1, lease_seconds=0.1)
    lease = Lease(open_session())
    assert lease.hold(slots, None)
    time.sleep(0.2)
    assert slots.take("newcomer")  # the lease lapsed while the connection sat idle
    closed = CountingBackend.closed
    assert not lease.hold(slots, lambda: False, sleep=lambda seconds: None)
    assert CountingBackend.closed == closed + 1 and lease.session.backend is None
    assert lease.slots is None


def test_the_keeper_closes_an_idle_connection_and_gives_its_slot_back(redis_client: redis.Redis) -> None:
    slots = ConnectionSlots(redis_client, "bulk", 1)
    lease = Lease(open_session())
    assert lease.hold(slots, None)
    keeper = Keeper()
    keeper.add(lease)
    with override_settings(MAILQUEUE_CONNECTION_IDLE_TIMEOUT=0.1):
        keeper.tend()
        assert slots.held() == 1  # used just now
        time.sleep(0.15)
        keeper.tend()
    assert slots.held() == 0
    assert lease.session.backend is None


def test_the_keeper_renews_a_lease_in_use_and_leaves_its_connection_open(redis_client: redis.Redis) -> None:
    slots = ConnectionSlots(redis_client, "bulk", 1, lease_seconds=0.3)
    lease = Lease(open_session())
    assert lease.hold(slots, None)
    keeper = Keeper()
    keeper.add(lease)
    with override_settings(MAILQUEUE_CONNECTION_IDLE_TIMEOUT=0.05), lease.in_use:  # sending
        for _ in range(4):
            time.sleep(0.1)
            keeper.tend()
    assert not slots.take("newcomer")  # 0.4 s later: still held, renewed while in use
    assert lease.session.backend is not None


@pytest.mark.parametrize("value", [0, -1, 30, 100, "5", True])
def test_the_idle_timeout_must_be_shorter_than_a_lease(value: Any) -> None:
    with override_settings(MAILQUEUE_CONNECTION_IDLE_TIMEOUT=value), \
            pytest.raises(ImproperlyConfigured, match="MAILQUEUE_CONNECTION_IDLE_TIMEOUT"):
        connection_slots.idle_timeout()


def test_a_limit_must_be_positive(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConnectionSlots(redis_client, "bulk", 0)


# --- a fleet of two workers against one relay ---------------------------------------------


@pytest.mark.timeout(90)
def test_a_fleet_never_holds_more_connections_to_a_relay_than_its_limit(
    worker_process: Any, celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    """Two workers of two pool processes, four connections each allowed per process: sixteen
    without the limit. The server counts what was open at once; every message arrives once."""
    smtp_server.delay_at("data", 0.02)
    fleet = {"concurrency": 2, "MAILQUEUE_CONNECTIONS_PER_PROCESS": 4, "MAILQUEUE_MAX_CONNECTIONS": 2,
             "MAILQUEUE_CONNECTION_IDLE_TIMEOUT": 0.3}
    worker_process(name="first", **fleet)
    worker_process(name="second", **fleet)
    batches = [[make_payload(to=[f"s{b}-{i}@example.com"]) for i in range(16)] for b in range(6)]
    results = [send_batch(celery_app, batch) for batch in batches]
    reports = [result.get(timeout=60) for result in results]

    assert [report["sent"] for report in reports] == [16] * 6
    pairs = delivered_pairs(smtp_server)
    assert set(pairs) == {(p["message_id"], r) for batch in batches for p in batch for r in p["recipients"]}
    assert max(pairs.values()) == 1
    assert 1 <= smtp_server.connections_at_most <= 2
    assert smtp_server.connections >= 2  # slots moved between processes: idle connections were closed


@pytest.mark.faults
@pytest.mark.timeout(120)
def test_a_killed_workers_slots_stay_taken_until_their_leases_lapse_and_nothing_is_lost(
    worker_process: Any, celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    """SIGKILL to a worker holding both slots of a relay: its leases are not given back. The
    next worker must not open a connection until they lapse (LEASE_SECONDS), then delivers
    every message; duplicates stay within the ledger's window."""
    smtp_server.delay_at("data", 0.3)
    fleet = {"concurrency": 1, "MAILQUEUE_CONNECTIONS_PER_PROCESS": 2, "MAILQUEUE_MAX_CONNECTIONS": 2,
             "MAILQUEUE_VISIBILITY_TIMEOUT": 4, "EMAIL_TIMEOUT": 1.5, "MAILQUEUE_RETRY_MIN_DELAY": 1.0,
             "MAILQUEUE_RETRY_MAX_DELAY": 2.0, "MAILQUEUE_MAX_RETRIES": 40}
    batch = [make_payload(to=[f"killed-{i}@example.com"]) for i in range(12)]
    worker = worker_process(name="holder", **fleet)
    result = send_batch(celery_app, batch)
    smtp_server.wait_for_messages(2, timeout=15)
    os.killpg(worker.process.pid, signal.SIGKILL)
    killed_at = time.time()
    worker.process.wait(timeout=10)
    delivered_before = len(smtp_server.messages)

    worker_process(name="heir", **fleet)
    report = result.get(timeout=90)

    later = [m for m in smtp_server.messages[delivered_before:] if m.received_at > killed_at + 0.5]
    assert later, "the heir delivered nothing"
    assert min(m.received_at for m in later) - killed_at >= connection_slots.LEASE_SECONDS - 5
    assert report["sent"] == 12
    pairs = delivered_pairs(smtp_server)
    assert set(pairs) == {(p["message_id"], r) for p in batch for r in p["recipients"]}
    assert sum(count - 1 for count in pairs.values()) <= 2 * 2  # two connections, two each at most
