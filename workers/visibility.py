"""Keep the tasks this worker holds invisible to the others, however long they take.

kombu's Redis transport records each task it hands to a worker in a sorted set
(``unacked_index``), scored by the time it was handed out. Any worker's sweep gives a task
back to the queue once its score is older than the visibility timeout: that is how a dead
worker's tasks come back. The sweep cannot tell a dead worker from a slow one, so a round
against a slow relay (every reply on time, the whole round longer than the timeout) would
run in two workers at once, and its mail would go out twice.

The keeper runs in the worker's main process, which knows every request it holds (reserved
or running, in any pool), and moves their scores to "now" every quarter of the timeout.
``ZADD XX`` only updates: a task acknowledged in the meantime is never brought back. When
the worker dies, the refreshes stop, and its tasks come back one timeout later, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

import redis
from celery.worker import state

logger = logging.getLogger(__name__)


def held_delivery_tags() -> list[str]:
    """The broker delivery tags of every request this worker holds (reserved or running).

    Celery keeps these sets in the main process; they are empty anywhere else.
    """
    for _ in range(3):  # the WeakSet may change under us while the consumer adds a request
        try:
            requests = list(state.reserved_requests) + list(state.active_requests)
            break
        except RuntimeError:
            continue
    else:
        return []
    tags = {getattr(getattr(request, "message", None), "delivery_tag", None) for request in requests}
    return [tag for tag in tags if isinstance(tag, str) and tag]


def refresh_interval(visibility_timeout: float) -> float:
    """A quarter of the timeout, at most 30 s and at least 0.2 s: three refreshes may fail in a row."""
    return max(0.2, min(30.0, visibility_timeout / 4))


class VisibilityKeeper:
    """A daemon thread that refreshes the unacked scores of the tasks this worker holds."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        index_key: str,
        visibility_timeout: float,
        tags: Callable[[], Iterable[str]] = held_delivery_tags,
    ) -> None:
        self.client = client
        self.index_key = index_key
        self.interval = refresh_interval(visibility_timeout)
        self.tags = tags
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def refresh(self) -> int:
        """Move every held task's score to now; returns how many were still unacknowledged."""
        tags = list(self.tags())
        if not tags:
            return 0
        now = time.time()
        updated = self.client.zadd(self.index_key, dict.fromkeys(tags, now), xx=True, ch=True)
        return int(updated)  # type: ignore[arg-type]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except redis.RedisError as error:
                if not self._failing:  # once per outage, not every tick
                    logger.warning("Could not extend the visibility of this worker's tasks (%s); "
                                   "retrying every %.1fs", error, self.interval)
                self._failing = True
            except Exception:
                logger.exception("Extending the visibility of this worker's tasks failed")
            else:
                if self._failing:
                    logger.info("Extending the visibility of this worker's tasks works again")
                self._failing = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mailqueue-visibility", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
