"""The delivery task, ``mailqueue.deliver``: one round of delivery for a batch of payloads.

A round sends every message over the worker's long-lived SMTP connection, skipping the
recipients the ledger says were already accepted. Then:

- every recipient settled (accepted, or failed for good): the task returns the report;
- some recipients failed transiently and the policy allows another try: the round stores its
  partial report as state DEFERRED, parks the still-pending recipients in the deferred set
  and ends with ``Ignore`` (acked, no result stored); the poller re-sends the task later
  with the same id, so ``AsyncResult(task_id).get()`` returns only the final report;
- out of retries: the pending recipients fail with the last error the server gave.

A message that fails for good is dead-lettered. If the round itself crashes, its unsettled
messages are dead-lettered with the traceback: with late acks, a task that raises is acked,
and its mail would otherwise be lost. If Redis (where that state lives) is away, each write
that records an outcome waits for it (``workers.durable``); only if it stays away longer is
the task handed back to the broker.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Any

from celery import Celery, Task
from celery.exceptions import Ignore, Reject
from redis.exceptions import RedisError

from mailqueue.conf import settings
from mailqueue.exceptions import DeliveryFailed, ImproperlyConfigured, UnsupportedPayload
from mailqueue.outcomes import RecipientOutcome, Status
from mailqueue.queue import measures
from mailqueue.queue.envelope import DELIVER_TASK, Envelope
from mailqueue.queue.priority import priority_of
from mailqueue.queue.signing import configured_keys
from workers import authenticity, fanout, session
from workers.arguments import TaskArguments, Unreadable
from workers.cancelled import end_if_cancelled
from workers.connection_slots import ConnectionSlots
from workers.deferral import DeferredTask
from workers.durable import retry_redis
from workers.ledger import GroupCommit
from workers.relays import Relay, UnknownRelay, relays
from workers.report import (
    FAILED,
    PENDING,
    Report,
    fail_recipient,
    failures,
    last_error,
    message_entry,
    new_report,
    recipients_with,
    record_ledger_hit,
    record_outcome,
    settle,
    tally,
)
from workers.store import Stores
from workers.throttle import Throttle

if TYPE_CHECKING:
    from mailqueue.pipelining import MayBegin

logger = logging.getLogger(__name__)

DEFERRED = "DEFERRED"  # task state while a round waits in the deferred set
# What Flower and the log show of a report: its counts and first messages (the whole report is
# in the result backend). Celery's saferepr walks the report in Python, about 27 us a message
# at 64 KiB: a tenth of the worker's CPU per message.
RESULT_REPR_MAXSIZE = 1024
# A lost connection gets one fresh try; after that the rest of the batch waits (one rule, the session's).
MAX_LOST_CONNECTIONS = session.MAX_LOST_IN_A_ROW
# A signed task with arguments beyond (payloads, attempt, report): someone added them.
UNSIGNED_EXTRAS = "unsigned: arguments a signed task does not cover were added to it"


def arrival_queue(task: Task) -> str | None:
    """The queue this task was taken from (the routing key on the default exchange), if known."""
    queue = (task.request.delivery_info or {}).get("routing_key")
    return queue if isinstance(queue, str) and queue else None


def arrival_priority(task: Task) -> str | None:
    """The priority this task was sent with ("high", "normal", "low"), if it has one of ours."""
    return priority_of((task.request.delivery_info or {}).get("priority"))


def unreadable_key(letter_id: str) -> str:
    """The report key of an unreadable payload that has no Message-ID of its own."""
    return f"<unreadable payload, dead letter {letter_id}>"


class DeliveryRound:
    """The state of one round: the batch, the report so far, and the stores it writes to."""

    def __init__(self, *, task_id: str, attempt: int, report: Report | None, stores: Stores,
                 relays: dict[str, Relay]) -> None:
        self.task_id = task_id
        self.relays = relays
        self.attempt = attempt  # 1 for the first try
        self.stores = stores
        self.report = report or new_report(task_id, hostname=stores.hostname)
        self.report.update(attempts=attempt, retries=attempt - 1, hostname=stores.hostname)
        self.envelopes: dict[str, Envelope] = {}
        self.settled: set[str] = set()
        self.counts: Counter[str] = Counter()  # stats to add, written once per round
        self.latencies: list[float] = []  # enqueue-to-acceptance seconds, written with the counts
        self.already: dict[str, set[str]] = {}
        # Stay well inside the visibility timeout, or Redis hands this task to a second worker.
        self.deadline = time.monotonic() + settings.MAILQUEUE_VISIBILITY_TIMEOUT / 2
        self.queue: str | None = None  # where the task came from: a dead letter's requeue goes back there
        self.priority: str | None = None
        self.throttle = Throttle(stores.limiter, max_wait=float(settings.MAILQUEUE_RATE_LIMIT_MAX_WAIT),
                                 pause=float(settings.MAILQUEUE_THROTTLE_PAUSE), deadline=self.deadline)
        self.held: set[str] = set()  # relays this round stopped sending to (rate limit or pause)
        self.throttled: set[str] = set()  # Message-IDs held back by them, not attempted

    # --- sending ---------------------------------------------------------------------------
    def run(self, payloads: list[dict[str, Any]]) -> None:
        for index, payload in enumerate(payloads):
            self._parse(index, payload)
        self.already = retry_redis(lambda: self.stores.ledger.accepted_many(list(self.envelopes)),
                                   what="read the ledger")
        self._send_all(list(self.envelopes.values()))

    def _ledger_writer(self, *, window: int) -> GroupCommit:
        """Acceptances are held in memory until the ledger has them: a Redis blink must not make
        this task run again first (retry_redis waits it out, within a budget)."""
        return GroupCommit(lambda accepted: retry_redis(lambda: self.stores.ledger.record_many(accepted),
                                                        what="record acceptances in the ledger"), window=window)

    def _send_all(self, envelopes: list[Envelope]) -> None:
        """Hand chunks of the batch to up to MAILQUEUE_CONNECTIONS_PER_PROCESS connections
        (workers.fanout). Each acceptance is handed to the ledger from its connection's thread
        and written behind it, no more unwritten at once than the round has connections
        (workers.ledger.GroupCommit); all of them are written before the round ends, so
        before the task is acked."""
        waiting = deque(envelopes)
        size = fanout.chunk_size(len(envelopes))
        busy = sum(min(fanout.width(self.relays[name]), math.ceil(count / size))  # connections at once
                   for name, count in Counter(envelope.relay for envelope in envelopes).items())
        ledger_writes = self._ledger_writer(window=max(1, min(fanout.width(), busy)))
        slots = {name: ConnectionSlots(self.stores.client, name, relay.max_connections)  # fleet-wide limits
                 for name, relay in self.relays.items() if relay.max_connections is not None}
        in_flight: dict[Future[list[list[RecipientOutcome]]], list[Envelope]] = {}
        lost_in_a_row = 0
        try:
            while waiting or in_flight:
                while waiting and len(in_flight) < fanout.width():
                    if lost_in_a_row >= MAX_LOST_CONNECTIONS:
                        while waiting:
                            self._postpone(waiting.popleft(), "not attempted: the SMTP server could not be reached")
                        break
                    chunk = self._chunk(waiting, size)
                    if chunk:
                        relay = self.relays[chunk[0].relay]
                        in_flight[fanout.submit(relay, chunk, self._may_begin(relay),
                                                self._on_accepted(chunk, ledger_writes),
                                                slots=slots.get(relay.name), wanted=self._wanted(relay))] = chunk
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    chunk = in_flight.pop(future)
                    lost_in_a_row = self._settle_chunk(chunk, future.result(), lost_in_a_row)
        finally:  # no connection of this round sends on after the round ends, nor is left unwritten
            wait(in_flight)
            ledger_writes.flush()

    @staticmethod
    def _on_accepted(chunk: list[Envelope], ledger_writes: GroupCommit) -> Callable[[int, list[str]], None]:
        def record(position: int, recipients: list[str]) -> None:
            ledger_writes.record(chunk[position].message_id, recipients)
        return record

    def _wanted(self, relay: Relay) -> Callable[[], bool]:
        """Whether this round still sends to ``relay`` (a connection waiting for a slot asks)."""
        return lambda: time.monotonic() <= self.deadline and relay.name not in self.held

    def _may_begin(self, relay: Relay) -> MayBegin:
        """What a connection asks before each message it begins (in its own thread): the
        round's deadline, then the relay's rate limit or pause (workers.throttle)."""
        def ask(wait: bool) -> bool | None:
            if time.monotonic() > self.deadline or relay.name in self.held:
                return False
            verdict = self.throttle.ask(relay, wait=wait)
            if verdict is False:
                self.held.add(relay.name)
            return verdict
        return ask

    @staticmethod
    def _attempted(chunk: list[Envelope], results: list[list[RecipientOutcome]]
                   ) -> tuple[list[Envelope], list[list[RecipientOutcome]]]:
        """The envelopes of a chunk that were begun, and their outcomes."""
        pairs = [(envelope, outcomes) for envelope, outcomes in zip(chunk, results, strict=True) if outcomes]
        return [envelope for envelope, _ in pairs], [outcomes for _, outcomes in pairs]

    def _settle_chunk(self, chunk: list[Envelope], results: list[list[RecipientOutcome]], lost_in_a_row: int) -> int:
        """Record a chunk that came back and postpone what it did not begin; returns the
        count of lost connections in a row after it."""
        for envelope, outcomes in zip(chunk, results, strict=True):
            if outcomes:
                lost_in_a_row = lost_in_a_row + 1 if session.connection_lost(outcomes) else 0
                continue
            message_entry(self.report, envelope.message_id)["attempts"] -= 1  # not attempted after all
            if time.monotonic() > self.deadline:
                self._postpone(envelope, "not attempted: the task ran for half the visibility timeout")
            elif envelope.relay in self.held:
                self.throttled.add(envelope.message_id)
                relay = self.relays[envelope.relay].describe()
                self._postpone(envelope, f"not attempted: {relay} is held back by its rate limit or a pause")
            else:
                lost_in_a_row = MAX_LOST_CONNECTIONS  # the session gave up on the relay: so does the round
                self._postpone(envelope, "not attempted: the SMTP server could not be reached")
        self._report(*self._attempted(chunk, results))
        for envelope in chunk:  # a postponed one is still pending: settle() leaves it
            self._settle(self.envelopes[envelope.message_id])
        return lost_in_a_row

    def _chunk(self, waiting: deque[Envelope], size: int) -> list[Envelope]:
        """The next envelopes for one connection: one relay's, with only the recipients still to do.
        Those with nothing left to send are settled on the way."""
        chunk: list[Envelope] = []
        while waiting and len(chunk) < size:
            envelope = waiting[0]
            if chunk and envelope.relay != chunk[0].relay:
                break
            waiting.popleft()
            todo = self._prepare(envelope)
            if todo is None:
                self._settle(envelope)
            else:
                chunk.append(todo)
        return chunk

    def _parse(self, index: int, payload: Any) -> None:
        """Read one payload on its own: a bad one is dead-lettered and never harms the others."""
        if isinstance(payload, Unreadable):  # not a payload at all (workers.arguments)
            self._dead_letter_payload(index, payload.value, payload.reason)
            return
        try:
            envelope = Envelope.from_payload(payload)
        except UnsupportedPayload as error:
            self._dead_letter_payload(index, payload, str(error))
            return
        except Exception as error:  # a bug in the reader: it costs this payload, not its batch
            logger.exception("Payload #%d of task %s crashed the payload reader", index, self.task_id)
            self._dead_letter_payload(index, payload, f"unreadable payload: {error!r}")
            return
        if envelope.relay not in self.relays:  # never sent through another relay; kept for repair
            self._dead_letter_payload(index, payload, str(UnknownRelay(envelope.relay, list(self.relays))))
            return
        self._reclaim_message_id(envelope.message_id)
        earlier = self.envelopes.get(envelope.message_id)
        if earlier is not None:  # the Message-ID is the delivery's identity: one delivery, all recipients
            logger.warning("Task %s carries Message-ID %s twice; delivering it once to all its recipients",
                           self.task_id, envelope.message_id)
            envelope = earlier.with_recipients(dict.fromkeys(earlier.recipients + envelope.recipients))
        self.envelopes[envelope.message_id] = envelope

    def _prepare(self, envelope: Envelope) -> Envelope | None:
        """The envelope narrowed to the recipients the ledger has not seen accepted, or None."""
        message_id = envelope.message_id
        message_entry(self.report, message_id)["attempts"] += 1
        already = self.already.get(message_id, set())
        todo = []
        for recipient in dict.fromkeys(envelope.recipients):  # one copy per address
            if recipient in already:
                record_ledger_hit(self.report, message_id, recipient)
            else:
                todo.append(recipient)
        return envelope.with_recipients(todo) if todo else None

    def _report(self, sent: list[Envelope], results: list[list[RecipientOutcome]]) -> None:
        """A chunk's outcomes into the report and the counts (the ledger already has its acceptances)."""
        accepted_at = time.time()
        for envelope, outcomes in zip(sent, results, strict=True):
            message_id = envelope.message_id
            self.throttle.observe(self.relays[envelope.relay], outcomes)
            answered = {outcome.recipient for outcome in outcomes}
            outcomes = outcomes + [RecipientOutcome(r, Status.TRANSIENT, None, "no outcome reported by the backend")
                                   for r in envelope.recipients if r not in answered]
            self.counts.update(measures.reply_field(outcome.code) for outcome in outcomes)
            self.latencies += [measures.observation(accepted_at - envelope.enqueued_at)
                               for outcome in outcomes if outcome.accepted]
            for outcome in outcomes:
                record_outcome(self.report, message_id, outcome)
            self._log_outcomes(message_id, outcomes)

    def _postpone(self, envelope: Envelope, reason: str) -> None:
        for recipient in envelope.recipients:
            outcome = RecipientOutcome(recipient, Status.TRANSIENT, None, reason)
            record_outcome(self.report, envelope.message_id, outcome)

    # --- settling --------------------------------------------------------------------------
    def _settle(self, envelope: Envelope, *, error: dict[str, Any] | None = None) -> None:
        message_id = envelope.message_id
        status = settle(self.report, message_id)
        if status is None:
            return
        self.settled.add(message_id)
        if status != FAILED:
            self.counts["sent"] += 1
            return
        failed = failures(self.report, message_id)
        letter = retry_redis(lambda: self.stores.dead_letters.add(
            task_id=self.task_id,
            payload=envelope.with_recipients(failed).to_payload(),
            failures=failed,
            error=error or last_error(self.report, message_id),
            attempts=message_entry(self.report, message_id)["attempts"],
            hostname=self.stores.hostname, queue=self.queue, priority=self.priority,
        ), what=f"dead-letter {message_id}")
        message_entry(self.report, message_id)["dead_letter"] = letter.id
        self.counts.update(failed=1, dead_lettered=1)
        logger.warning("Message %s failed for %d recipient(s) (%s); dead-lettered as %s",
                       message_id, len(failed), letter.error.get("reply", ""), letter.id)

    def unsettled(self) -> list[Envelope]:
        return [envelope for message_id, envelope in self.envelopes.items() if message_id not in self.settled]

    def pending_payloads(self) -> list[dict[str, Any]]:
        """The unsettled messages, narrowed to their pending recipients: the next round's batch."""
        return [envelope.with_recipients(recipients_with(self.report, envelope.message_id, PENDING)).to_payload()
                for envelope in self.unsettled()]

    def give_up(self) -> None:
        """Out of retries: pending recipients fail with the last error the server gave."""
        for envelope in self.unsettled():
            for recipient in recipients_with(self.report, envelope.message_id, PENDING):
                fail_recipient(self.report, envelope.message_id, recipient, reply="no reply from the server")
            self._settle(envelope)

    def dead_letter_unsettled(self, error: BaseException, trace: str) -> None:
        """The round crashed: fail and dead-letter everything not settled yet, with the traceback."""
        reply = f"delivery task crashed: {error!r}"
        detail = {"code": None, "reply": reply, "permanent": False, "traceback": trace}
        for envelope in self.unsettled():
            for recipient in envelope.recipients:
                fail_recipient(self.report, envelope.message_id, recipient, reply=reply)  # keeps acceptances
            self._settle(envelope, error=detail)

    def _dead_letter_payload(self, index: int, payload: Any, reason: str) -> None:
        letter = retry_redis(lambda: self.stores.dead_letters.add(
            task_id=self.task_id,
            payload=payload if isinstance(payload, dict) else {"raw": payload},
            failures={}, error={"code": None, "reply": reason, "permanent": True},
            attempts=self.attempt, hostname=self.stores.hostname, queue=self.queue, priority=self.priority,
        ), what=f"dead-letter payload #{index}")
        # Reported under the Message-ID it claims, so its producer finds it, unless that id
        # belongs to another message of this task (see _reclaim_message_id).
        claimed = payload.get("message_id") if isinstance(payload, dict) else None
        key = unreadable_key(letter.id)
        if isinstance(claimed, str) and claimed and claimed not in self.envelopes | self.report["messages"]:
            key = claimed
        message_entry(self.report, key).update(status=FAILED, dead_letter=letter.id)
        self.counts.update(failed=1, dead_lettered=1)
        logger.warning("Payload #%d of task %s is unreadable (%s); dead-lettered as %s",
                       index, self.task_id, reason, letter.id)

    def _reclaim_message_id(self, message_id: str) -> None:
        """A readable message takes its Message-ID back from an unreadable payload that claimed it."""
        entry = self.report["messages"].get(message_id)
        if message_id in self.envelopes or entry is None:
            return
        if entry["status"] == FAILED and entry["dead_letter"] and not entry["recipients"]:  # only unreadables
            self.report["messages"][unreadable_key(entry["dead_letter"])] = self.report["messages"].pop(message_id)

    # --- ending ----------------------------------------------------------------------------
    def only_throttled(self) -> bool:
        """Whether every unsettled message was held back by a rate limit, none failed."""
        return all(envelope.message_id in self.throttled for envelope in self.unsettled())

    def defer(self, task: Task, payloads: list[dict[str, Any]], delay: float, *, retry: bool = True) -> None:
        """Park the pending recipients until the retry is due, and end this round.

        ``retry=False``: nothing failed, a rate limit held the mail back; the next round is not a retry.
        """
        due = time.time() + delay
        tally(self.report)["next_attempt_at"] = due
        self.counts.update(retries=int(retry), deferred=len(payloads))  # one retry round, its messages
        self.flush_counts()
        task.update_state(state=DEFERRED, meta=self.report)
        rounds_done = self.attempt if retry else self.attempt - 1
        entry = DeferredTask(task_id=self.task_id, payloads=payloads, attempt=rounds_done, report=self.report,
                             due=due, queue=arrival_queue(task), priority=arrival_priority(task))
        retry_redis(lambda: self.stores.deferrals.defer(entry), what=f"defer task {self.task_id}")
        logger.info("Task %s: %d message(s) deferred; attempt %d in %.1fs",
                    self.task_id, len(payloads), self.attempt + 1, delay)
        raise Ignore()

    def flush_counts(self) -> None:
        counts, latencies = self.counts, self.latencies
        retry_redis(lambda: self.stores.count(latencies, **counts), what="add to the totals")
        self.counts, self.latencies = Counter(), []

    def finish(self) -> Report:
        self.flush_counts()
        self.report.update(finished_at=time.time(), next_attempt_at=None)
        tally(self.report)
        # A stale round of this task, if a crash left one.
        retry_redis(lambda: self.stores.deferrals.cancel(self.task_id), what=f"clear stale rounds of {self.task_id}")
        logger.info("Task %s done: %d sent, %d failed, %d retries",
                    self.task_id, self.report["sent"], self.report["failed"], self.report["retries"])
        return self.report

    def _log_outcomes(self, message_id: str, outcomes: list[RecipientOutcome]) -> None:
        accepted = sum(outcome.accepted for outcome in outcomes)
        logger.info("Message %s: %d/%d recipient(s) accepted (task %s, attempt %d)",
                    message_id, accepted, len(outcomes), self.task_id, self.attempt)
        for outcome in outcomes:
            if not outcome.accepted:
                logger.warning("Message %s to %s: %s failure %s %s", message_id, outcome.recipient,
                               outcome.status.value, outcome.code, outcome.reply)


