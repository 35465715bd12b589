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

# KEYS: the messages' ledger entries.  ARGV: TTL, then per key its recipient count and recipients.
# One script call, not MULTI + SADD + EXPIRE per message + EXEC: a batch of five costs 130 us of
# the worker's CPU instead of 216 (every reply redis-py parses costs), and is as atomic. SADD
# takes a thousand at a time: Lua's unpack() fails beyond about 8,000 values.
_RECORD = """
local ttl, at = tonumber(ARGV[1]), 2
for _, key in ipairs(KEYS) do
  local last = at + tonumber(ARGV[at])
  for first = at + 1, last, 1000 do
    redis.call('SADD', key, unpack(ARGV, first, math.min(first + 999, last)))
  end
  redis.call('EXPIRE', key, ttl)
  at = last + 1
end
return #KEYS
"""


class Ledger:
    def __init__(self, client: redis.Redis, *, ttl: int) -> None:
        if ttl <= 0:
            raise ValueError(f"The ledger TTL must be a positive number of seconds, got {ttl!r}")
        self.client = client
        self.ttl = int(ttl)
        self._record = client.register_script(_RECORD)

    def accepted(self, message_id: str) -> set[str]:
        """Recipients already accepted for this message."""
        return self.accepted_many([message_id])[message_id]

    def accepted_many(self, message_ids: list[str]) -> dict[str, set[str]]:
        """``accepted()`` of each message (a batch is read once, up front). A first attempt finds
        none: one EXISTS says so, and only a batch with entries has them read, in one more
        round trip."""
        if not message_ids or not self.client.exists(*(keys.ledger_key(message_id) for message_id in message_ids)):
            return {message_id: set() for message_id in message_ids}
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
        """Remember the accepted recipients of several messages in one round trip (one script call,
        atomic); refreshes each entry's TTL."""
        accepted = {message_id: recipients for message_id, recipients in accepted.items() if recipients}
        if not accepted:
            return
        arguments: list[str | int] = [self.ttl]
        for recipients in accepted.values():
            arguments += [len(recipients), *recipients]
        self._record(keys=[keys.ledger_key(message_id) for message_id in accepted], args=arguments)

    def forget(self, message_id: str) -> None:
        """Drop the message's entry (an operator who really wants to send it again)."""
        self.client.delete(keys.ledger_key(message_id))


class GroupCommit:
    """Acceptances from several connections, written to the ledger behind them, in batches.

    The first caller to find no write under way writes everything waiting (one MULTI/EXEC
    through ``Ledger.record_many``), again and again until nothing waits; the others add
    theirs and send on. A caller that finds more than ``window`` unwritten waits: with
    ``window`` the round's connection count, a crash can send at most two recipients twice
    per connection (one handed in, one just accepted), the price of not waiting for Redis
    after every message.
    ``flush()`` returns once everything recorded is written: the round calls it before its
    task can be acknowledged. If a write fails, every caller waiting or to come, and
    ``flush()``, get its error: nothing is acknowledged without its acceptances recorded.

    On a relay far away a connection's acceptances are milliseconds apart and each is
    written at once; on a near one, where CPU decides, eight or more share a write.
    """

    def __init__(self, write: Callable[[dict[str, list[str]]], None], *, window: int = 1) -> None:
        if window < 1:
            raise ValueError(f"The ledger's window must be at least 1, got {window!r}")
        self._write = write
        self._window = window
        self._condition = threading.Condition()
        self._waiting: dict[str, list[str]] = {}
        self._queued = 0  # acceptances handed in
        self._written = 0  # of which written
        self._writing = False
        self._error: BaseException | None = None

    def record(self, message_id: str, recipients: list[str]) -> None:
        """Hand in one acceptance; returns at once unless ``window`` are already unwritten."""
        with self._condition:
            self._raise_if_failed()
            self._waiting.setdefault(message_id, []).extend(recipients)
            self._queued += 1
            self._settle(lambda: self._queued - self._written <= self._window)

    def flush(self) -> None:
        """Return once every acceptance handed in is written (or raise the write's error)."""
        with self._condition:
            self._settle(lambda: self._written == self._queued)

    def _settle(self, done: Callable[[], bool]) -> None:
        """Called holding the condition: write, or wait for the writer, until ``done()``."""
        while True:
            self._raise_if_failed()
            if not self._writing and self._waiting:
                self._write_waiting()
            elif done():
                return
            else:
                self._condition.wait()

    def _write_waiting(self) -> None:
        """Write until nothing waits; without the condition held, so that others add meanwhile."""
        self._writing = True
        try:
            while self._waiting and self._error is None:
                batch, self._waiting, upto = self._waiting, {}, self._queued
                self._condition.release()
                try:
                    self._write(batch)
                except BaseException as error:
                    self._condition.acquire()
                    self._error = error
                else:
                    self._condition.acquire()
                    self._written = upto
                self._condition.notify_all()
        finally:
            self._writing = False
            self._condition.notify_all()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error
