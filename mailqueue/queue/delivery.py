"""The handle a queued message carries: which task delivers it, and its report once done.

Creating a handle costs nothing: the result backend is asked only when ``state`` is read
or ``get()`` is called, so sending stays one broker round trip. The results are read by
a Celery app of their own (one per result-backend URL and process), separate from the
publishing app, which has no result backend at all (see ``mailqueue.queue.producer``).

The worker keeps one task id for a message's whole life: deferred retries store the
interim state ``DEFERRED``, which is not a ready state, so ``get()`` returns only when
every retry is over.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import celery.exceptions
from celery import Celery, states
from celery.result import AsyncResult

from mailqueue.conf import settings
from mailqueue.exceptions import (
    BrokerUnavailable,
    DeliveryFailed,
    DeliveryTimeout,
    MailQueueError,
    UnknownDelivery,
)
from mailqueue.queue import cancel as cancelling
from mailqueue.queue.broker import redacted, result_backend_url, shared_celery_config
from mailqueue.queue.producer import get_publisher

__all__ = ["Delivery", "close_result_readers"]

DEFERRED = "DEFERRED"  # interim state of a task whose retries are scheduled (set by the workers)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery task, seen from the message it carries.

    ``task_id`` is shared by every message of one batch; ``message_id`` (the Message-ID
    header, angle brackets included) picks this message's entry in the report.
    """

    task_id: str
    message_id: str | None = None
    broker_url: str | None = field(default=None, compare=False, repr=False)  # None: MAILQUEUE_BROKER_URL

    def cancel(self) -> bool:
        """Cancel the task, unless a worker has begun it: True if cancelled, False otherwise.

        It cancels the whole task: every message sent in the same batch (one ``send_messages``
        call, up to MAILQUEUE_BATCH_SIZE messages) shares it. A cancelled message is never sent;
        its report says "cancelled": at once for a scheduled task, and when a worker takes it off
        the queue for a queued one (the worker then only reports it).
        """
        with get_publisher(self.broker_url).redis(refuse_if_full=False) as client:
            outcome = cancelling.cancel(client, self.task_id)
        if outcome.payloads is not None:  # taken off the schedule: no worker will ever report it
            report = cancelling.cancelled_report(self.task_id, outcome.payloads)
            result = self._result()
            with _translated_errors(result):
                result.backend.store_result(self.task_id, report, states.SUCCESS)
        return outcome.cancelled

    @property
    def state(self) -> str:
        """The task's current state: PENDING, STARTED, DEFERRED, SUCCESS, FAILURE, ..."""
        result = self._result()
        with _translated_errors(result):
            return str(result.state)

    def ready(self) -> bool:
        """True once the final report is stored (no retry is pending any more)."""
        return self.state in states.READY_STATES

    def get(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the final delivery report (the whole batch's) and return it.

        Raises DeliveryTimeout if ``timeout`` seconds pass first; an error the task itself
        raised is re-raised here. A task whose mail failed for good ends in state FAILURE
        (so monitoring shows it), and this still returns its report.
        """
        result = self._result()
        with _translated_errors(result):
            try:
                report = result.get(timeout=timeout, propagate=True)
            except DeliveryFailed as failed:  # some mail failed for good: still the full report
                report = failed.report
            except celery.exceptions.TimeoutError:
                raise DeliveryTimeout(
                    f"No final delivery report for task {self.task_id} after {timeout} seconds "
                    f"(state {result.state})."
                ) from None
        if not isinstance(report, dict):
            raise TypeError(f"Task {self.task_id} returned {type(report).__name__}, not a delivery report.")
        return report

    def message_report(self, timeout: float | None = None) -> dict[str, Any]:
        """This message's entry of the final report: its status, attempts and recipients."""
        report = self.get(timeout=timeout)
        entry = report.get("messages", {}).get(self.message_id)
        if entry is None:
            raise UnknownDelivery(f"The report of task {self.task_id} has no message {self.message_id!r}.")
        return dict(entry)

    def _result(self) -> AsyncResult:
        return AsyncResult(self.task_id, app=result_reader())


@contextmanager
def _translated_errors(result: AsyncResult) -> Iterator[None]:
    """Turn the result backend's connection errors into BrokerUnavailable, at the edge."""
    backend = result.backend
    try:
        yield
    except (*getattr(backend, "connection_errors", ()), ConnectionError) as error:
        if isinstance(error, MailQueueError):  # ours already (DeliveryTimeout is a TimeoutError)
            raise
        url = getattr(backend, "url", None) or result_backend_url()
        raise BrokerUnavailable(
            f"Cannot read delivery results from {redacted(url)}: {str(error).rstrip('.')}. "
            "Check MAILQUEUE_RESULT_BACKEND (empty means MAILQUEUE_BROKER_URL)."
        ) from error


_readers: dict[tuple[str, float, float, int], Celery] = {}
_readers_lock = threading.Lock()


def result_reader(url: str | None = None) -> Celery:
    """The process's result-reading Celery app for ``url`` (default: MAILQUEUE_RESULT_BACKEND)."""
    key = (
        url or result_backend_url(),
        float(settings.MAILQUEUE_BROKER_CONNECT_TIMEOUT),
        float(settings.MAILQUEUE_BROKER_SOCKET_TIMEOUT),
        os.getpid(),
    )
    app = _readers.get(key)
    if app is None:
        with _readers_lock:
            app = _readers.get(key)
            if app is None:
                app = _readers[key] = _reader_app(key[0], connect_timeout=key[1], socket_timeout=key[2])
    return app


def _reader_app(url: str, *, connect_timeout: float, socket_timeout: float) -> Celery:
    # The broker is never used by this app; naming the backend's URL keeps Celery from
    # defaulting to amqp://localhost.
    app = Celery("mailqueue-results", set_as_current=False, broker=url, backend=url)
    config = shared_celery_config()
    config.update(
        redis_socket_connect_timeout=connect_timeout,
        redis_socket_timeout=socket_timeout,
    )
    app.conf.update(config)
    return app


def close_result_readers() -> None:
    """Forget every result reader of this process (tests, shutdown)."""
    with _readers_lock:
        apps = list(_readers.values())
        _readers.clear()
    for app in apps:
        app.close()
