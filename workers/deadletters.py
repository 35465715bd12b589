"""Dead letters: messages that failed for good, kept for an operator to inspect and requeue.

A message lands here when a recipient failed permanently (5xx), ran out of retries, or when
the task crashed in a way it could not recover from. Nothing is dropped: the record keeps the
payload (narrowed to the recipients that failed, so a requeue never re-sends to the others),
what the server said last, the attempts made and when it happened.
"""

from __future__ import annotations

import builtins
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

import redis

from mailqueue.conf import settings
from mailqueue.exceptions import UnknownDelivery
from mailqueue.queue import keys
from mailqueue.queue.envelope import DELIVER_TASK, Envelope, summarize
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

    @property
    def recipients(self) -> list[str]:
        return list(self.payload.get("recipients", []))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> DeadLetter:
        return cls(**json.loads(raw))


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
            enqueued_at=payload.get("enqueued_at"),
            hostname=hostname,
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

    def get(self, letter_id: str) -> DeadLetter:
        raw = cast("bytes | None", self.client.hget(keys.dead_letters_key(), letter_id))
        if raw is None:
            raise UnknownDelivery(f"No dead letter with id {letter_id!r} (see `mailqueue dead list`).")
        return DeadLetter.from_json(raw)

    def contains(self, letter_id: str) -> bool:
        return bool(self.client.hexists(keys.dead_letters_key(), letter_id))

    def count(self) -> int:
        return int(cast(int, self.client.zcard(keys.dead_letter_index_key())))

    def requeue(self, letter_id: str, *, app: Celery) -> str:
        """Send the message again through ``app``, to its failed recipients only; returns the new task id.

        The dead letter is removed once the task is on the broker.
        """
        letter = self.get(letter_id)
        Envelope.from_payload(letter.payload)  # refuse a payload no worker could read
        task_id = str(uuid.uuid4())
        app.send_task(DELIVER_TASK, args=[[letter.payload]], argsrepr=summarize([letter.payload]),
                      task_id=task_id, queue=settings.MAILQUEUE_QUEUE,
                      headers=signature_headers(task_id, [letter.payload]))  # MAILQUEUE_SIGNING_KEY
        self.purge([letter_id])
        return task_id

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
