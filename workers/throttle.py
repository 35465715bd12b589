"""What a delivery round asks before it hands a message to a relay: may it go now?

The answer comes from the relay's fleet-wide bucket (``workers.ratelimit``). A short wait is
sat out here, before the message is sent: nothing is held that could have been sent. A wait
longer than MAILQUEUE_RATE_LIMIT_MAX_WAIT, or past the round's deadline, is the round's cue
to stop sending to that relay and defer the rest (``workers.tasks``): holding a message for
minutes would run into the visibility timeout.

A relay without a limit costs one Redis read per round, to see whether it is paused; a
relay with one costs one script call per message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from mailqueue.outcomes import RecipientOutcome
from workers.ratelimit import THROTTLE_CODES, RateLimiter
from workers.relays import Relay


class Throttle:
    """One round's view of the rate limits and pauses of the relays it sends to. Thread-safe."""

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        max_wait: float,
        pause: float,
        deadline: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limiter = limiter
        self.max_wait = max_wait
        self.pause_seconds = pause
        self.deadline = deadline  # on ``clock``
        self.clock = clock
        self.sleep = sleep
        self._unpaused_at: dict[str, float] = {}  # unlimited relays: paused until (clock), read once
        self._longest_wait = 0.0
        self._lock = threading.Lock()
        self._reading = threading.Lock()  # held while a relay's pause is read from Redis

    def admit(self, relay: Relay) -> float | None:
        """None once ``relay`` may take one more message; else the seconds to defer it by."""
        while True:
            wait = self._wait_for(relay)
            if wait <= 0:
                return None
            if self._too_long(wait):
                return wait
            self.sleep(wait)

    def ask(self, relay: Relay, *, wait: bool) -> bool | None:
        """``admit`` as a pipelined batch asks it (mailqueue.pipelining.MayBegin): True, go;
        False, defer the rest; None (only without ``wait``), go after a short wait."""
        if wait:
            return self.admit(relay) is None
        delay = self._wait_for(relay)
        if delay <= 0:
            return True
        return False if self._too_long(delay) else None

    def _too_long(self, wait: float) -> bool:
        """Whether ``wait`` is past what a round sits out (noted as the round's longest if so)."""
        if wait <= self.max_wait and self.clock() + wait <= self.deadline:
            return False
        with self._lock:
            self._longest_wait = max(self._longest_wait, wait)
        return True

    def _wait_for(self, relay: Relay) -> float:
        if relay.rate is not None:
            return self.limiter.draw(relay.name, relay.rate).wait
        with self._lock:
            until = self._unpaused_at.get(relay.name)
        if until is None:
            with self._reading:  # a round's connections start at once: one of them reads, once
                with self._lock:
                    until = self._unpaused_at.get(relay.name)
                if until is None:
                    until = self.clock() + self.limiter.paused_for(relay.name)
                    with self._lock:
                        self._unpaused_at.setdefault(relay.name, until)
        return max(0.0, until - self.clock())

    def observe(self, relay: Relay, outcomes: Iterable[RecipientOutcome]) -> bool:
        """After a send: a 421 or 454 pauses the relay for the whole fleet. True if it did."""
        code = next((outcome.code for outcome in outcomes if outcome.code in THROTTLE_CODES), None)
        if code is None:
            return False
        self.limiter.pause(relay.name, self.pause_seconds)
        with self._lock:
            self._unpaused_at[relay.name] = self.clock() + self.pause_seconds
        return True

    @property
    def longest_wait(self) -> float:
        """The longest wait that made this round defer (0: none did)."""
        return self._longest_wait