def deliver(self: Task, /, *args: Any, **kwargs: Any) -> Report:
    """``mailqueue.deliver(payloads, attempt=0, report=None)``: deliver a batch; returns the final report.

    Any arguments are taken (``workers.arguments``): for a shape a fixed signature refuses,
    Celery would raise TypeError before this runs and acknowledge the mail away.
    """
    task_id = self.request.id or str(uuid.uuid4())
    given = TaskArguments.bind(args, kwargs, received=self.request.args)  # pure; what the signature covers
    authenticity.enforce(self, task_id, given.payloads, given.attempt, given.report)  # forged: quarantined, ended
    if given.strays and configured_keys():  # not covered by the signature: never delivered, nor requeued
        authenticity.quarantine(self, task_id, [stray.value for stray in given.strays], None, None, UNSIGNED_EXTRAS)
        given = given.signed_part()
    for problem in given.problems():
        logger.warning("Delivery task %s: %s", task_id, problem)
    try:
        stores = Stores.from_settings(url=self.app.conf.broker_url, hostname=self.request.hostname)
        known_relays = relays()
    except (ImproperlyConfigured, ValueError, TypeError) as error:
        # Checked at start-up (workers.app.check_configuration); should a setting break later,
        # keep the task on the broker rather than acknowledge a failure and lose its mail.
        logger.error("Delivery task %s: worker misconfigured (%s); requeueing the task", task_id, error)
        raise Reject(error, requeue=True) from error
    cancelled = end_if_cancelled(task_id, given.batch(), stores)  # claims the task, unless it was cancelled
    if cancelled is not None:
        return cancelled
    delivery = DeliveryRound(task_id=task_id, attempt=given.rounds_done() + 1, report=given.carried_report(),
                             stores=stores, relays=known_relays)
    delivery.queue, delivery.priority = arrival_queue(self), arrival_priority(self)
    try:
        try:
            delivery.run(given.batch())
            pending = delivery.pending_payloads()
            if pending:
                held_for = delivery.throttle.longest_wait
                if delivery.only_throttled():
                    delivery.defer(self, pending, held_for, retry=False)
                delay = stores.policy.next_delay(delivery.attempt)
                if delay is not None:
                    delivery.defer(self, pending, max(delay, held_for))
                delivery.give_up()
        except (Ignore, Reject, RedisError):
            raise
        except Exception as error:
            logger.exception("Delivery task %s crashed; dead-lettering its unsettled messages", task_id)
            delivery.dead_letter_unsettled(error, traceback.format_exc())
        report = delivery.finish()
    except RedisError as error:
        # Redis stayed away longer than workers.durable's budget: nothing more can be recorded,
        # so hand the task back (should the hand-back fail too, workers.redelivery makes it
        # once Redis answers). Acceptances already recorded are never sent again.
        logger.error("Delivery task %s: Redis unavailable (%s); requeueing the task", task_id, error)
        raise Reject(error, requeue=True) from error
    if report.get("failed"):  # shown as failed in Flower and `celery events`; the report goes with it
        raise DeliveryFailed(report)
    return report


def register(app: Celery) -> None:
    """Attach the delivery task to a Celery app, under the name producers send.

    DeliveryFailed is an expected end (logged without a traceback); a result's repr (Flower,
    the log) is the report's first KiB: its counts and first messages.
    """
    app.task(name=DELIVER_TASK, bind=True, shared=False, throws=(DeliveryFailed,),
             resultrepr_maxsize=RESULT_REPR_MAXSIZE)(deliver)
