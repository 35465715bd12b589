"""A relay's fleet-wide connection limit: one lease in Redis per open SMTP connection.

Relays limit how many connections one client may hold open (Postfix: 50 by default; many
providers far fewer). MAILQUEUE_CONNECTIONS_PER_PROCESS caps one process; a relay's
MAX_CONNECTIONS (MAILQUEUE_MAX_CONNECTIONS for the default relay) caps the whole fleet, however
many hosts and processes it has.

Each connection thread holds a lease while its connection is open: a member of one sorted set
per relay, scored by when the lease lapses (Redis's clock, so hosts whose clocks disagree
share one limit). One Lua script drops lapsed leases, then renews the holder's or takes a
free one, atomically. A thread without a lease waits for one, polling, for as long as its
round still wants to send to the relay (its deadline, a rate limit's hold: ``workers.tasks``);
a round that ends waiting postpones its messages, it never exceeds the limit.

Leases are given back when a connection is closed. A connection left unused for
MAILQUEUE_CONNECTION_IDLE_TIMEOUT seconds is closed by this process's keeper thread, so an
idle process does not sit on slots another needs; the keeper also renews the leases of
connections in use. A process that dies without giving its leases back loses them after
LEASE_SECONDS: that long, the fleet may open fewer connections than the limit, never more.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import redis

from mailqueue.conf import settings
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.queue import keys
from workers.durable import retry_redis

if TYPE_CHECKING:
    from workers.session import Session

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30.0  # a dead process's slots come free after this long
FIRST_POLL, LONGEST_POLL = 0.02, 0.5  # seconds between tries for a slot, doubling

# KEYS: the relay's slots.  ARGV: holder, limit, lease milliseconds.  Returns 1 if held.
_TAKE = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
  return 1
end
return 0
"""


def idle_timeout() -> float:
    """MAILQUEUE_CONNECTION_IDLE_TIMEOUT, checked."""
    value = settings.MAILQUEUE_CONNECTION_IDLE_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < LEASE_SECONDS:
        raise ImproperlyConfigured(f"MAILQUEUE_CONNECTION_IDLE_TIMEOUT must be a number of seconds above 0 and "
                                   f"below {LEASE_SECONDS:g} (a lease's length), not {value!r}.")
    return float(value)


class ConnectionSlots:
    """The leases on one relay's connections, fleet-wide."""

    def __init__(self, client: redis.Redis, relay: str, limit: int, *, lease_seconds: float = LEASE_SECONDS) -> None:
        if limit < 1:
            raise ValueError(f"A connection limit must be at least 1, got {limit!r}")
        self.client = client
        self.relay = relay
        self.limit = limit
        self.lease_ms = max(1, int(lease_seconds * 1000))
        self._take = client.register_script(_TAKE)

    def take(self, holder: str) -> bool:
        """Take a slot for ``holder``, or renew the one it holds; False if none is free."""
        return bool(self._take(keys=[keys.connection_slots_key(self.relay)],
                               args=[holder, self.limit, self.lease_ms]))

    def give_back(self, holder: str) -> None:
        self.client.zrem(keys.connection_slots_key(self.relay), holder)

    def held(self) -> int:
        """How many leases are live now (lapsed ones are dropped by the next take)."""
        live = self.client.zcount(keys.connection_slots_key(self.relay), f"({_redis_now_ms(self.client)}", "+inf")
        return int(cast(int, live))


def _redis_now_ms(client: redis.Redis) -> int:
    seconds, microseconds = cast(tuple[int, int], client.time())
    return int(seconds) * 1000 + int(microseconds) // 1000


@dataclass(eq=False)
class Lease:
    """One connection thread's lease on its session with a capped relay."""

    session: Session
    holder: str = field(default_factory=lambda: f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:12]}")
    slots: ConnectionSlots | None = None  # where the lease is held (None: not held)
    in_use: threading.Lock = field(default_factory=threading.Lock)  # held while the connection sends
    used_at: float = field(default_factory=time.monotonic)

    def hold(self, slots: ConnectionSlots, wanted: Callable[[], bool] | None = None,
             sleep: Callable[[float], None] = time.sleep) -> bool:
        """Take (or renew) a slot, waiting while ``wanted()`` (the round's deadline, its hold on
        the relay); False if that ended first.

        A lease that lapsed while the connection sat idle, and was taken meanwhile, means this
        connection must not be used: it is closed before waiting for a new slot."""
        poll = FIRST_POLL
        while True:
            if retry_redis(lambda: slots.take(self.holder), what=f"take a connection slot of relay {slots.relay!r}"):
                self.slots = slots
                return True
            if self.slots is not None:  # it held one, which lapsed and went to another connection
                self.close()
            if wanted is not None and not wanted():
                return False
            sleep(poll)
            poll = min(LONGEST_POLL, poll * 2)

    def close(self) -> None:
        """Close the connection and give its slot back (errors are logged: the lease lapses anyway)."""
        self.session.close()
        slots, self.slots = self.slots, None
        if slots is None:
            return
        try:
            slots.give_back(self.holder)
        except redis.RedisError as error:
            logger.warning("Could not give back a connection slot of relay %r (%s); it lapses in %g s",
                           slots.relay, error, LEASE_SECONDS)


class Keeper(threading.Thread):
    """This process's leases: renews those in use, closes connections idle too long."""

    def __init__(self) -> None:
        super().__init__(name="mailqueue-connection-slots", daemon=True)
        self.leases: list[Lease] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def add(self, lease: Lease) -> None:
        with self.lock:
            self.leases.append(lease)

    def run(self) -> None:
        while not self.stopping.wait(min(idle_timeout() / 2, LEASE_SECONDS / 3)):
            self.tend()

    def tend(self) -> None:
        """One pass: a lease in use is renewed; an idle one past the timeout is closed."""
        with self.lock:
            leases = list(self.leases)
        for lease in leases:
            if lease.slots is None:
                continue
            if not lease.in_use.acquire(blocking=False):  # sending: keep its slot
                try:
                    lease.slots.take(lease.holder)
                except redis.RedisError as error:
                    logger.warning("Could not renew a connection slot of relay %r: %s", lease.slots.relay, error)
                continue
            try:
                if time.monotonic() - lease.used_at >= idle_timeout():
                    lease.close()
            finally:
                lease.in_use.release()

    def close_all(self) -> None:
        """Close every connection with a lease and give the slots back (shutdown)."""
        self.stopping.set()
        with self.lock:
            leases, self.leases = self.leases, []
        for lease in leases:
            with lease.in_use:
                lease.close()


_keeper: tuple[int, Keeper] | None = None
_keeper_lock = threading.Lock()
_local = threading.local()


def lease_for(session: Session) -> Lease:
    """This thread's lease on ``session`` (made on first use, tended by the process's keeper)."""
    global _keeper
    lease: Lease | None = getattr(_local, "leases", {}).get(id(session))
    if lease is not None and lease.session is session:
        return lease
    lease = Lease(session)
    _local.__dict__.setdefault("leases", {})[id(session)] = lease
    with _keeper_lock:
        if _keeper is None or _keeper[0] != os.getpid():  # a forked child starts its own
            _keeper = (os.getpid(), Keeper())
            _keeper[1].start()
        _keeper[1].add(lease)
    return lease


def give_back_all(**_signal_kwargs: object) -> None:
    """Close this process's capped connections and give their slots back. A signal receiver."""
    with _keeper_lock:
        keeper = _keeper[1] if _keeper is not None and _keeper[0] == os.getpid() else None
    if keeper is not None:
        keeper.close_all()
