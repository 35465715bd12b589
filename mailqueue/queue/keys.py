"""Every Redis key mailqueue reads or writes, named in one place.

mailqueue's own keys start with MAILQUEUE_KEY_PREFIX, so several deployments can share one
Redis. The keys that belong to Celery and kombu (the queue list, the unacked hash, the task
results) are named here too, so that the command line can count them without guessing.
"""

from __future__ import annotations

from mailqueue.conf import settings

# kombu's Redis transport defaults (kombu.transport.redis.Channel); we do not change them.
KOMBU_UNACKED = "unacked"
KOMBU_UNACKED_INDEX = "unacked_index"
# Celery's Redis result backend: one string per task, holding the JSON result.
CELERY_RESULT_PREFIX = "celery-task-meta-"


def key_for(*parts: str) -> str:
    """``<prefix>:<part>:<part>...``; every mailqueue key goes through here."""
    if not parts or not all(isinstance(part, str) and part for part in parts):
        raise ValueError(f"Redis key parts must be non-empty strings, got {parts!r}")
    return ":".join((settings.MAILQUEUE_KEY_PREFIX, *parts))


# --- the delivery ledger (workers/ledger.py) -------------------------------------------------


def ledger_key(message_id: str) -> str:
    """Set of the recipients the SMTP server accepted for one Message-ID."""
    return key_for("ledger", message_id)


# --- deferred retries (workers/deferral.py) --------------------------------------------------


def deferred_schedule_key() -> str:
    """Sorted set: task id scored by the time (epoch seconds) its retry is due."""
    return key_for("deferred", "schedule")


def deferred_entries_key() -> str:
    """Hash: task id -> JSON of the deferred round (payloads, attempt, report so far)."""
    return key_for("deferred", "entries")


def deferred_claims_key() -> str:
    """Hash: task id -> JSON of a due round a poller has taken but not yet re-enqueued."""
    return key_for("deferred", "claims")


def deferred_claim_times_key() -> str:
    """Sorted set: claimed task id scored by the time of its claim (to recover stale ones)."""
    return key_for("deferred", "claimed-at")


# --- scheduled sends (mailqueue/queue/schedule.py; the workers' poller, workers/deferral.py) ----


def scheduled_keys() -> list[str]:
    """The scheduled sends' store, laid out as the deferred retries' (schedule, entries, claims,
    claim times): producers write it, the workers' poller enqueues each task when it is due."""
    return [key_for("scheduled", part) for part in ("schedule", "entries", "claims", "claimed-at")]


# --- cancelling (mailqueue/queue/cancel.py) --------------------------------------------------


def task_state_key(task_id: str) -> str:
    """String: "started" once a worker began the task, "cancelled" once cancelled (whichever first)."""
    return key_for("task", task_id, "state")


# --- dead letters (workers/deadletters.py) ---------------------------------------------------


def dead_letters_key() -> str:
    """Hash: dead-letter id -> JSON record (payload, last error, attempts, times)."""
    return key_for("dead", "letters")


def dead_letter_index_key() -> str:
    """Sorted set: dead-letter id scored by the time it failed, for listing in order."""
    return key_for("dead", "index")


# --- quarantine: tasks refused as unsigned or forged (workers/quarantine.py) ----------------------


def quarantine_key() -> str:
    """Hash: quarantine id -> JSON record (the refused task's arguments, why, when, where)."""
    return key_for("quarantine", "tasks")


def quarantine_index_key() -> str:
    """Sorted set: quarantine id scored by the time the task was refused, for listing in order."""
    return key_for("quarantine", "index")


# --- fleet-wide rate limits per relay (workers/ratelimit.py) --------------------------------------


def rate_bucket_key(relay: str) -> str:
    """Hash: the relay's token bucket (tokens left, Redis time of the last draw)."""
    return key_for("ratelimit", relay, "bucket")


def relay_pause_key(relay: str) -> str:
    """String with a time to live: the relay answered 421/454, every worker holds off until it expires."""
    return key_for("ratelimit", relay, "paused")


# --- fleet-wide connection limits per relay (workers/connection_slots.py) --------------------------


def connection_slots_key(relay: str) -> str:
    """Sorted set: one member per open connection to the relay, scored by when its lease lapses (ms)."""
    return key_for("connections", relay, "slots")


# --- counters for `mailqueue stats` ------------------------------------------------------------


def stats_key() -> str:
    """Hash of running totals: sent, failed, deferred, dead_lettered, retries."""
    return key_for("stats")


def latency_key() -> str:
    """Hash: delivery latency per bucket (``mailqueue.queue.measures``), plus its sum and count."""
    return key_for("stats", "latency")


# --- keys owned by Celery and kombu --------------------------------------------------------------


def queue_key(queue: str | None = None) -> str:
    """The Redis list holding the tasks waiting in ``queue`` (default MAILQUEUE_QUEUE)."""
    return queue or settings.MAILQUEUE_QUEUE


def unacked_key() -> str:
    """kombu's hash of tasks delivered to a worker and not yet acknowledged (in flight)."""
    return KOMBU_UNACKED


def unacked_index_key() -> str:
    """kombu's sorted set of in-flight delivery tags scored by delivery time."""
    return KOMBU_UNACKED_INDEX


def result_key(task_id: str) -> str:
    """Where Celery's Redis result backend stores a task's state and delivery report."""
    return f"{CELERY_RESULT_PREFIX}{task_id}"
