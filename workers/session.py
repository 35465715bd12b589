"""One long-lived SMTP connection per worker process (per thread under the threads pool).

Opening an SMTP connection (TCP, EHLO, STARTTLS, AUTH) costs more than sending a message, so
a worker keeps one open across tasks. The connection is opened lazily by the first send,
reopened by the backend after a disconnect, retired after MAILQUEUE_CONNECTION_MAX_AGE seconds
or MAILQUEUE_CONNECTION_MAX_MESSAGES messages (servers and load balancers drop old ones), and
closed when the worker shuts down. (A connection the server dropped while idle is retried
once by the SMTP backend itself, before anything was sent.)
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from mailqueue.conf import settings
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.loading import import_string
from mailqueue.outcomes import RecipientOutcome, Status
from mailqueue.queue.envelope import DEFAULT_RELAY, Envelope
from workers.relays import Relay

if TYPE_CHECKING:
    from mailqueue.pipelining import MayBegin

logger = logging.getLogger(__name__)

# Django's EMAIL_TIMEOUT=None waits forever, which is right for one request's send but lets one
# silent relay hang every pool process of a fleet. Workers always bound each SMTP wait.
DEFAULT_SMTP_TIMEOUT = 60.0


class DeliveryBackend(Protocol):
    def send_serialized(
        self, message: bytes, *, sender: str, recipients: Sequence[str]
    ) -> list[RecipientOutcome]: ...

    def close(self) -> None: ...


def connection_lost(outcomes: Sequence[RecipientOutcome]) -> bool:
    """No reply at all for any recipient: the connection failed, not the recipients."""
    return bool(outcomes) and all(o.status is Status.TRANSIENT and o.code is None for o in outcomes)


def smtp_timeout(configured: float | None = None, *, source: str = "EMAIL_TIMEOUT") -> float:
    """Seconds one SMTP wait may take in a worker: EMAIL_TIMEOUT, or DEFAULT_SMTP_TIMEOUT if unset.

    One wait must end well inside the visibility timeout: if this worker's visibility keeper
    cannot reach Redis, its task is handed out again one timeout after the last refresh.
    ``configured``/``source``: a relay's own timeout, checked the same way.
    """
    if configured is None and source == "EMAIL_TIMEOUT":
        configured = settings.EMAIL_TIMEOUT
    timeout = DEFAULT_SMTP_TIMEOUT if configured is None else float(configured)
    visibility = float(settings.MAILQUEUE_VISIBILITY_TIMEOUT)
    if not timeout > 0:
        raise ImproperlyConfigured(f"{source} must be a positive number of seconds, got {configured!r}.")
    if timeout * 2 > visibility:
        source = source if configured is not None else "the workers' default SMTP timeout"
        raise ImproperlyConfigured(
            f"{source} ({timeout:g}s) must be at most half of MAILQUEUE_VISIBILITY_TIMEOUT ({visibility:g}s): "
            "a message waiting on a slow relay longer than that could be handed to a second worker. "
            "Lower EMAIL_TIMEOUT or raise MAILQUEUE_VISIBILITY_TIMEOUT."
        )
    return timeout


def build_backend(relay: Relay | None = None) -> DeliveryBackend:
    """The backend named by MAILQUEUE_DELIVERY_BACKEND, for ``relay`` (default: the EMAIL_* settings).

    A backend whose ``timeout`` is None (Django's "wait forever") gets ``smtp_timeout()``.
    A relay of MAILQUEUE_RELAYS is made like a mailer: from its own settings only.
    """
    timeout = smtp_timeout()
    path = settings.MAILQUEUE_DELIVERY_BACKEND
    backend_class = import_string(path, setting="MAILQUEUE_DELIVERY_BACKEND")
    if not callable(getattr(backend_class, "send_serialized", None)):
        raise ImproperlyConfigured(
            f"MAILQUEUE_DELIVERY_BACKEND={path!r} has no send_serialized(message, *, sender, recipients); "
            "workers need a backend that reports per-recipient outcomes, such as "
            "'mailqueue.backends.smtp.EmailBackend'."
        )
    if relay is None or relay.is_default:
        backend: DeliveryBackend = backend_class()
    else:
        backend = backend_class(alias=f"relay {relay.name}", **relay.arguments)
        own_timeout = getattr(backend, "timeout", None)
        if own_timeout is not None:
            smtp_timeout(own_timeout, source=f"MAILQUEUE_RELAYS[{relay.name!r}]['EMAIL_TIMEOUT']")
    if getattr(backend, "timeout", 0) is None:
        backend.timeout = timeout  # type: ignore[attr-defined]
    return backend


# A lost connection gets one fresh try; after a second in a row the rest are not attempted.
MAX_LOST_IN_A_ROW = 2


def _shifted(on_accepted: Callable[[int, list[str]], None], offset: int) -> Callable[[int, list[str]], None]:
    """``on_accepted`` for a part of a batch that starts at ``offset``."""
    return lambda position, accepted: on_accepted(offset + position, accepted)


class Session:
    """A backend plus the bookkeeping that decides when its connection is retired."""

    def __init__(
        self,
        factory: Callable[[], DeliveryBackend] = build_backend,
        *,
        max_age: float,
        max_messages: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.factory = factory
        self.max_age = max_age
        self.max_messages = max_messages
        self.clock = clock
        self.backend: DeliveryBackend | None = None
        self.opened_at: float | None = None  # time of the first send on the current connection
        self.sent = 0  # messages sent over the current connection

    @classmethod
    def from_settings(cls, relay: Relay | None = None) -> Session:
        return cls(functools.partial(build_backend, relay), max_age=float(settings.MAILQUEUE_CONNECTION_MAX_AGE),
                   max_messages=int(settings.MAILQUEUE_CONNECTION_MAX_MESSAGES))

    def send(self, envelope: Envelope) -> list[RecipientOutcome]:
        """Send one message over the long-lived connection; never raises for SMTP failures."""
        if self._expired():
            self.close()
        if self.backend is None:
            self.backend = self.factory()
        outcomes = self.backend.send_serialized(
            envelope.message, sender=envelope.sender, recipients=envelope.recipients)
        if connection_lost(outcomes):
            self._forget_connection()  # the backend dropped it; the next send opens a new one
            return outcomes
        if self.opened_at is None:
            self.opened_at = self.clock()
        self.sent += 1
        return outcomes

    def send_many(self, envelopes: Sequence[Envelope], *, may_begin: MayBegin | None = None,
                  on_accepted: Callable[[int, list[str]], None] | None = None) -> list[list[RecipientOutcome]]:
        """``send`` for each envelope, pipelined as one batch when the backend can
        (``send_serialized_many``: one round trip per message); never raises for SMTP failures.
        A batch longer than the connection's remaining MAX_MESSAGES is split at the retirement.
        ``may_begin`` is asked before each message; once it says no, the rest get an empty
        list: not attempted. ``on_accepted(position, recipients)`` hears of each acceptance
        before the next message is sent (the ledger); an error from it propagates."""
        results: list[list[RecipientOutcome]] = []
        rest = list(envelopes)
        lost = 0  # connections lost in a row
        while rest:
            if self._expired():
                self.close()
            if self.backend is None:
                self.backend = self.factory()
            offset = len(results)
            many = getattr(self.backend, "send_serialized_many", None)
            if many is None:  # a backend of a test or a third party: one at a time
                for position, envelope in enumerate(rest, start=offset):
                    if may_begin is not None and not may_begin(True):
                        return results + [[] for _ in envelopes[position:]]
                    outcomes = self.send(envelope)
                    accepted = [outcome.recipient for outcome in outcomes if outcome.accepted]
                    if on_accepted is not None and accepted:
                        on_accepted(position, accepted)
                    results.append(outcomes)
                return results
            room = max(1, self.max_messages - self.sent)
            part, rest = rest[:room], rest[room:]
            told = None if on_accepted is None else _shifted(on_accepted, offset)
            done = many([(e.message, e.sender, e.recipients) for e in part], may_begin=may_begin, on_accepted=told)
            begun = next((n for n, outcomes in enumerate(done) if not outcomes), len(done))
            results += done[:begun]
            rest = part[begun:] + rest
            if any(connection_lost(outcomes) for outcomes in done[:begun]):
                self._forget_connection()  # the backend dropped it; the next send opens a new one
                lost += 1
                if lost < MAX_LOST_IN_A_ROW:
                    continue
            else:
                lost = 0
                if self.opened_at is None:
                    self.opened_at = self.clock()
                self.sent += begun
            if begun < len(part) or lost:  # may_begin said no, or the relay is out of reach
                return results + [[] for _ in rest]
        return results

    def _expired(self) -> bool:
        if self.opened_at is None:
            return False
        return self.sent >= self.max_messages or self.clock() - self.opened_at >= self.max_age

    def _forget_connection(self) -> None:
        self.opened_at = None
        self.sent = 0

    def close(self) -> None:
        """Close the connection (it is reopened by the next send); errors are logged, not raised."""
        backend, self.backend = self.backend, None  # the next send builds it from today's settings
        self._forget_connection()
        if backend is None:
            return
        try:
            backend.close()
        except Exception:
            logger.warning("Closing the SMTP connection failed", exc_info=True)


_local = threading.local()
_sessions: list[Session] = []
_sessions_lock = threading.Lock()


def current(relay: Relay | None = None) -> Session:
    """This thread's session with ``relay`` (default: the EMAIL_* settings), created on first use.

    A relay whose settings changed (a test, a reload) gets a new session; the old one is closed.
    """
    sessions: dict[str, tuple[dict[str, Any], Session]] = _local.__dict__.setdefault("sessions", {})
    name = relay.name if relay is not None else DEFAULT_RELAY
    arguments = dict(relay.arguments) if relay is not None else {}
    known = sessions.get(name)
    if known is not None and known[0] != arguments:
        known[1].close()
        known = None
    if known is None:
        known = sessions[name] = (arguments, Session.from_settings(relay))
    session = known[1]
    with _sessions_lock:
        if session not in _sessions:  # new, or closed by close_all() and used again
            _sessions.append(session)
    return session


def close_all(**_signal_kwargs: Any) -> None:
    """Close every session of this process (worker shutdown). Usable as a signal receiver."""
    with _sessions_lock:
        sessions = list(_sessions)
        _sessions.clear()
    for session in sessions:
        session.close()
