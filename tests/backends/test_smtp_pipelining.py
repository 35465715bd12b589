"""RFC 2920 PIPELINING in send_serialized(): fewer round trips, the very same outcomes.

Each fault scenario runs twice against the same kind of real server, once pipelined and once
in lock-step, and the outcomes per recipient (status, code, reply) and what the server
delivered must be equal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from mailqueue import pipelining
from mailqueue.backends import smtp
from mailqueue.outcomes import RecipientOutcome, Status
from tests.fixtures.rawsmtp import RawSMTPServer
from tests.fixtures.smtp import SMTPTestServer

RAW = b"From: from@example.com\r\nSubject: Hi\r\n\r\n.leading dot\r\nBody\r\n"
SENDER = "from@example.com"
FIVE = [f"user{index}@example.com" for index in range(5)]


def backend_for(server: Any, *, pipelining: bool, timeout: float = 5) -> smtp.EmailBackend:
    backend = smtp.EmailBackend(host=server.host, port=server.port, timeout=timeout)
    backend.pipelining = pipelining
    return backend


def outcomes_of(outcomes: list[RecipientOutcome]) -> list[tuple[str, Status, int | None, str]]:
    return [(o.recipient, o.status, o.code, o.reply) for o in outcomes]


def run_aiosmtpd(setup: Callable[[SMTPTestServer], None], recipients: list[str], *, pipelining: bool,
                 timeout: float = 5) -> tuple[list[Any], list[tuple[str, list[str], bytes]], bool]:
    """One send on a fresh aiosmtpd server with the faults of ``setup``."""
    server = SMTPTestServer()
    server.start()
    try:
        setup(server)
        backend = backend_for(server, pipelining=pipelining, timeout=timeout)
        try:
            outcomes = backend.send_serialized(RAW, sender=SENDER, recipients=recipients)
            connected = backend.is_connected
        finally:
            backend.close()
        delivered = [(m.mail_from, m.rcpt_tos, m.content) for m in server.messages]
        return outcomes_of(outcomes), delivered, connected
    finally:
        server.stop()


def verdicts(results: list[Any]) -> list[Any]:
    """Outcomes without the reply text, which for a lost connection is the OS's words
    (closed or reset, depending on timing)."""
    return [[o[:3] for o in result] for result in results]


def limit_of(limit: int) -> Callable[[str, int], str]:
    return lambda address, count: "452 4.5.3 Too many recipients" if count >= limit else "250 OK"


SCENARIOS: dict[str, Callable[[SMTPTestServer], None]] = {
    "all accepted": lambda server: None,
    "550 in the middle": lambda server: server.fail_recipient("user2@example.com", 550, "5.1.1 No such user"),
    "451 in the middle": lambda server: server.fail_recipient("user1@example.com", 451, "4.2.0 Busy"),
    "550 and 451": lambda server: (server.fail_recipient("user1@example.com", 550, "5.1.1 No"),
                                   server.fail_recipient("user3@example.com", 451, "4.2.0 Later")),
    "every rcpt refused": lambda server: [server.fail_recipient(a, 550, "5.1.1 No") for a in FIVE],
    "554 at data": lambda server: server.fail_data(554, "5.6.0 Rejected"),
    "451 at data": lambda server: server.fail_data(451, "4.3.0 Later"),
    "mail refused 550": lambda server: server.fail_sender(550, "5.7.1 Not you"),
    "mail refused 451": lambda server: server.fail_sender(451, "4.3.0 Later", times=1),
    "disconnect at rcpt": lambda server: server.disconnect_at("rcpt"),
    "disconnect at data": lambda server: server.disconnect_at("data"),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_pipelined_outcomes_match_lock_step_on_aiosmtpd(scenario: str) -> None:
    pipelined = run_aiosmtpd(SCENARIOS[scenario], FIVE, pipelining=True)
    lock_step = run_aiosmtpd(SCENARIOS[scenario], FIVE, pipelining=False)
    if scenario.startswith("disconnect"):
        assert verdicts([pipelined[0]]) == verdicts([lock_step[0]])
        assert pipelined[1:] == lock_step[1:]
    else:
        assert pipelined == lock_step


def test_the_aiosmtpd_server_offers_pipelining(smtp_server: SMTPTestServer) -> None:
    """Else the comparisons above would compare lock-step with itself."""
    backend = backend_for(smtp_server, pipelining=True)
    try:
        backend.send_serialized(RAW, sender=SENDER, recipients=FIVE[:1])
        assert backend.connection is not None
        assert pipelining.supports_pipelining(backend.connection)
    finally:
        backend.close()


def test_the_scenarios_do_differ_from_each_other() -> None:
    """The comparison above is not vacuous: the faults change the outcomes."""
    accepted = run_aiosmtpd(SCENARIOS["all accepted"], FIVE, pipelining=True)
    refused = run_aiosmtpd(SCENARIOS["550 and 451"], FIVE, pipelining=True)
    assert [o[1] for o in accepted[0]] == [Status.ACCEPTED] * 5
    assert [o[1:3] for o in refused[0]] == [
        (Status.ACCEPTED, 250), (Status.PERMANENT, 550), (Status.ACCEPTED, 250),
        (Status.TRANSIENT, 451), (Status.ACCEPTED, 250)]
    assert refused[1][0][1] == ["user0@example.com", "user2@example.com", "user4@example.com"]


@pytest.mark.faults
def test_a_stalled_server_times_out_alike() -> None:
    def stall(server: SMTPTestServer) -> None:
        server.delay_at("rcpt", 3.0, times=1)

    pipelined = run_aiosmtpd(stall, FIVE[:2], pipelining=True, timeout=0.5)
    lock_step = run_aiosmtpd(stall, FIVE[:2], pipelining=False, timeout=0.5)
    assert pipelined == lock_step
    assert {o[1] for o in pipelined[0]} == {Status.TRANSIENT}
    assert pipelined[1] == [] and pipelined[2] is False


# --- A raw server: no PIPELINING advertised, counted reads, drops mid-group ---------------------


def run_raw(recipients: list[str], *, pipelining: bool, messages: int = 1, timeout: float = 5,
            **options: Any) -> tuple[list[Any], RawSMTPServer]:
    server = RawSMTPServer(**options)
    for _ in server.serve():
        backend = backend_for(server, pipelining=pipelining, timeout=timeout)
        try:
            results = [outcomes_of(backend.send_serialized(RAW, sender=SENDER, recipients=recipients))
                       for _ in range(messages)]
        finally:
            backend.close()
    return results, server


def test_a_pipelined_session_uses_two_round_trips_per_message() -> None:
    outcomes, pipelined = run_raw(FIVE, pipelining=True, messages=3)
    _, lock_step = run_raw(FIVE, pipelining=False, messages=3)
    assert all(o[1] is Status.ACCEPTED for result in outcomes for o in result)
    # Lock-step: MAIL, 5 RCPT, DATA, body = 8 per message, then QUIT.
    assert lock_step.reads == 3 * 8 + 1
    # Pipelined: MAIL+RCPT+DATA in one group, the body in another, then QUIT.
    assert pipelined.reads == 3 * 2 + 1
    assert [d[1] for d in pipelined.delivered] == [FIVE] * 3
    assert pipelined.delivered == lock_step.delivered
    assert pipelined.delivered[0][2] == RAW  # the leading dot survived the stuffing


def test_without_pipelining_advertised_the_client_stays_in_lock_step() -> None:
    server = RawSMTPServer(pipelining=False)
    for _ in server.serve():
        backend = backend_for(server, pipelining=True)
        try:
            result = backend.send_serialized(RAW, sender=SENDER, recipients=FIVE)
        finally:
            backend.close()
    assert [o.status for o in result] == [Status.ACCEPTED] * 5
    assert server.reads == 8 + 1


def test_452_after_100_recipients_sends_the_rest_in_further_transactions() -> None:
    recipients = [f"user{index}@example.com" for index in range(250)]
    pipelined, server = run_raw(recipients, pipelining=True, rcpt_reply=limit_of(100))
    lock_step, _ = run_raw(recipients, pipelining=False, rcpt_reply=limit_of(100))
    assert pipelined == lock_step
    assert {o[1] for o in pipelined[0]} == {Status.ACCEPTED}
    assert [len(d[1]) for d in server.delivered] == [100, 100, 50]
    # Per transaction: the commands in writes of GROUP_LIMIT (MAIL, the RCPTs, DATA), the body.
    writes = [math.ceil((rcpts + 2) / pipelining.GROUP_LIMIT) + 1 for rcpts in (250, 150, 50)]
    assert server.reads == sum(writes) + 1


def test_550_to_every_rcpt_gets_554_at_data_and_no_body_is_sent() -> None:
    refuse = lambda address, count: "550 5.1.1 No such user"  # noqa: E731
    pipelined, server = run_raw(FIVE[:2], pipelining=True, messages=2, rcpt_reply=refuse)
    lock_step, _ = run_raw(FIVE[:2], pipelining=False, messages=2, rcpt_reply=refuse)
    assert pipelined == lock_step
    assert {o[1:3] for result in pipelined for o in result} == {(Status.PERMANENT, 550)}
    assert server.delivered == []


@pytest.mark.parametrize("drop_after", [1, 2, 3, 4])
def test_a_connection_lost_mid_group_accepts_nobody(drop_after: int) -> None:
    """Replies after EHLO: MAIL=1, RCPT=2..3, DATA=4; the connection closes after that many."""
    pipelined, server = run_raw(FIVE[:2], pipelining=True, drop_after=drop_after)
    lock_step, _ = run_raw(FIVE[:2], pipelining=False, drop_after=drop_after)
    assert verdicts(pipelined) == verdicts(lock_step)
    assert {o[1] for o in pipelined[0]} == {Status.TRANSIENT}
    assert server.delivered == []


def test_a_connection_lost_mid_group_keeps_the_refusals_already_read() -> None:
    refuse_first = lambda address, count: "550 5.1.1 No" if address == FIVE[0] else "250 OK"  # noqa: E731
    pipelined, _ = run_raw(FIVE[:2], pipelining=True, drop_after=3, rcpt_reply=refuse_first)
    lock_step, _ = run_raw(FIVE[:2], pipelining=False, drop_after=3, rcpt_reply=refuse_first)
    assert verdicts(pipelined) == verdicts(lock_step)
    assert [o[1] for o in pipelined[0]] == [Status.PERMANENT, Status.TRANSIENT]


@pytest.mark.faults
def test_a_server_that_never_answers_data_times_out_transient() -> None:
    pipelined, server = run_raw(FIVE[:2], pipelining=True, stall_at="DATA", timeout=0.5)
    assert {o[1] for o in pipelined[0]} == {Status.TRANSIENT}
    assert server.delivered == []
