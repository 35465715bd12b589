"""The delivery ledger against a real Redis."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from mailqueue.conf import override_settings
from mailqueue.queue import keys
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


def test_record_many_writes_each_messages_recipients_with_its_ttl(redis_client: redis.Redis) -> None:
    ledger = Ledger(redis_client, ttl=60)
    accepted = {"<1@example.com>": ["a@example.com", "b@example.com"], "<2@example.com>": ["c@example.com"],
                "<3@example.com>": []}
    ledger.record_many(accepted)
    assert ledger.accepted_many(list(accepted)) == {
        "<1@example.com>": {"a@example.com", "b@example.com"}, "<2@example.com>": {"c@example.com"},
        "<3@example.com>": set()}
    assert all(0 < redis_client.ttl(keys.ledger_key(m)) <= 60 for m in ("<1@example.com>", "<2@example.com>"))
    assert redis_client.exists(keys.ledger_key("<3@example.com>")) == 0


def test_a_message_with_ten_thousand_accepted_recipients_is_recorded_whole(redis_client: redis.Redis) -> None:
    ledger = Ledger(redis_client, ttl=60)
    recipients = [f"r{n}@example.com" for n in range(10_000)]
    ledger.record_many({MESSAGE_ID: recipients, "<other@example.com>": ["a@example.com"]})
    assert ledger.accepted(MESSAGE_ID) == set(recipients)
    assert ledger.accepted("<other@example.com>") == {"a@example.com"}


def test_record_many_works_after_redis_forgot_its_scripts(redis_client: redis.Redis) -> None:
    """A restarted Redis has no scripts: the write loads its script again (redis-py's NOSCRIPT path)."""
    ledger = Ledger(redis_client, ttl=60)
    ledger.record(MESSAGE_ID, ["a@example.com"])
    redis_client.script_flush()
    ledger.record(MESSAGE_ID, ["b@example.com"])
    assert ledger.accepted(MESSAGE_ID) == {"a@example.com", "b@example.com"}


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


def test_group_commit_writes_a_lone_acceptance_at_once(redis_client: redis.Redis) -> None:
    ledger = Ledger(redis_client, ttl=60)
    group = GroupCommit(ledger.record_many, window=8)
    group.record(MESSAGE_ID, ["a@example.com"])
    assert ledger.accepted(MESSAGE_ID) == {"a@example.com"}  # nobody was writing: written before it returns


class HeldWrite:
    """A ledger write that waits until the test lets it go, so callers pile up behind it."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.started = threading.Event()
        self.go = threading.Event()
        self.batches: list[dict[str, list[str]]] = []

    def __call__(self, accepted: dict[str, list[str]]) -> None:
        self.batches.append(accepted)
        self.started.set()
        assert self.go.wait(10)
        self.ledger.record_many(accepted)


def test_group_commit_lets_at_most_window_acceptances_go_unwritten(redis_client: redis.Redis) -> None:
    ledger = Ledger(redis_client, ttl=60)
    write = HeldWrite(ledger)
    group = GroupCommit(write, window=3)
    with ThreadPoolExecutor(max_workers=8) as pool:
        writer = pool.submit(group.record, "<0@example.com>", ["r@example.com"])
        assert write.started.wait(5)  # the first caller writes, and is held there
        behind = [pool.submit(group.record, f"<{n}@example.com>", ["r@example.com"]) for n in (1, 2)]
        assert all(future.result(timeout=5) is None for future in behind)  # within the window: sent on at once
        over = pool.submit(group.record, "<3@example.com>", ["r@example.com"])
        time.sleep(0.2)
        assert not over.done() and not writer.done()  # a fourth unwritten one waits
        assert ledger.accepted("<1@example.com>") == set()
        write.go.set()
        over.result(timeout=5)
        writer.result(timeout=5)
        group.flush()
    assert [sorted(batch) for batch in write.batches] == [["<0@example.com>"],
                                                         ["<1@example.com>", "<2@example.com>", "<3@example.com>"]]
    assert all(ledger.accepted(f"<{n}@example.com>") == {"r@example.com"} for n in range(4))


def test_flush_returns_once_everything_handed_in_is_written(redis_client: redis.Redis) -> None:
    ledger = Ledger(redis_client, ttl=60)
    write = HeldWrite(ledger)
    group = GroupCommit(write, window=4)
    with ThreadPoolExecutor(max_workers=4) as pool:
        pool.submit(group.record, "<0@example.com>", ["r@example.com"])
        assert write.started.wait(5)
        group.record("<1@example.com>", ["r@example.com"])  # returns: the write of <0> is under way
        flushed = pool.submit(group.flush)
        time.sleep(0.2)
        assert not flushed.done()
        write.go.set()
        flushed.result(timeout=5)
    assert ledger.accepted("<1@example.com>") == {"r@example.com"}


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        GroupCommit(lambda accepted: None, window=0)


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
    with pytest.raises(redis.ConnectionError):  # nor is the round's task acknowledged
        group.flush()


def test_a_failed_write_behind_the_callers_reaches_flush() -> None:
    started, go = threading.Event(), threading.Event()

    def write(accepted: dict[str, list[str]]) -> None:
        started.set()
        assert go.wait(10)
        raise redis.ConnectionError("Redis went away")

    group = GroupCommit(write, window=8)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(group.record, "<0@example.com>", ["r@example.com"])
        assert started.wait(5)
        group.record("<1@example.com>", ["r@example.com"])  # handed in behind the write under way
        go.set()
        with pytest.raises(redis.ConnectionError):
            group.flush()
    assert isinstance(first.exception(), redis.ConnectionError)
