"""mailqueue.message.utils: the cached DNS name used in Message-IDs."""

from __future__ import annotations

import socket

import pytest

import mailqueue
from mailqueue.message.addresses import punycode
from mailqueue.message.utils import DNS_NAME, CachedDnsName


def test_dns_name_is_this_hosts_fqdn() -> None:
    assert str(DNS_NAME) == punycode(socket.getfqdn())


def test_dns_name_is_exported_by_the_package() -> None:
    assert mailqueue.DNS_NAME is DNS_NAME


def test_dns_name_is_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[None] = []
    name = CachedDnsName()

    def getfqdn() -> str:
        calls.append(None)
        return "host.example.com"

    monkeypatch.setattr(socket, "getfqdn", getfqdn)
    assert (str(name), name.get_fqdn()) == ("host.example.com", "host.example.com")
    assert len(calls) == 1


def test_dns_name_is_not_looked_up_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    def getfqdn() -> str:
        raise AssertionError("looked up too early")

    monkeypatch.setattr(socket, "getfqdn", getfqdn)
    CachedDnsName()


def test_non_ascii_host_name_is_punycoded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getfqdn", lambda: "hôte.exämple.com")
    assert str(CachedDnsName()) == "xn--hte-kna.xn--exmple-cua.com"
