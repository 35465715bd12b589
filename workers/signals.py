"""Pool processes leave stopping to the worker's main process.

systemd's default ``KillMode=control-group`` (and ``kill -TERM -<pgid>``) sends SIGTERM to
every process of the worker at once. The main process answers with a warm shutdown: it stops
taking tasks, waits for those in hand, then stops its pool. But billiard's pool processes die
on SIGTERM at once, mid-message: a recipient the server accepted may never reach the ledger,
and the task, handed back as lost, sends it again.

So each prefork pool process defers SIGTERM while it runs a task (``DeferredExit``): it
finishes the message in hand, records it, hands its result to the main process, and then
exits. An idle pool process still exits at once, so billiard's own SIGTERM (what a cold
shutdown sends its pool) still ends every process, only never mid-message. The handler is
installed as the first task starts: billiard installs its own after ``worker_process_init``.
Thread and solo pools run tasks in the main process, whose SIGTERM stays Celery's.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from billiard.common import _shutdown_cleanup
from celery.signals import task_postrun, task_prerun, worker_process_init

logger = logging.getLogger(__name__)

EXIT_AFTER_TASK_SECONDS = 0.5  # time for the pool process to hand its result to the main process


class DeferredExit:
    """SIGTERM in a pool process: exit now if idle, else once the task in hand has ended.

    The exit is billiard's own (``SystemExit`` from its handler, so ``finally`` blocks run and
    the process says goodbye to the pool), made by SIGALRM a moment after the task's result.
    """

    def __init__(self) -> None:
        self.busy = False
        self.requested = False

    def install(self) -> None:
        task_prerun.connect(self.started, weak=False)
        task_postrun.connect(self.finished, weak=False)

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if not self.busy:
            _shutdown_cleanup(signum, frame)  # billiard's own exit: SystemExit, finally blocks run
        if not self.requested:
            logger.info("Pool process asked to stop; finishing the message in hand first")
        self.requested = True

    def on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if not self.busy:
            _shutdown_cleanup(signal.SIGTERM, frame)

    def started(self, **kwargs: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # a threads or embedded worker: signals belong to the process, not to a task
        self.busy = True
        if signal.getsignal(signal.SIGTERM) != self.on_sigterm:
            signal.signal(signal.SIGTERM, self.on_sigterm)
            signal.signal(signal.SIGALRM, self.on_alarm)

    def finished(self, **kwargs: Any) -> None:
        self.busy = False
        if self.requested:  # the result still goes to the main process before this fires
            signal.setitimer(signal.ITIMER_REAL, EXIT_AFTER_TASK_SECONDS)


def defer_sigterm_in_pool_process(**kwargs: Any) -> None:
    """``worker_process_init`` receiver: runs in each prefork pool process as it starts."""
    DeferredExit().install()


def connect() -> None:
    worker_process_init.connect(defer_sigterm_in_pool_process, weak=False, dispatch_uid="mailqueue-sigterm")
