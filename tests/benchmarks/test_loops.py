"""The limits: both loops deliver every message intact, and the pipelined one needs PIPELINING."""

from __future__ import annotations

import pytest

from benchmarks import loops, servers
from benchmarks.relay import envelopes_for
from mailqueue.queue.envelope import Envelope
from tests.fixtures.smtp import SMTPTestServer


def dotted(envelope: Envelope) -> Envelope:
    """The envelope with lines that start with a dot, which the data must stuff."""
    message = envelope.message + b".\r\n.. two dots\r\n.end"
    return Envelope(envelope.message_id, envelope.sender, envelope.recipients, message, envelope.enqueued_at)


@pytest.mark.parametrize("loop", [loops.smtplib_loop, loops.pipelined_loop])
def test_each_loop_delivers_the_bytes_it_was_given(smtp_server: SMTPTestServer, loop: loops.LoopResult) -> None:
    envelopes = [dotted(envelope) for envelope in envelopes_for(5)]
    result = loop(smtp_server.port, envelopes)  # type: ignore[operator]
    assert result.messages == 5 and result.per_second > 0 and result.cpu_per_message > 0
    received = smtp_server.wait_for_messages(2 * 5)[-5:]  # the warm-up sends the same 5 first
    for envelope, message in zip(envelopes, received, strict=True):
        assert message.mail_from == envelope.sender and message.rcpt_tos == list(envelope.recipients)
        assert message.content == envelope.message + b"\r\n"  # the loops end the last line


def test_the_pipelined_loop_refuses_a_server_that_does_not_offer_pipelining(smtp_server: SMTPTestServer) -> None:
    smtp_server.handler.pipelining = False
    with pytest.raises(loops.PipelineRefused, match="does not advertise PIPELINING"):
        loops.pipelined_loop(smtp_server.port, envelopes_for(1))


@pytest.mark.parametrize("sink_paths", [servers.SMTP_SINK_PATHS, ()], ids=["installed sink", "aiosmtpd sink"])
def test_both_sinks_take_pipelined_mail(monkeypatch: pytest.MonkeyPatch, sink_paths: tuple[str, ...]) -> None:
    monkeypatch.setattr(servers, "SMTP_SINK_PATHS", sink_paths)
    with servers.smtp_sink() as sink:
        loops.pipelined_loop(sink.port, envelopes_for(30))
        assert sink.wait_for(loops.WARM_UP + 30, timeout=10)
        assert sink.accepted == loops.WARM_UP + 30


def test_data_is_dot_stuffed_with_crlf_line_ends() -> None:
    envelope = dotted(envelopes_for(1)[0])
    data = loops.data(Envelope(envelope.message_id, envelope.sender, envelope.recipients, b".a\n..b\nc",
                               envelope.enqueued_at))
    assert data == b"..a\r\n...b\r\nc\r\n.\r\n"
