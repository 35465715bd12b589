"""Dead letters: messages that failed for good, kept for an operator to inspect and requeue.

A message lands here when a recipient failed permanently (5xx), ran out of retries, or when
the task crashed in a way it could not recover from. Nothing is dropped: the record keeps the
payload (narrowed to the recipients that failed, so a requeue never re-sends to the others),
what the server said last, the attempts made and when it happened.
"""

from __future__ import annotations

import builtins
import json
import math
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

import redis

from mailqueue.conf import settings
from mailqueue.exceptions import UnknownDelivery
from mailqueue.queue import keys
from mailqueue.queue.envelope import DELIVER_TASK, Envelope, summarize
from mailqueue.queue.priority import DEFAULT_PRIORITY, step_of
from mailqueue.queue.signing import signature_headers

if TYPE_CHECKING:
    from celery import Celery


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    task_id: str
    message_id: str
    payload: dict[str, Any]  # the wire payload, its recipients narrowed to the failed ones
    failures: dict[str, dict[str, Any]]  # recipient -> {"code", "reply", "permanent"}
    error: dict[str, Any]  # the last error: {"code", "reply", "permanent"} and maybe "traceback"
    attempts: int
    failed_at: float
    enqueued_at: float | None = None
    hostname: str = ""
    # Where it came from: a requeue goes back to the same queue, with the same priority (None:
    # MAILQUEUE_QUEUE, "normal"; letters of an earlier release have neither).
    queue: str | None = None
    priority: str | None = None

    @property
    def recipients(self) -> list[str]:
        # The payload may be one a worker could not read: show it, never crash on it.
        recipients = self.payload.get("recipients")
        return [str(recipient) for recipient in recipients] if isinstance(recipients, list) else []

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> DeadLetter:
        return cls(**json.loads(raw))


@dataclass(frozen=True, slots=True)
class LetterFilter:
    """Which dead letters an operator means: by SMTP code, recipient, domain and age (AND-ed)."""

    code: int | None = None  # the last error's code, e.g. 550
    recipient: str | None = None  # one of the failed recipients, case-insensitive
    domain: str | None = None  # the domain of one of the failed recipients
    older_than: float | None = None  # seconds since it failed
    newer_than: float | None = None

    def __bool__(self) -> bool:
        return any(value is not None for value in (self.code, self.recipient, self.domain,
                                                   self.older_than, self.newer_than))

    def matches(self, letter: DeadLetter, *, now: float) -> bool:
        recipients = [address.lower() for address in letter.recipients]
        age = now - letter.failed_at
        return ((self.code is None or letter.error.get("code") == self.code)
                and (self.recipient is None or self.recipient.lower() in recipients)
                and (self.domain is None
                     or any(address.rpartition("@")[2] == self.domain.lower() for address in recipients))
                and (self.older_than is None or age >= self.older_than)
                and (self.newer_than is None or age <= self.newer_than))


Rewrite = Callable[[builtins.list[str]], builtins.list[str]]  # failed recipients -> the ones to send to


def _timestamp(value: Any) -> float | None:
    """A time from a payload, which may be one a worker could not read (then None)."""
    return float(value) if type(value) in (int, float) and math.isfinite(value) else None


