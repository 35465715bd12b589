"""The delivery ledger: which recipients the SMTP server already accepted, per Message-ID.

A task can run twice (a crashed worker's task comes back after the visibility timeout, a
deferred round is re-sent, an operator requeues a dead letter). Before each send the worker
skips the recipients found here, and it records each acceptance right after the server's
reply, so a recipient never gets the same message twice. Entries expire after
MAILQUEUE_LEDGER_TTL seconds, long after any retry could still happen.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from mailqueue.queue import keys


class Ledger:
    def __init__(self, client: redis.Redis, *, ttl: int) -> None:
        if ttl <= 0:
            raise ValueError(f"The ledger TTL must be a positive number of seconds, got {ttl!r}")
        self.client = client
        self.ttl = int(ttl)

    def accepted(self, message_id: str) -> set[str]:
        """Recipients already accepted for this message."""
        return self.accepted_many([message_id])[message_id]

    def accepted_many(self, message_ids: list[str]) -> dict[str, set[str]]:
        """``accepted()`` of each message, in one round trip (a batch is read once, up front)."""
        with self.client.pipeline(transaction=False) as pipe:
            for message_id in message_ids:
                pipe.smembers(keys.ledger_key(message_id))
            results = pipe.execute()
        return {message_id: {m.decode() if isinstance(m, bytes) else m for m in members}
                for message_id, members in zip(message_ids, results, strict=True)}

    def record(self, message_id: str, recipients: Iterable[str]) -> None:
        """Remember accepted recipients; refreshes the TTL of the message's entry."""
        recipients = list(recipients)
        if not recipients:
            return
        key = keys.ledger_key(message_id)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(key, *recipients)
            pipe.expire(key, self.ttl)
            pipe.execute()

    def forget(self, message_id: str) -> None:
        """Drop the message's entry (an operator who really wants to send it again)."""
        self.client.delete(keys.ledger_key(message_id))
