"""The servers the live sections start: the sink counts what it accepted, whichever kind it is."""

from __future__ import annotations

import smtplib

import pytest
import redis

from benchmarks import servers


def send(port: int, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        for _ in range(count):
            smtp.sendmail("a@example.com", ["b@example.com"], b"Subject: x\r\n\r\nbody\r\n")


def test_sink_counts_accepted_messages() -> None:
    with servers.smtp_sink() as sink:
        send(sink.port, 3)
        assert sink.wait_for(3, timeout=10)
        assert sink.accepted == 3


def test_aiosmtpd_sink_is_the_fallback_and_counts_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "SMTP_SINK_PATHS", ())
    with servers.smtp_sink() as sink:
        assert sink.kind == "aiosmtpd sink"
        send(sink.port, 2)
        assert sink.wait_for(2, timeout=10)


def test_a_private_redis_is_started_and_stopped() -> None:
    with servers.redis_server(None) as url:
        client = redis.Redis.from_url(url)
        assert client.ping()
        client.close()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
