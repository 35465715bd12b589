"""The delivery ledger against a real Redis."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from mailqueue.conf import override_settings
from workers.ledger import GroupCommit, Ledger

MESSAGE_ID = "<1.2.3@example.com>"


def test_records_and_returns_accepted_recipients(redis_client: redis.Redis) -> None:
    ledger = Ledger(redis_client, ttl=60)
    ledger.record(MESSAGE_ID, ["a@example.com", "b@example.com"])
    ledger.record(MESSAGE_ID, ["c@example.com"])
    assert ledger.accepted(MESSAGE_ID) == {"a@example.com", "b@example.com", "c@example.com"}


def test_unknown_message_has_no_accepted_recipients(redis_client: redis.Redis) -> None:
    assert Ledger(redis_client, ttl=60).accepted("<unknown@example.com>") == set()


def test_messages_are_kept_apart(redis_client: redis.Redis) -> None:
    ledger = Ledger(redis_client, ttl=60)
    ledger.record(MESSAGE_ID, ["a@example.com"])
    assert ledger.accepted("<other@example.com>") == set()


def test_entries_expire_after_the_ttl(redis_client: redis.Redis) -> None:
    Ledger(redis_client, ttl=120).record(MESSAGE_ID, ["a@example.com"])
    assert 110 < redis_client.ttl(f"mailqueue:ledger:{MESSAGE_ID}") <= 120


def test_recording_nothing_writes_nothing(redis_client: redis.Redis) -> None:
    Ledger(redis_client, ttl=60).record(MESSAGE_ID, [])
    assert redis_client.keys("*") == []


def test_forget_drops_the_message(redis_client: redis.Redis) -> None:
    ledger = Ledger(redis_client, ttl=60)
    ledger.record(MESSAGE_ID, ["a@example.com"])
    ledger.forget(MESSAGE_ID)
    assert ledger.accepted(MESSAGE_ID) == set()


def test_keys_use_the_configured_prefix(redis_client: redis.Redis) -> None:
    with override_settings(MAILQUEUE_KEY_PREFIX="tenant7"):
        Ledger(redis_client, ttl=60).record(MESSAGE_ID, ["a@example.com"])
    assert redis_client.keys("*") == [f"tenant7:ledger:{MESSAGE_ID}".encode()]


def test_ttl_must_be_positive(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="TTL"):
        Ledger(redis_client, ttl=0)


def test_group_commit_writes_concurrent_acceptances_in_few_round_trips(redis_client: redis.Redis) -> None:
    ledger = Ledger(redis_client, ttl=60)
    writes: list[int] = []

    def write(accepted: dict[str, list[str]]) -> None:
        writes.append(len(accepted))
        time.sleep(0.02)  # a relay-side round trip: others queue meanwhile
        ledger.record_many(accepted)

    group = GroupCommit(write)
    ids = [f"<{n}@example.com>" for n in range(16)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda message_id: group.record(message_id, ["r@example.com"]), ids))

    assert all(ledger.accepted(message_id) == {"r@example.com"} for message_id in ids)
    assert sum(writes) == 16 and len(writes) < 16  # grouped, none lost


def test_group_commit_returns_only_once_the_callers_own_acceptance_is_written(redis_client: redis.Redis) -> None:
    ledger = Ledger(redis_client, ttl=60)
    group = GroupCommit(ledger.record_many)
    group.record(MESSAGE_ID, ["a@example.com"])
    assert ledger.accepted(MESSAGE_ID) == {"a@example.com"}  # no later flush needed


def test_group_commit_failure_reaches_every_caller_and_every_later_one() -> None:
    def write(accepted: dict[str, list[str]]) -> None:
        time.sleep(0.05)
        raise redis.ConnectionError("Redis went away")

    group = GroupCommit(write)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(group.record, f"<{n}@example.com>", ["r@example.com"]) for n in range(4)]
    assert all(isinstance(future.exception(), redis.ConnectionError) for future in futures)
    with pytest.raises(redis.ConnectionError):  # nobody sends on without its acceptance recorded
        group.record(MESSAGE_ID, ["late@example.com"])
