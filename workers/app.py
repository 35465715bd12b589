"""The workers' Celery app, configured from mailqueue's settings: ``celery -A workers worker``.

At least once, never twice:

- late acknowledgement, and a task whose worker process dies is requeued;
- prefetch 1, so a crashed worker strands at most one task per process;
- kombu's Redis transport returns a dead worker's unacknowledged tasks once
  MAILQUEUE_VISIBILITY_TIMEOUT has passed, but only when some worker sweeps for them; by
  default that sweep runs every 100 s (unacked_restore_interval 10 s x throttle 10), so we
  sweep at a fraction of the timeout instead;
- the sweep cannot tell a dead worker from a slow one, so each worker keeps the tasks it
  holds fresh (``workers.visibility``): a slow round never runs in two workers at once;
- retries never use countdowns (see ``workers.deferral``).

The configuration is computed lazily, when the app first reads it, so importing ``workers``
never connects anywhere nor starts the embedded Redis.
"""

from __future__ import annotations

import logging
from os import EX_CONFIG
from typing import Any
from urllib.parse import urlsplit

from celery import Celery, bootsteps
from celery.signals import worker_process_shutdown

from mailqueue.conf import settings
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.queue import keys
from mailqueue.queue.broker import broker_url, result_backend_url, shared_celery_config
from mailqueue.queue.envelope import DELIVER_TASK, summarize
from mailqueue.queue.memory import high_water_fraction
from mailqueue.queue.priority import DEFAULT_PRIORITY, PRIORITIES, taken_steps
from workers import authenticity, connection_slots, session, tasks
from workers import signals as pool_signals
from workers.deferral import DeferralPoller, Deferrals, DeferredTask
from workers.garbage import RefusedMessages
from workers.redelivery import Redelivery
from workers.relays import relays
from workers.store import Stores, redis_client
from workers.transport import Transport
from workers.visibility import VisibilityKeeper

logger = logging.getLogger(__name__)


def restore_interval(visibility_timeout: float) -> float:
    """How often to sweep for a dead worker's tasks: a quarter of the timeout, 1 to 10 s."""
    return max(1.0, min(10.0, visibility_timeout / 4))


def celery_config() -> dict[str, Any]:
    config = shared_celery_config()
    timeout = settings.MAILQUEUE_VISIBILITY_TIMEOUT
    url = broker_url()
    if urlsplit(url).scheme in ("redis", "rediss"):
        # Garbage on the queue list is moved aside; a full Redis pauses the taking (workers.transport).
        config["broker_transport"] = Transport
    config.update(
        broker_url=url,
        result_backend=result_backend_url(),
        broker_transport_options={
            **config["broker_transport_options"],
            "unacked_restore_interval": restore_interval(timeout),
            "unacked_restore_throttle": 1,
            # The sweep's lock outlives a worker killed while holding it; keep that short.
            "unacked_mutex_expire": max(5, min(300, int(timeout))),
        },
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A redelivered task whose result is already SUCCESS is skipped, not run again.
        worker_deduplicate_successful_tasks=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_routes={DELIVER_TASK: {"queue": settings.MAILQUEUE_QUEUE}},
    )
    return config


