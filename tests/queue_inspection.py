"""Reading what the producer put on the broker, straight from Redis with redis-py.

kombu's Redis transport keeps a queue as a list named after it: LPUSH on publish, BRPOP on
consume, so the oldest task is the last element. Each element is the JSON envelope of one
Celery message; its body is the JSON ``[args, kwargs, embed]`` of protocol 2.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import redis

from tests.fixtures.redis import answers_ping, redis_server_binary


@dataclass(frozen=True)
class QueuedTask:
    raw: bytes
    headers: dict[str, Any]
    properties: dict[str, Any]
    args: list[Any]

    @property
    def payloads(self) -> list[dict[str, Any]]:
        payloads: list[dict[str, Any]] = self.args[0]
        return payloads


def decode_task(raw: bytes) -> QueuedTask:
    envelope = json.loads(raw)
    body = envelope["body"]
    if envelope["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, _kwargs, _embed = json.loads(body)
    return QueuedTask(raw=raw, headers=envelope["headers"], properties=envelope["properties"], args=args)


def queued_tasks(client: redis.Redis, queue: str = "mailqueue") -> list[QueuedTask]:
    """The tasks waiting on ``queue``, oldest first."""
    return [decode_task(raw) for raw in reversed(client.lrange(queue, 0, -1))]


def start_redis_on(port: int, workdir: str) -> subprocess.Popen[bytes]:
    """A private redis-server on ``port``, for tests that stop, restart or starve the broker."""
    process = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not answers_ping(f"redis://127.0.0.1:{port}/0"):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"could not start a redis-server on port {port}")
        time.sleep(0.02)
    return process


def stop_redis(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait(timeout=10)