class DeadLetters:
    """The dead-letter store: add, list, get, requeue, purge."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def add(
        self,
        *,
        task_id: str,
        payload: Mapping[str, Any],
        failures: Mapping[str, Mapping[str, Any]],
        error: Mapping[str, Any],
        attempts: int,
        hostname: str = "",
        now: float | None = None,
        queue: str | None = None,
        priority: str | None = None,
    ) -> DeadLetter:
        """Store a failed message; ``payload`` should hold only the recipients that failed."""
        letter = DeadLetter(
            id=uuid.uuid4().hex,
            task_id=task_id,
            message_id=str(payload.get("message_id", "")),
            payload=dict(payload),
            failures={address: dict(detail) for address, detail in failures.items()},
            error=dict(error),
            attempts=attempts,
            failed_at=time.time() if now is None else now,
            enqueued_at=_timestamp(payload.get("enqueued_at")),
            hostname=hostname,
            queue=queue,
            priority=priority,
        )
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(keys.dead_letters_key(), letter.id, letter.to_json())
            pipe.zadd(keys.dead_letter_index_key(), {letter.id: letter.failed_at})
            pipe.execute()
        return letter

    def list(self, *, limit: int = 100, offset: int = 0) -> builtins.list[DeadLetter]:
        """Dead letters, oldest first."""
        ids = cast("list[bytes]", self.client.zrange(keys.dead_letter_index_key(), offset, offset + limit - 1))
        if not ids:
            return []
        raws = cast("list[bytes | None]", self.client.hmget(keys.dead_letters_key(), ids))
        return [DeadLetter.from_json(raw) for raw in raws if raw is not None]

    def scan(self, *, chunk: int = 500) -> Iterator[DeadLetter]:
        """Every dead letter, oldest first, read ``chunk`` at a time (there may be many)."""
        offset = 0
        while True:
            letters = self.list(limit=chunk, offset=offset)
            yield from letters
            if len(letters) < chunk:
                return
            offset += chunk

    def select(self, where: LetterFilter, *, now: float | None = None) -> builtins.list[DeadLetter]:
        """The dead letters ``where`` matches (all of them with an empty filter), oldest first."""
        now = time.time() if now is None else now
        return [letter for letter in self.scan() if where.matches(letter, now=now)]

    def get(self, letter_id: str) -> DeadLetter:
        raw = cast("bytes | None", self.client.hget(keys.dead_letters_key(), letter_id))
        if raw is None:
            raise UnknownDelivery(f"No dead letter with id {letter_id!r} (see `mailqueue dead list`).")
        return DeadLetter.from_json(raw)

    def contains(self, letter_id: str) -> bool:
        return bool(self.client.hexists(keys.dead_letters_key(), letter_id))

    def count(self) -> int:
        return int(cast(int, self.client.zcard(keys.dead_letter_index_key())))

    def requeue(self, letter_id: str, *, app: Celery, rewrite: Rewrite | None = None) -> str:
        """Send the message again through ``app``, to its failed recipients only; returns the new task id.

        ``rewrite`` repairs the recipients first (a typo'd address). The dead letter is removed
        once the task is on the broker.
        """
        [(task_id, _ids)] = self.requeue_many([self.get(letter_id)], app=app, batch_size=1, rewrite=rewrite)
        return task_id

    def requeue_many(
        self,
        letters: Iterable[DeadLetter],
        *,
        app: Celery,
        batch_size: int,
        rewrite: Rewrite | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> builtins.list[tuple[str, builtins.list[str]]]:
        """Requeue dead letters ``batch_size`` per task, as the queue backend batches; returns
        (task id, dead-letter ids) per task. Every payload is checked before anything is sent,
        and each batch's letters are removed as soon as its task is on the broker.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        routes: dict[tuple[str, str], builtins.list[tuple[str, dict[str, Any]]]] = {}
        for letter in letters:  # a task goes to one queue with one priority: group by where they came from
            route = (letter.queue or settings.MAILQUEUE_QUEUE, letter.priority or DEFAULT_PRIORITY)
            routes.setdefault(route, []).append((letter.id, self._requeue_payload(letter, rewrite)))
        sent: builtins.list[tuple[str, builtins.list[str]]] = []
        for (queue, priority), prepared in routes.items():
            for start in range(0, len(prepared), batch_size):
                batch = prepared[start:start + batch_size]
                payloads = [payload for _id, payload in batch]
                task_id = str(uuid.uuid4())
                app.send_task(DELIVER_TASK, args=[payloads], argsrepr=summarize(payloads), task_id=task_id,
                              queue=queue, priority=step_of(priority),
                              headers=signature_headers(task_id, payloads))  # MAILQUEUE_SIGNING_KEY
                ids = [letter_id for letter_id, _payload in batch]
                self.purge(ids)
                sent.append((task_id, ids))
                if progress is not None:
                    progress(sum(len(ids) for _task, ids in sent))
        return sent

    @staticmethod
    def _requeue_payload(letter: DeadLetter, rewrite: Rewrite | None) -> dict[str, Any]:
        envelope = Envelope.from_payload(letter.payload)  # refuse a payload no worker could read
        if rewrite is None:
            return letter.payload
        recipients = rewrite(builtins.list(envelope.recipients))
        if not recipients:
            raise ValueError(f"Dead letter {letter.id}: no recipient left to send to")
        payload = {**letter.payload, "recipients": builtins.list(dict.fromkeys(recipients))}
        Envelope.from_payload(payload)  # the new addresses pass the workers' checks too
        return payload

    def purge(self, letter_ids: Iterable[str] | None = None) -> int:
        """Delete the given dead letters (all of them when ``letter_ids`` is None); returns how many."""
        if letter_ids is None:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.zcard(keys.dead_letter_index_key())
                pipe.delete(keys.dead_letters_key(), keys.dead_letter_index_key())
                removed, _ = pipe.execute()
            return int(removed)
        ids = builtins.list(letter_ids)
        if not ids:
            return 0
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.dead_letters_key(), *ids)
            pipe.zrem(keys.dead_letter_index_key(), *ids)
            removed, _ = pipe.execute()
        return int(removed)
