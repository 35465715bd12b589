"""The delivery ledger against a real Redis."""

from __future__ import annotations

import pytest
import redis

from mailqueue.conf import override_settings
from workers.ledger import Ledger

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
