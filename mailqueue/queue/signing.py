"""Signed tasks: an HMAC-SHA256 over what a delivery task asks a worker to do.

Whoever can write to the broker's Redis could otherwise make the workers send any mail
through the relay's authenticated account. With MAILQUEUE_SIGNING_KEY set, producers (and
the workers, when they re-send a task themselves) sign each task; workers refuse what does
not verify (``workers.authenticity``).

The signature covers a canonical JSON form of the task id, the task's name and every
argument the task acts on (the payloads, ``attempt`` and ``report``), so it cannot be moved
to another task or other arguments. It travels in the task message's headers
(``SIGNATURE_HEADER``); the key never travels anywhere. Keys are a list for rotation: sign
with the first, accept any. The standard library's ``hmac`` does the cryptography: nothing
here is home-made beyond choosing what is signed.

A signature is ``"mq1:" + hex digest``; the prefix names the scheme, so a later one can be
told apart. Records the workers keep for an operator (a dead letter) are signed with a
different ``purpose``, so such a signature never passes for a task's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from mailqueue.conf import settings
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.queue.envelope import DELIVER_TASK

__all__ = [
    "MIN_KEY_LENGTH",
    "SIGNATURE_HEADER",
    "canonical",
    "configured_keys",
    "sign",
    "signature_headers",
    "task_canonical",
    "verify",
]

SIGNATURE_HEADER = "mailqueue_signature"  # a task message header (Celery's custom headers)
SCHEME = "mq1"
TASK_PURPOSE = "task"
MIN_KEY_LENGTH = 16  # characters; a short key is a guessable key


def canonical(purpose: str, fields: dict[str, Any]) -> bytes:
    """One byte string per meaning: sorted keys, no spaces, ASCII only, no NaN.

    JSON decoding gives back exactly what was encoded (floats round-trip through repr), so
    the worker recomputes from the decoded task the bytes the producer signed. Raises
    ValueError/TypeError for what JSON cannot hold; no genuine task holds such a thing.
    """
    document = {"purpose": purpose, "scheme": SCHEME, **fields}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def task_canonical(task_id: str, payloads: Any, *, attempt: Any = 0, report: Any = None) -> bytes:
    """The canonical form of one ``mailqueue.deliver`` task: id, name and its arguments."""
    return canonical(TASK_PURPOSE, {"task": DELIVER_TASK, "id": task_id, "payloads": payloads,
                                    "attempt": attempt, "report": report})


def sign(keys: Sequence[bytes], message: bytes) -> str:
    """The signature of ``message`` under the first key (the current one)."""
    if not keys:
        raise ValueError("sign() needs at least one key")
    return f"{SCHEME}:{hmac.new(keys[0], message, hashlib.sha256).hexdigest()}"


def verify(keys: Sequence[bytes], message: bytes, signature: object) -> bool:
    """True when ``signature`` is the signature of ``message`` under any of ``keys``.

    Every key is tried, in constant time per key, so that an old key still verifies during
    a rotation.
    """
    if not isinstance(signature, str) or not signature.startswith(f"{SCHEME}:"):
        return False
    given = signature.encode("ascii", "replace")
    matches = [hmac.compare_digest(given, sign([key], message).encode("ascii")) for key in keys]
    return any(matches)


def parse_keys(value: Any, *, setting: str = "MAILQUEUE_SIGNING_KEY") -> list[bytes]:
    """The keys a setting holds: a string (one key) or a list of strings, each long enough."""
    if value is None or value == "":
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ImproperlyConfigured(f"{setting} must be a string or a list of strings, got {type(value).__name__}.")
    keys = []
    for position, item in enumerate(items):
        if not isinstance(item, str):
            raise ImproperlyConfigured(f"{setting}[{position}] must be a string, got {type(item).__name__}.")
        if len(item) < MIN_KEY_LENGTH:
            raise ImproperlyConfigured(
                f"{setting}[{position}] is {len(item)} characters long; use at least {MIN_KEY_LENGTH} "
                "(for instance: python -c 'import secrets; print(secrets.token_urlsafe(32))')."
            )
        keys.append(item.encode("utf-8"))
    return keys


def configured_keys() -> list[bytes]:
    """MAILQUEUE_SIGNING_KEY as keys; empty when signing is off."""
    return parse_keys(settings.MAILQUEUE_SIGNING_KEY)


def signature_headers(task_id: str, payloads: Any, *, attempt: Any = 0, report: Any = None,
                      keys: Sequence[bytes] | None = None) -> dict[str, str]:
    """The headers that sign a task, to pass to ``send_task(headers=...)``; none without a key."""
    keys = configured_keys() if keys is None else keys
    if not keys:
        return {}
    return {SIGNATURE_HEADER: sign(keys, task_canonical(task_id, payloads, attempt=attempt, report=report))}
