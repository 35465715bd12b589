"""Is this task from one of ours? Checked before a delivery task touches anything.

Whoever can write to the broker's Redis can put a ``mailqueue.deliver`` task on the queue,
with a bare Celery app or a raw LPUSH. Without a check, the workers would send that mail,
from any sender to anyone, through the relay's authenticated account. With
MAILQUEUE_SIGNING_KEY set, a task must carry a valid signature (``mailqueue.queue.signing``):

- signed with any of the keys, over exactly these arguments and this task id: delivered;
- a signature that does not verify (wrong key, or the task was altered): refused, always;
- no signature: refused, unless MAILQUEUE_SIGNING_REQUIRED is false (while a running fleet
  switches signing on, see the README).

A refused task is quarantined (``workers.quarantine``), logged on the ``mailqueue.security``
logger, and acknowledged without a result: a forgery that reuses a genuine task's id must not
overwrite that task's report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery import Task
from celery.exceptions import Ignore, Reject
from redis.exceptions import RedisError

from mailqueue.conf import settings
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.queue.signing import SIGNATURE_HEADER, configured_keys, task_canonical, verify
from workers.quarantine import Quarantine
from workers.store import redis_client

logger = logging.getLogger(__name__)
security_logger = logging.getLogger("mailqueue.security")

UNSIGNED = "unsigned: the task carries no signature"
FORGED = "forged: the signature does not match this task (another key, or altered arguments or id)"


def refusal(task_id: str, payloads: Any, attempt: Any, report: Any, signature: Any, *,
            keys: Sequence[bytes], required: bool) -> str | None:
    """Why this task must not run, or None when it may (pure: no settings, no I/O)."""
    if not keys:
        return None  # signing is off
    if signature is None:
        return UNSIGNED if required else None
    try:
        message = task_canonical(task_id, payloads, attempt=attempt, report=report)
    except (TypeError, ValueError) as error:  # nothing a producer sends, so nothing it signed
        return f"unreadable: arguments that cannot have been signed ({error})"
    return None if verify(keys, message, signature) else FORGED


def enforce(task: Task, task_id: str, payloads: Any, attempt: Any, report: Any) -> None:
    """Return if the task may run; otherwise quarantine it, log it, and end it (Ignore)."""
    signature = getattr(task.request, SIGNATURE_HEADER, None)
    try:
        keys = configured_keys()
        required = bool(settings.MAILQUEUE_SIGNING_REQUIRED)
    except ImproperlyConfigured as error:  # checked at start-up; keep the mail if it breaks later
        logger.error("Delivery task %s: signing misconfigured (%s); requeueing the task", task_id, error)
        raise Reject(error, requeue=True) from error
    reason = refusal(task_id, payloads, attempt, report, signature, keys=keys, required=required)
    if reason is None:
        if keys and signature is None:
            security_logger.info("Accepted unsigned task %r (MAILQUEUE_SIGNING_REQUIRED is false)", task_id)
        return
    quarantine(task, task_id, payloads, attempt, report, reason)
    raise Ignore()


def quarantine(task: Task, task_id: str, payloads: Any, attempt: Any, report: Any, reason: str) -> None:
    hostname = task.request.hostname or ""
    origin = getattr(task.request, "origin", None) or ""
    try:
        entry = Quarantine(redis_client(task.app.conf.broker_url)).add(
            task_id=task_id, reason=reason, payloads=payloads, attempt=attempt, report=report,
            hostname=hostname, origin=origin)
    except RedisError as error:  # keep it on the broker, unsent, until it can be recorded
        security_logger.error("Refused delivery task %r (%s); Redis unavailable (%s), requeueing it unsent",
                              task_id, reason, error)
        raise Reject(error, requeue=True) from error
    count = len(payloads) if isinstance(payloads, list) else 0
    security_logger.error(
        "Refused delivery task %r: %s. It was not delivered; quarantined as %s "
        "(%d payload(s), claimed origin %r); see `mailqueue dead show %s`",
        task_id, reason, entry.id, count, origin, entry.id)


def check_configuration() -> None:
    """At start-up: the keys must parse; say plainly when tasks are not authenticated."""
    keys = configured_keys()  # raises ImproperlyConfigured naming the setting
    if not keys:
        security_logger.warning(
            "MAILQUEUE_SIGNING_KEY is not set: this worker delivers any task found on the broker, so "
            "whoever can write to Redis can send mail through it. Set a signing key (see the README).")
    elif not settings.MAILQUEUE_SIGNING_REQUIRED:
        security_logger.warning(
            "MAILQUEUE_SIGNING_REQUIRED is false: unsigned tasks are delivered (forged signatures are "
            "refused). Set it to true once every producer signs.")
