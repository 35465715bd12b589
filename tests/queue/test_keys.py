"""Every Redis key, built in one place."""

from __future__ import annotations

import pytest

from mailqueue.conf import override_settings
from mailqueue.queue import keys


def test_mailqueue_keys_start_with_the_prefix() -> None:
    with override_settings(MAILQUEUE_KEY_PREFIX="acme"):
        built = [keys.ledger_key("<m@x>"), keys.deferred_schedule_key(), keys.deferred_entries_key(),
                 keys.deferred_claims_key(), keys.deferred_claim_times_key(), keys.dead_letters_key(),
                 keys.dead_letter_index_key(), keys.stats_key(), keys.latency_key()]
    assert all(key.startswith("acme:") for key in built)
    assert len(set(built)) == len(built)


def test_ledger_key_names_the_message() -> None:
    assert keys.ledger_key("<m@x>") == "mailqueue:ledger:<m@x>"


def test_empty_parts_are_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        keys.key_for("ledger", "")


def test_celery_and_kombu_keys_follow_their_conventions() -> None:
    with override_settings(MAILQUEUE_QUEUE="mail-eu"):
        assert keys.queue_key() == "mail-eu"
    assert keys.result_key("abc") == "celery-task-meta-abc"
    assert (keys.unacked_key(), keys.unacked_index_key()) == ("unacked", "unacked_index")
