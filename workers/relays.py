"""The relays a worker delivers through: "default" (the EMAIL_* settings) and MAILQUEUE_RELAYS.

Transactional and bulk mail often leave through different providers, with different
credentials and limits. A producer names the relay (``get_connection(relay="bulk")``); only
that name travels in the payload, and each worker looks it up in its own settings, so
credentials never leave the workers. A name a worker does not know is an error for that
message (it is dead-lettered, naming the relay), never a reason to use the default relay.

A relay in MAILQUEUE_RELAYS is complete in itself: a key it does not give takes Django's
default, not the value of the EMAIL_* setting, so one relay's password is never offered to
another relay's host.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mailqueue.conf import settings
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.queue.envelope import DEFAULT_RELAY, check_relay_name
from workers.ratelimit import Rate

# A relay's keys, named like the settings they stand for, and the SMTP backend's argument each sets.
BACKEND_ARGUMENTS = {
    "EMAIL_HOST": "host",
    "EMAIL_PORT": "port",
    "EMAIL_HOST_USER": "username",
    "EMAIL_HOST_PASSWORD": "password",
    "EMAIL_USE_TLS": "use_tls",
    "EMAIL_USE_SSL": "use_ssl",
    "EMAIL_TIMEOUT": "timeout",
    "EMAIL_SSL_KEYFILE": "ssl_keyfile",
    "EMAIL_SSL_CERTFILE": "ssl_certfile",
}
_TYPES: dict[str, tuple[type, ...]] = {
    "EMAIL_HOST": (str,), "EMAIL_PORT": (int,), "EMAIL_HOST_USER": (str,), "EMAIL_HOST_PASSWORD": (str,),
    "EMAIL_USE_TLS": (bool,), "EMAIL_USE_SSL": (bool,), "EMAIL_TIMEOUT": (int, float),
    "EMAIL_SSL_KEYFILE": (str,), "EMAIL_SSL_CERTFILE": (str,), "RATE_LIMIT": (str,),
    "CONNECTIONS_PER_PROCESS": (int,), "MAX_CONNECTIONS": (int,),
}
SECRET_KEYS = frozenset({"EMAIL_HOST_PASSWORD"})


@dataclass(frozen=True, slots=True)
class Relay:
    """One relay: how to reach it (the backend's arguments) and how fast the fleet may send to it."""

    name: str
    arguments: Mapping[str, Any] = field(repr=False)  # holds the password: never in a repr or a log
    rate: Rate | None
    # At most this many connections to it per worker process (None: MAILQUEUE_CONNECTIONS_PER_PROCESS).
    connections: int | None = None
    # At most this many open connections to it from the whole fleet (None: no limit; workers.connection_slots).
    max_connections: int | None = None

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_RELAY

    def describe(self) -> str:
        """For logs: where it goes and its limit, without credentials."""
        if self.is_default:
            where = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        else:
            where = f"{self.arguments['host']}:{self.arguments.get('port', '(port by security)')}"
        return f"relay {self.name!r} ({where}, {'no rate limit' if self.rate is None else f'at most {self.rate}'})"


class UnknownRelay(LookupError):
    """A payload names a relay this worker's MAILQUEUE_RELAYS does not define."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return (f"unknown relay {self.name!r}: this worker's MAILQUEUE_RELAYS defines "
                f"{', '.join(repr(name) for name in self.known)}; never sent through another relay")


def relays() -> dict[str, Relay]:
    """Every relay of the current settings, "default" first; ImproperlyConfigured names a bad one."""
    raw = settings.MAILQUEUE_RELAYS
    rate_limit = settings.MAILQUEUE_RATE_LIMIT
    max_connections = settings.MAILQUEUE_MAX_CONNECTIONS
    # Read every round (tests and reloads change settings), parsed once per change of their text.
    text = json.dumps([raw, rate_limit, max_connections], sort_keys=True, default=repr)
    parsed = _parsed.get(text)
    if parsed is None:
        parsed = _parse(raw, rate_limit, max_connections)
        _parsed.clear()
        _parsed[text] = parsed
    return parsed


def relay(name: str) -> Relay:
    """The relay called ``name``, or UnknownRelay."""
    known = relays()
    try:
        return known[name]
    except KeyError:
        raise UnknownRelay(name, list(known)) from None


_parsed: dict[str, dict[str, Relay]] = {}


def _parse(raw: Any, rate_limit: Any, max_connections: Any) -> dict[str, Relay]:
    default = Relay(DEFAULT_RELAY, {}, _rate(rate_limit, "MAILQUEUE_RATE_LIMIT"),
                    max_connections=_limit(max_connections, "MAILQUEUE_MAX_CONNECTIONS"))
    found = {DEFAULT_RELAY: default}
    if raw is None:
        return found
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(
            f"MAILQUEUE_RELAYS must be a dict of relay name -> settings, got {type(raw).__name__}.")
    for name, entry in raw.items():
        found[name] = _relay(name, entry)
    return found


def _relay(name: Any, entry: Any) -> Relay:
    where = f"MAILQUEUE_RELAYS[{name!r}]"
    try:
        check_relay_name(name, what=f"The relay name {name!r}")
    except (TypeError, ValueError) as error:
        raise ImproperlyConfigured(f"{where}: {error}") from None
    if name == DEFAULT_RELAY:
        raise ImproperlyConfigured(
            f"{where}: the relay 'default' is the EMAIL_* settings and MAILQUEUE_RATE_LIMIT; "
            "give the other relays other names.")
    if not isinstance(entry, Mapping):
        raise ImproperlyConfigured(f"{where} must be a dict of settings, got {type(entry).__name__}.")
    unknown = sorted(set(entry) - set(_TYPES))
    if unknown:
        raise ImproperlyConfigured(
            f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"a relay takes {', '.join(_TYPES)}.")
    for key, value in entry.items():
        types = _TYPES[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            shown = "<hidden>" if key in SECRET_KEYS else repr(value)
            raise ImproperlyConfigured(
                f"{where}[{key!r}] must be {' or '.join(t.__name__ for t in types)}, got {shown}.")
    if not entry.get("EMAIL_HOST"):
        raise ImproperlyConfigured(f"{where} must give EMAIL_HOST: a relay takes nothing from the EMAIL_* settings.")
    if entry.get("EMAIL_USE_TLS") and entry.get("EMAIL_USE_SSL"):
        raise ImproperlyConfigured(f"{where}: EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive.")
    connections = _limit(entry.get("CONNECTIONS_PER_PROCESS"), f"{where}['CONNECTIONS_PER_PROCESS']")
    arguments = {BACKEND_ARGUMENTS[key]: value for key, value in entry.items() if key in BACKEND_ARGUMENTS}
    return Relay(name, arguments, _rate(entry.get("RATE_LIMIT", ""), f"{where}['RATE_LIMIT']"), connections,
                 _limit(entry.get("MAX_CONNECTIONS"), f"{where}['MAX_CONNECTIONS']"))


def _limit(value: Any, setting: str) -> int | None:
    """A connection count: None (no limit) or an int of at least 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ImproperlyConfigured(f"{setting} must be at least 1, got {value!r}.")
    return value


def _rate(text: Any, setting: str) -> Rate | None:
    try:
        return Rate.parse(text, setting=setting)
    except ValueError as error:
        raise ImproperlyConfigured(str(error)) from None
