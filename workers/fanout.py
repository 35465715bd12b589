"""Several long-lived SMTP connections per worker process, working at once.

With pipelining a connection costs one round trip per message, so a relay 20 ms away gives
about 50 messages a second per connection: throughput comes from connections, not from
processes. Each process keeps a small thread pool of MAILQUEUE_CONNECTIONS_PER_PROCESS
threads; each thread has its own sessions (workers.session is per thread, keyed by relay), so
the pool is also the process's cap on connections per relay, whatever the Celery pool.

The threads only talk SMTP: a round (workers.tasks) hands them chunks of one relay's
envelopes and does every piece of bookkeeping (ledger, report, statistics, rate limits) in
its own thread as each chunk comes back, so none of that needs a lock. Threads are used rather
than a selector loop because smtplib sets up the connection (TLS, AUTH) and blocks in the
socket, where the GIL is released; the pool is made lazily, again after a fork.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from mailqueue.conf import settings
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.outcomes import RecipientOutcome
from mailqueue.queue.envelope import Envelope
from workers import session
from workers.relays import Relay

if TYPE_CHECKING:
    from mailqueue.pipelining import MayBegin

CHUNK_MIN = 4  # a small round stays on one connection (the last body of a chunk costs a round trip)
CHUNK_MAX = 32  # the ledger hears of acceptances at least every CHUNK_MAX messages

_lock = threading.Lock()
_pool: tuple[tuple[int, int], ThreadPoolExecutor] | None = None


def width() -> int:
    """MAILQUEUE_CONNECTIONS_PER_PROCESS, checked."""
    value = int(settings.MAILQUEUE_CONNECTIONS_PER_PROCESS)
    if value < 1:
        raise ImproperlyConfigured(f"MAILQUEUE_CONNECTIONS_PER_PROCESS must be at least 1, got {value!r}.")
    return value


def chunk_size(count: int) -> int:
    """How many envelopes one connection takes at a time, for a round of ``count``."""
    return max(CHUNK_MIN, min(CHUNK_MAX, math.ceil(count / width())))


def submit(relay: Relay, envelopes: Sequence[Envelope], may_begin: MayBegin,
           on_accepted: Callable[[int, list[str]], None]) -> Future[list[list[RecipientOutcome]]]:
    """Send ``envelopes`` over one of this process's connections to ``relay``. In that
    connection's thread, ``may_begin`` is asked before each message (those it refuses get an
    empty list) and ``on_accepted`` is told of each acceptance (see Session.send_many)."""
    return _executor().submit(
        lambda: session.current(relay).send_many(envelopes, may_begin=may_begin, on_accepted=on_accepted))


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        # A forked child does not inherit the threads; a changed setting (a test) gets a new pool.
        identity = (os.getpid(), width())
        if _pool is None or _pool[0] != identity:
            if _pool is not None:
                _pool[1].shutdown(wait=False)
            _pool = (identity, ThreadPoolExecutor(max_workers=identity[1], thread_name_prefix="mailqueue-smtp"))
        return _pool[1]