class DeliveryLifecycle(bootsteps.StartStopStep):
    """Runs in the worker's main process: the deferred-retry poller and closing SMTP sessions.

    A bootstep rather than worker_ready/worker_shutdown receivers: it runs for every kind of
    worker (``celery worker``, and the embedded worker of the tests, which sends neither
    signal), on warm and cold shutdown alike.
    """

    requires = {"celery.worker.components:Pool"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.pollers: list[DeferralPoller] = []
        self.keeper: VisibilityKeeper | None = None

    def start(self, parent: Any) -> None:
        try:
            check_configuration(parent.app)
        except ImproperlyConfigured as error:  # must not start taking tasks; say why in one line
            logger.critical("%s", error)
            raise SystemExit(EX_CONFIG) from None
        for what, store_keys in (("deferred-retry", None), ("scheduled-send", keys.scheduled_keys())):
            try:
                poller = make_poller(parent.app, store_keys=store_keys)
                poller.start()
                self.pollers.append(poller)
            except Exception:
                logger.exception("Could not start the %s poller; that mail waits for another worker", what)
        try:
            self.keeper = make_visibility_keeper(parent.app)
            self.keeper.start()
        except Exception:
            logger.exception("Could not start the visibility keeper; a round longer than "
                             "MAILQUEUE_VISIBILITY_TIMEOUT may run twice")

    def stop(self, parent: Any) -> None:
        for poller in self.pollers:
            try:
                poller.stop()
            except Exception:
                logger.exception("Stopping a poller failed")
        self.pollers = []
        if self.keeper is not None:
            self.keeper.stop()
        connection_slots.give_back_all()
        session.close_all()

    terminate = stop


def check_configuration(app: Celery) -> None:
    """Build what every task builds, once, at start-up.

    A task that fails on a bad setting would be acknowledged (late acks ack failures too)
    and its mail would leave the queue; refusing to start keeps the mail where it is.
    """
    try:
        Stores.from_settings(url=app.conf.broker_url)
        for relay in relays().values():  # each relay's settings, its limit and its timeout
            session.build_backend(relay).close()
        authenticity.check_configuration()
        high_water_fraction()  # workers.transport reads it on every new channel
        taken_steps()  # MAILQUEUE_WORKER_PRIORITIES, read there too
        connection_slots.idle_timeout()  # read by the keeper of a relay's fleet-wide limit
    except (ImproperlyConfigured, ValueError, TypeError) as error:
        raise ImproperlyConfigured(f"This worker is misconfigured and will not start: {error}") from error


def make_poller(app: Celery, *, store_keys: list[str] | None = None) -> DeferralPoller:
    """The poller of the deferred retries, or of another store of their layout (scheduled sends)."""
    def enqueue(entry: DeferredTask) -> None:
        # An entry read from Redis: a priority that is not ours is sent as normal, not refused forever.
        step = PRIORITIES.get(entry.priority or DEFAULT_PRIORITY, PRIORITIES[DEFAULT_PRIORITY])
        app.send_task(DELIVER_TASK, args=[entry.payloads],
                      kwargs={"attempt": entry.attempt, "report": entry.report},
                      argsrepr=summarize(entry.payloads), kwargsrepr=f"{{'attempt': {entry.attempt}}}",
                      task_id=entry.task_id, queue=entry.queue or settings.MAILQUEUE_QUEUE, priority=step,
                      headers=entry.headers())  # signed by whoever stored it (a worker, or the producer)

    return DeferralPoller(Deferrals(redis_client(app.conf.broker_url), store_keys=store_keys), enqueue,
                          interval=float(settings.MAILQUEUE_DEFERRED_POLL_INTERVAL if store_keys is None
                                         else settings.MAILQUEUE_SCHEDULE_POLL_INTERVAL))


def make_visibility_keeper(app: Celery) -> VisibilityKeeper:
    return VisibilityKeeper(redis_client(app.conf.broker_url), index_key=keys.unacked_index_key(),
                            visibility_timeout=float(settings.MAILQUEUE_VISIBILITY_TIMEOUT))


def close_sessions_safely(**kwargs: Any) -> None:
    """Signal receiver (prefork child exiting): a failure is logged, never fatal."""
    try:
        connection_slots.give_back_all()
        session.close_all()
    except Exception:
        logger.exception("Closing SMTP sessions at process shutdown failed")


worker_process_shutdown.connect(close_sessions_safely, weak=False)
pool_signals.connect()  # pool processes finish the message in hand on SIGTERM to the group


def create_app(main: str = "workers") -> Celery:
    app = Celery(main, set_as_current=False)
    app.add_defaults(celery_config)  # evaluated when the app first reads its configuration
    app.steps["worker"].add(DeliveryLifecycle)
    app.steps["consumer"].add(Redelivery)  # a Redis outage strands no task, nor hands out a running one
    app.steps["consumer"].add(RefusedMessages)  # what Celery refuses (pickle, unknown task) is moved aside
    tasks.register(app)
    return app


app = create_app()
