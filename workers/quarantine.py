"""The quarantine: delivery tasks a worker refused because they are unsigned or forged.

A refused task never reaches SMTP, but it is not thrown away either: it may be genuine mail
from a producer that was not given the key yet. It is kept here, as it came off the broker
(untrusted: the payloads may not even be a list), for an operator to look at with
``mailqueue dead list/show``. ``mailqueue dead requeue --force`` sends it again, signed by the
operator's key; without ``--force`` the command refuses, since that would relay what may be a
forgery.

The store is bounded (``MAX_ENTRIES``, oldest dropped first): whoever floods the broker with
forgeries must not fill the Redis the real mail needs.
"""

from __future__ import annotations

import builtins
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

import redis

from mailqueue.conf import settings
from mailqueue.exceptions import ImproperlyConfigured, UnknownDelivery, UnsupportedPayload
from mailqueue.queue import keys
from mailqueue.queue.envelope import DELIVER_TASK, Envelope, summarize
from mailqueue.queue.signing import configured_keys, signature_headers

if TYPE_CHECKING:
    from celery import Celery

MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class QuarantinedTask:
    id: str
    task_id: str
    reason: str  # why the worker refused it: unsigned, forged, unreadable
    payloads: Any  # as received; untrusted
    attempt: Any
    report: Any
    refused_at: float
    hostname: str = ""  # the worker that refused it
    origin: str = ""  # who the task claims sent it (untrusted)

    def readable_payloads(self) -> builtins.list[dict[str, Any]]:
        """The payloads that look like payloads, for display."""
        items = self.payloads if isinstance(self.payloads, builtins.list) else []
        return [item for item in items if isinstance(item, dict)]

    @property
    def message_ids(self) -> builtins.list[str]:
        return [str(payload.get("message_id", "?")) for payload in self.readable_payloads()]

    @property
    def recipients(self) -> builtins.list[str]:
        found: builtins.list[str] = []
        for payload in self.readable_payloads():
            value = payload.get("recipients")
            found += [str(item) for item in value] if isinstance(value, builtins.list) else [repr(value)]
        return found

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=repr)  # whatever came off the broker, kept readable

    @classmethod
    def from_json(cls, raw: str | bytes) -> QuarantinedTask:
        return cls(**json.loads(raw))


class Quarantine:
    """The quarantine store: add, list, get, count, requeue (forced), purge."""

    def __init__(self, client: redis.Redis, *, max_entries: int = MAX_ENTRIES) -> None:
        self.client = client
        self.max_entries = max_entries

    def add(self, *, task_id: str, reason: str, payloads: Any, attempt: Any, report: Any,
            hostname: str = "", origin: str = "", now: float | None = None) -> QuarantinedTask:
        entry = QuarantinedTask(
            id=uuid.uuid4().hex, task_id=str(task_id), reason=reason, payloads=payloads, attempt=attempt,
            report=report, refused_at=time.time() if now is None else now, hostname=hostname, origin=str(origin),
        )
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(keys.quarantine_key(), entry.id, entry.to_json())
            pipe.zadd(keys.quarantine_index_key(), {entry.id: entry.refused_at})
            pipe.zcard(keys.quarantine_index_key())
            *_, size = pipe.execute()
        if int(size) > self.max_entries:
            self._drop_oldest(int(size) - self.max_entries)
        return entry

    def _drop_oldest(self, how_many: int) -> None:
        ids = cast("list[bytes]", self.client.zrange(keys.quarantine_index_key(), 0, how_many - 1))
        if ids:
            self.purge([item.decode() for item in ids])

    def list(self, *, limit: int = 100, offset: int = 0) -> builtins.list[QuarantinedTask]:
        """Quarantined tasks, oldest first."""
        ids = cast("list[bytes]", self.client.zrange(keys.quarantine_index_key(), offset, offset + limit - 1))
        if not ids:
            return []
        raws = cast("list[bytes | None]", self.client.hmget(keys.quarantine_key(), ids))
        return [QuarantinedTask.from_json(raw) for raw in raws if raw is not None]

    def get(self, entry_id: str) -> QuarantinedTask:
        raw = cast("bytes | None", self.client.hget(keys.quarantine_key(), entry_id))
        if raw is None:
            raise UnknownDelivery(f"No quarantined task with id {entry_id!r} (see `mailqueue dead list`).")
        return QuarantinedTask.from_json(raw)

    def contains(self, entry_id: str) -> bool:
        return bool(self.client.hexists(keys.quarantine_key(), entry_id))

    def count(self) -> int:
        return int(cast(int, self.client.zcard(keys.quarantine_index_key())))

    def requeue(self, entry_id: str, *, app: Celery) -> str:
        """Send a quarantined task's payloads again as a new task, signed here; returns its id.

        Only for an operator who has looked at it and trusts it (``dead requeue --force``).
        """
        entry = self.get(entry_id)
        if not configured_keys():
            raise ImproperlyConfigured(
                "MAILQUEUE_SIGNING_KEY is not set here, so the requeued task would be refused again; "
                "run this with the fleet's settings."
            )
        payloads = entry.payloads
        if not isinstance(payloads, builtins.list) or not payloads:
            raise UnsupportedPayload(f"Quarantined task {entry_id} carries no list of payloads to requeue.")
        for payload in payloads:
            Envelope.from_payload(payload)  # refuse a payload no worker could read
        task_id = str(uuid.uuid4())
        app.send_task(DELIVER_TASK, args=[payloads], argsrepr=summarize(payloads), task_id=task_id,
                      queue=settings.MAILQUEUE_QUEUE, headers=signature_headers(task_id, payloads))
        self.purge([entry_id])
        return task_id

    def purge(self, entry_ids: Iterable[str] | None = None) -> int:
        """Delete the given entries (all of them when ``entry_ids`` is None); returns how many."""
        if entry_ids is None:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.zcard(keys.quarantine_index_key())
                pipe.delete(keys.quarantine_key(), keys.quarantine_index_key())
                removed, _ = pipe.execute()
            return int(removed)
        ids = builtins.list(entry_ids)
        if not ids:
            return 0
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.quarantine_key(), *ids)
            pipe.zrem(keys.quarantine_index_key(), *ids)
            removed, _ = pipe.execute()
        return int(removed)
