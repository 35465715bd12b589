"""The delivery task as kombu's Redis transport stores it: Celery's task message, protocol 2.

The producer writes this itself (one LPUSH) instead of going through Celery's and kombu's
publish path, which costs about twice the round trip in Python on every ``send_mail``. The
workers read it with stock Celery and kombu, so it must be exactly what
``app.send_task(DELIVER_TASK, args=[payloads], task_id=..., queue=..., priority=...)``
would have written with ``body_encoding="utf-8"``; ``tests/queue/test_task_message.py``
compares the two field by field.

Reference: Celery's message protocol v2 (``celery.app.amqp.AMQP.as_task_v2``) and kombu's
``kombu.transport.virtual.Channel._inplace_augment_message``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from mailqueue.queue.envelope import DELIVER_TASK, summarize

__all__ = ["encode"]

# The fourth element of a protocol-2 body: no callbacks, no chain, no chord.
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def encode(payloads: Sequence[dict[str, Any]], *, task_id: str, queue: str, priority_step: int, origin: str,
           extra_headers: dict[str, str] | None = None) -> str:
    """The JSON text LPUSHed to ``queue``'s list for one delivery task of ``payloads``.

    ``priority_step`` is kombu's (``mailqueue.queue.priority.step_of``); the list it goes
    to is the caller's (``mailqueue.queue.priority.list_name``).
    """
    batch = list(payloads)
    headers: dict[str, Any] = {
        "lang": "py", "task": DELIVER_TASK, "id": task_id, "shadow": None, "eta": None, "expires": None,
        "group": None, "group_index": None, "retries": 0, "timelimit": [None, None],
        "root_id": task_id, "parent_id": None, "argsrepr": summarize(batch), "kwargsrepr": "{}",
        "origin": origin, "ignore_result": False, "replaced_task_nesting": 0, "stamped_headers": None,
        "stamps": {},
    }
    if extra_headers:
        headers.update(extra_headers)
    message = {
        "body": json.dumps([[batch], {}, _EMBED]),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,  # persistent
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": priority_step,
            "body_encoding": "utf-8",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return json.dumps(message)
