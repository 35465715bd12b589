"""Fleet-wide rate limits per relay: one token bucket in Redis that every worker draws from.

Celery's ``rate_limit`` counts per worker process, so four processes send four times the
limit a provider allows (SES, Mailgun and Postmark count per account). Here the bucket lives
in the shared Redis and one Lua script refills and draws from it atomically, using Redis's
own clock (``TIME``), so hosts whose clocks disagree still share one limit.

A bucket holds at most ``burst`` tokens (a tenth of a second's worth, at least one), so no
one-second window carries much more than the rate. Drawing never blocks: the script says how
many tokens it gave and how long until the next one; the round decides whether that wait is
short enough to sit out (``MAILQUEUE_RATE_LIMIT_MAX_WAIT``) or whether to defer the rest.

A relay that answers 421 or 454 ("too many messages", "try again later") is *paused* for the
whole fleet (``pause``): every bucket draw answers "wait" until the pause ends, instead of each
worker retrying on its own schedule and making the provider angrier.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import cast

import redis

from mailqueue.queue import keys

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"^\s*(?P<count>\d+(?:\.\d+)?)\s*/\s*(?P<unit>[smh])\s*$")

# Replies after which the relay is paused fleet-wide: "service not available, closing" and
# "insufficient system storage", which providers send when a sender goes too fast.
THROTTLE_CODES = frozenset({421, 454})

# KEYS: bucket, pause.  ARGV: rate per second, burst, tokens wanted.
# Returns {granted, milliseconds until another token (0 if all were granted)}.
_DRAW = """
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then return {0, pause} end
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate, burst, wanted = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 60000)
local wait = 0
if granted < wanted then wait = math.max(1, math.ceil((1 - tokens) / rate * 1000)) end
return {granted, wait}
"""

# KEYS: pause.  ARGV: milliseconds.  Only ever lengthens a pause another worker set.
_PAUSE = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
"""


@dataclass(frozen=True, slots=True)
class Rate:
    """A rate as written in settings ("20/s", "1200/m", "5000/h"): messages per period."""

    count: float
    period: float  # seconds

    @classmethod
    def parse(cls, text: str, *, setting: str) -> Rate | None:
        """``text`` as a Rate, None for "" (no limit); a ValueError names ``setting`` otherwise."""
        if not isinstance(text, str):
            raise ValueError(f"{setting} must be a string like '20/s', got {type(text).__name__} {text!r}")
        if not text.strip():
            return None
        match = _RATE.match(text)
        if match is None or float(match["count"]) <= 0:
            raise ValueError(f"{setting}={text!r} is not a rate: write messages per second, minute or hour, "
                             "such as '20/s', '600/m' or '10000/h' (empty: no limit).")
        return cls(float(match["count"]), _UNITS[match["unit"]])

    @property
    def per_second(self) -> float:
        return self.count / self.period

    @property
    def burst(self) -> int:
        """Tokens a bucket holds: a tenth of a second's worth, at least one."""
        return max(1, math.floor(self.per_second / 10))

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "m", 3600.0: "h"}[self.period]
        return f"{self.count:g}/{unit}"


@dataclass(frozen=True, slots=True)
class Draw:
    """What the bucket gave: ``granted`` tokens, and seconds until another one if short."""

    granted: int
    wait: float


class RateLimiter:
    """The buckets and pauses of every relay, in the Redis the fleet shares."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._draw = client.register_script(_DRAW)
        self._pause = client.register_script(_PAUSE)

    def draw(self, relay: str, rate: Rate | None, wanted: int = 1) -> Draw:
        """Take up to ``wanted`` tokens for ``relay`` (all of them at once without a limit)."""
        if wanted < 1:
            raise ValueError(f"wanted must be at least 1, got {wanted!r}")
        if rate is None:
            pause = self.paused_for(relay)
            return Draw(0, pause) if pause > 0 else Draw(wanted, 0.0)
        granted, wait_ms = self._draw(keys=[keys.rate_bucket_key(relay), keys.relay_pause_key(relay)],
                                      args=[rate.per_second, rate.burst, wanted])
        return Draw(int(granted), int(wait_ms) / 1000)

    def pause(self, relay: str, seconds: float) -> None:
        """Hold every worker's sends to ``relay`` for ``seconds`` (an earlier, longer pause stays)."""
        self._pause(keys=[keys.relay_pause_key(relay)], args=[max(1, math.ceil(seconds * 1000))])

    def paused_for(self, relay: str) -> float:
        """Seconds the relay stays paused (0 if it is not)."""
        remaining = int(cast(int, self.client.pttl(keys.relay_pause_key(relay))))
        return remaining / 1000 if remaining > 0 else 0.0
