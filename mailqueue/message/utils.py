"""Helpers for building messages: the host's DNS name, looked up once."""

from __future__ import annotations

import socket
import threading

from mailqueue.message.addresses import punycode


class CachedDnsName:
    """This host's fully qualified domain name, IDNA-encoded, looked up on first use.

    ``socket.getfqdn()`` can take seconds on a badly configured resolver, so it runs lazily
    (not at import) and only once per process.
    """

    def __init__(self) -> None:
        self._fqdn: str | None = None
        self._lock = threading.Lock()

    def __str__(self) -> str:
        return self.get_fqdn()

    def get_fqdn(self) -> str:
        if self._fqdn is None:
            with self._lock:
                if self._fqdn is None:
                    self._fqdn = punycode(socket.getfqdn())
        return self._fqdn


DNS_NAME = CachedDnsName()
