"""Several long-lived SMTP connections per worker process, working at once.

With pipelining a connection costs one round trip per message, so a relay 20 ms away gives
about 50 messages a second per connection: throughput comes from connections, not from
processes. Each process keeps a small thread pool per relay, MAILQUEUE_CONNECTIONS_PER_PROCESS
threads (or the relay's own CONNECTIONS_PER_PROCESS); each thread has its own sessions
(workers.session is per thread, keyed by relay), so a relay's pool is also the process's cap
on connections to it, whatever the Celery pool.

The threads talk SMTP, ask the round's gate before each message (deadline, rate limit) and
hand each acceptance to the ledger, which writes them behind the connections in batches, with
no more unwritten at once than the round has connections (workers.ledger.GroupCommit).
The round (workers.tasks) does the rest of the bookkeeping (report, statistics,
pauses) in its own thread as each chunk comes back. Threads are used rather than a selector
loop because smtplib sets up the connection (TLS, AUTH) and blocks in the socket, where the
GIL is released; the pools are made lazily, again after a fork.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from mailqueue.conf import settings
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.outcomes import RecipientOutcome
from mailqueue.queue.envelope import Envelope
from workers import connection_slots, session
from workers.connection_slots import ConnectionSlots
from workers.relays import Relay

if TYPE_CHECKING:
    from mailqueue.pipelining import MayBegin

CHUNK_MIN = 4  # a small round stays on one connection (the last body of a chunk costs a round trip)
CHUNK_MAX = 32  # the round hears of outcomes (report, counts, throttle) at least this often

_lock = threading.Lock()
_pools: dict[str, tuple[tuple[int, int], ThreadPoolExecutor]] = {}  # per relay name


def width(relay: Relay | None = None) -> int:
    """MAILQUEUE_CONNECTIONS_PER_PROCESS, checked; for a ``relay`` that sets its own
    CONNECTIONS_PER_PROCESS (in MAILQUEUE_RELAYS), that one; never more than the relay's
    fleet-wide MAX_CONNECTIONS."""
    value = int(settings.MAILQUEUE_CONNECTIONS_PER_PROCESS)
    if value < 1:
        raise ImproperlyConfigured(f"MAILQUEUE_CONNECTIONS_PER_PROCESS must be at least 1, got {value!r}.")
    if relay is None:
        return value
    if relay.connections is not None:
        value = relay.connections
    return value if relay.max_connections is None else min(value, relay.max_connections)


def chunk_size(count: int) -> int:
    """How many envelopes one connection takes at a time, for a round of ``count``."""
    return max(CHUNK_MIN, min(CHUNK_MAX, math.ceil(count / width())))


def submit(relay: Relay, envelopes: Sequence[Envelope], may_begin: MayBegin,
           on_accepted: Callable[[int, list[str]], None], *, slots: ConnectionSlots | None = None,
           wanted: Callable[[], bool] | None = None) -> Future[list[list[RecipientOutcome]]]:
    """Send ``envelopes`` over one of this process's connections to ``relay``. In that
    connection's thread, ``may_begin`` is asked before each message (those it refuses get an
    empty list) and ``on_accepted`` is told of each acceptance (see Session.send_many).
    Each relay has its own threads, as many as its width: that is this process's cap on
    connections to it, whatever the Celery pool and however many rounds run at once.
    ``slots``: the relay's fleet-wide limit; the connection holds a lease while it is open,
    and waits for one while ``wanted()``."""
    return _executor(relay).submit(_send, relay, envelopes, may_begin, on_accepted, slots, wanted)


def _send(relay: Relay, envelopes: Sequence[Envelope], may_begin: MayBegin,
          on_accepted: Callable[[int, list[str]], None], slots: ConnectionSlots | None,
          wanted: Callable[[], bool] | None) -> list[list[RecipientOutcome]]:
    current = session.current(relay)
    if slots is None:
        return current.send_many(envelopes, may_begin=may_begin, on_accepted=on_accepted)
    lease = connection_slots.lease_for(current)
    with lease.in_use:  # the keeper closes idle connections, never one that is sending
        if not lease.hold(slots, wanted):
            return [[] for _ in envelopes]  # the round ended before a slot came free: not begun
        try:
            return current.send_many(envelopes, may_begin=may_begin, on_accepted=on_accepted)
        finally:
            lease.used_at = time.monotonic()


def _executor(relay: Relay) -> ThreadPoolExecutor:
    with _lock:
        # A forked child does not inherit the threads; a changed setting (a test) gets a new pool.
        identity = (os.getpid(), width(relay))
        found = _pools.get(relay.name)
        if found is None or found[0] != identity:
            if found is not None:
                found[1].shutdown(wait=False)
            found = (identity, ThreadPoolExecutor(max_workers=identity[1],
                                                  thread_name_prefix=f"mailqueue-smtp-{relay.name}"))
            _pools[relay.name] = found
        return found[1]
