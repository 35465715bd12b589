"""The latency proxy: bytes arrive whole and in order, and round trips are counted, not timed."""

from __future__ import annotations

import socket
import threading

import pytest

from benchmarks import loops
from benchmarks.latency import LatencyProxy, latency
from benchmarks.relay import envelopes_for
from tests.fixtures.smtp import SMTPTestServer


@pytest.fixture
def echo_port() -> int:
    """A TCP server that sends back whatever it reads, until the client closes."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            while data := connection.recv(65536):
                connection.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return int(server.getsockname()[1])


def test_many_chunks_in_flight_arrive_whole_and_in_order(echo_port: int) -> None:
    proxy = LatencyProxy(echo_port, 0.01).start()
    payload = bytes(range(256)) * 4096  # 1 MiB, written in 1,000-byte chunks without waiting
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
        for start in range(0, len(payload), 1000):
            client.sendall(payload[start:start + 1000])
        client.shutdown(socket.SHUT_WR)
        received = bytearray()
        while data := client.recv(65536):
            received += data
    assert bytes(received) == payload


def test_pipelining_takes_one_round_trip_per_message_and_lock_step_four(smtp_server: SMTPTestServer) -> None:
    envelopes = envelopes_for(25)
    messages = loops.WARM_UP + len(envelopes)  # the warm-up sends the first 20 first
    lock_step = LatencyProxy(smtp_server.port, 0.002).start()
    loops.smtplib_loop(lock_step.port, envelopes)
    pipelined = LatencyProxy(smtp_server.port, 0.002).start()
    loops.pipelined_loop(pipelined.port, envelopes)
    # smtplib: EHLO, then MAIL, RCPT, DATA and the data for each message, then QUIT.
    assert lock_step.round_trips == 1 + 4 * messages + 1
    # pipelined: EHLO, a first MAIL/RCPT/DATA group per loop call (warm-up and measured), one
    # write per message (its data with the next group), QUIT.
    assert pipelined.round_trips == 1 + 2 + messages + 1
    smtp_server.wait_for_messages(2 * messages)


def test_no_proxy_at_rtt_zero_and_a_proxy_process_otherwise(smtp_server: SMTPTestServer) -> None:
    with latency(smtp_server.port, 0) as port:
        assert port == smtp_server.port
    with latency(smtp_server.port, 4) as port:
        assert port != smtp_server.port
        result = loops.pipelined_loop(port, envelopes_for(5))
    assert result.messages == 5
    assert len(smtp_server.wait_for_messages(2 * 5)) == 2 * 5  # the warm-up sends the same 5 first
