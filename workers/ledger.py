"""The delivery ledger: which recipients the SMTP server already accepted, per Message-ID.

A task can run twice (a crashed worker's task comes back after the visibility timeout, a
deferred round is re-sent, an operator requeues a dead letter). Before each send the worker
skips the recipients found here, and it records each acceptance right after the server's
reply, so a recipient never gets the same message twice. Entries expire after
MAILQUEUE_LEDGER_TTL seconds, long after any retry could still happen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

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
        self.record_many({message_id: list(recipients)})

    def record_many(self, accepted: dict[str, list[str]]) -> None:
        """Remember the accepted recipients of several messages in one round trip (one MULTI/EXEC)."""
        accepted = {message_id: recipients for message_id, recipients in accepted.items() if recipients}
        if not accepted:
            return
        with self.client.pipeline(transaction=True) as pipe:
            for message_id, recipients in accepted.items():
                key = keys.ledger_key(message_id)
                pipe.sadd(key, *recipients)
                pipe.expire(key, self.ttl)
            pipe.execute()

    def forget(self, message_id: str) -> None:
        """Drop the message's entry (an operator who really wants to send it again)."""
        self.client.delete(keys.ledger_key(message_id))


class GroupCommit:
    """Acceptances from several connections, written to the ledger in as few round trips as
    possible, each caller back only once its own is written.

    The first caller to arrive writes everything waiting (one MULTI/EXEC through
    ``Ledger.record_many``); those who arrive meanwhile wait and go in the next write, so
    eight busy connections cost about one round trip per write, not one per message. Each
    connection holds at most one acceptance not yet written: that is the window in which a
    crash can send a recipient twice. If a write fails, every caller waiting or to come gets
    its error: nobody sends on without its acceptance recorded.
    """

    def __init__(self, write: Callable[[dict[str, list[str]]], None]) -> None:
        self._write = write
        self._condition = threading.Condition()
        self._waiting: dict[str, list[str]] = {}
        self._queued = 0  # tickets handed out
        self._written = 0  # tickets written
        self._writing = False
        self._error: BaseException | None = None

    def record(self, message_id: str, recipients: list[str]) -> None:
        with self._condition:
            self._raise_if_failed()
            self._waiting.setdefault(message_id, []).extend(recipients)
            self._queued += 1
            ticket = self._queued
            while self._written < ticket:
                if not self._writing:
                    self._write_waiting()
                else:
                    self._condition.wait()
                self._raise_if_failed()

    def _write_waiting(self) -> None:
        """Called holding the condition; writes without it, so that others can queue meanwhile."""
        batch, self._waiting, upto = self._waiting, {}, self._queued
        self._writing = True
        self._condition.release()
        try:
            self._write(batch)
        except BaseException as error:
            self._condition.acquire()
            self._error = error
        else:
            self._condition.acquire()
            self._written = upto
        finally:
            self._writing = False
            self._condition.notify_all()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error
