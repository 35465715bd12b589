"""send_serialized_many(): one round trip per message on a pipelining server, same outcomes.

Each case sends a batch twice against the same kind of real server, once as a pipelined batch
and once message by message in lock-step; outcomes per recipient and deliveries must be equal.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from mailqueue.backends import smtp
from mailqueue.outcomes import Status
from tests.fixtures.rawsmtp import RawSMTPServer
from tests.fixtures.smtp import SMTPTestServer

SENDER = "from@example.com"


def body(index: int) -> bytes:
    return f"From: from@example.com\r\nSubject: {index}\r\n\r\n.dot {index}\r\n".encode()


def batch(count: int, recipients: int = 2) -> list[tuple[bytes, str, list[str]]]:
    return [(body(i), SENDER, [f"m{i}r{j}@example.com" for j in range(recipients)]) for i in range(count)]


def verdicts(results: list[list[Any]]) -> list[list[tuple[str, Status, int | None]]]:
    return [[(o.recipient, o.status, o.code) for o in outcomes] for outcomes in results]


def run_raw(items: list[Any], *, batched: bool, **options: Any) -> tuple[list[Any], RawSMTPServer]:
    server = RawSMTPServer(**options)
    for running in server.serve():
        backend = smtp.EmailBackend(host=server.host, port=server.port, timeout=options.get("timeout", 5))
        backend.pipelining = batched
        try:
            results = backend.send_serialized_many(items)
        finally:
            backend.close()
        return verdicts(results), running
    raise AssertionError("unreachable")


def test_ten_messages_take_eleven_round_trips_instead_of_twenty() -> None:
    items = batch(10)
    pipelined, server = run_raw(items, batched=True)
    one_by_one = RawSMTPServer()
    for running in one_by_one.serve():
        backend = smtp.EmailBackend(host=running.host, port=running.port, timeout=5)
        try:
            for message, sender, recipients in items:
                backend.send_serialized(message, sender=sender, recipients=recipients)
        finally:
            backend.close()
    assert all(o[1] is Status.ACCEPTED for outcomes in pipelined for o in outcomes)
    # 10 groups, each carrying the previous body; the last body alone; then QUIT
    assert server.reads == 11 + 1
    assert one_by_one.reads == 20 + 1  # two per message for one pipelined transaction at a time
    assert [d[2] for d in server.delivered] == [body(i) for i in range(10)]
    assert [d[1] for d in server.delivered] == [r for _, _, r in items]


def test_without_pipelining_the_batch_is_sent_in_lock_step() -> None:
    items = batch(3)
    outcomes, server = run_raw(items, batched=True, pipelining=False)
    assert all(o[1] is Status.ACCEPTED for result in outcomes for o in result)
    assert server.reads == 3 * (1 + 2 + 1 + 1) + 1  # MAIL, 2 RCPT, DATA, body; QUIT
    assert len(server.delivered) == 3


def refuse(address: str, count: int) -> str:
    if address == "m2r0@example.com":
        return "550 5.1.1 No such user"
    if address == "m3r1@example.com":
        return "451 4.2.0 Busy"
    return "250 OK"


def test_refused_recipients_in_the_middle_of_a_batch_fail_alone() -> None:
    items = batch(6)
    pipelined, server = run_raw(items, batched=True, rcpt_reply=refuse)
    lock_step, _ = run_raw(items, batched=False, rcpt_reply=refuse)
    assert pipelined == lock_step
    assert pipelined[2][0][1:] == (Status.PERMANENT, 550)
    assert pipelined[3][1][1:] == (Status.TRANSIENT, 451)
    assert pipelined[2][1][1] is Status.ACCEPTED and pipelined[3][0][1] is Status.ACCEPTED
    assert len(server.delivered) == 6


def test_every_recipient_refused_in_the_middle_sends_no_body_and_the_rest_go() -> None:
    items = batch(4)
    no_m1 = lambda address, count: "550 5.1.1 No" if address.startswith("m1") else "250 OK"  # noqa: E731
    pipelined, server = run_raw(items, batched=True, rcpt_reply=no_m1)
    lock_step, _ = run_raw(items, batched=False, rcpt_reply=no_m1)
    assert pipelined == lock_step
    assert [d[1] for d in server.delivered] == [items[i][2] for i in (0, 2, 3)]


def test_452_after_100_recipients_within_a_batch_sends_the_rest() -> None:
    items = batch(3, recipients=2)
    items[1] = (body(1), SENDER, [f"many{j}@example.com" for j in range(150)])
    limit = lambda address, count: "452 4.5.3 Too many recipients" if count >= 100 else "250 OK"  # noqa: E731
    pipelined, server = run_raw(items, batched=True, rcpt_reply=limit)
    lock_step, _ = run_raw(items, batched=False, rcpt_reply=limit)
    assert pipelined == lock_step
    assert all(o[1] is Status.ACCEPTED for result in pipelined for o in result)
    delivered = sorted(r for _, recipients, _ in server.delivered for r in recipients)
    assert delivered == sorted(r for _, _, recipients in items for r in recipients)  # each exactly once


@pytest.mark.parametrize("drop_after", [1, 4, 5, 9, 12])
def test_a_connection_lost_mid_batch_accepts_only_what_the_server_acknowledged(drop_after: int) -> None:
    items = batch(4)
    pipelined, server = run_raw(items, batched=True, drop_after=drop_after)
    accepted = [o[0] for result in pipelined for o in result if o[1] is Status.ACCEPTED]
    delivered = [r for _, recipients, _ in server.delivered for r in recipients]
    assert accepted == delivered[:len(accepted)]
    assert set(accepted) <= set(delivered)
    unanswered = [o for result in pipelined for o in result if o[1] is not Status.ACCEPTED]
    assert unanswered and all(o[1] is Status.TRANSIENT for o in unanswered)
    assert len(accepted) + len(unanswered) == 8


def test_554_to_data_in_the_middle_fails_only_that_message() -> None:
    server = SMTPTestServer()
    server.start()
    try:
        items = batch(5)
        backend = smtp.EmailBackend(host=server.host, port=server.port, timeout=5)
        try:
            results = verdicts(backend.send_serialized_many(items[:2]))
            server.fail_data(554, "5.6.0 Rejected", times=1)  # the next message's DATA only
            results += verdicts(backend.send_serialized_many(items[2:]))
        finally:
            backend.close()
        assert [o[1:] for o in results[2]] == [(Status.PERMANENT, 554)] * 2
        assert all(o[1] is Status.ACCEPTED for i in (0, 1, 3, 4) for o in results[i])
        assert len(server.messages) == 4
    finally:
        server.stop()


def test_may_begin_stops_the_batch_and_the_rest_are_not_attempted(smtp_server: SMTPTestServer) -> None:
    backend = smtp.EmailBackend(host=smtp_server.host, port=smtp_server.port, timeout=5)
    answers = iter([True, True, False, True])
    try:
        results = backend.send_serialized_many(batch(4), may_begin=lambda wait: next(answers))
    finally:
        backend.close()
    assert [len(outcomes) for outcomes in results] == [2, 2, 0, 0]  # no further message after a no
    assert [m.rcpt_tos[0] for m in smtp_server.messages] == ["m0r0@example.com", "m1r0@example.com"]


def test_a_rate_limit_wait_sends_the_body_in_hand_first(smtp_server: SMTPTestServer) -> None:
    """While the next message waits for its turn, the previous one is already at the server:
    the relay sees each message when the limit let it go, not one token late."""
    backend = smtp.EmailBackend(host=smtp_server.host, port=smtp_server.port, timeout=5)
    seen_while_waiting: list[int] = []

    def may_begin(wait: bool) -> bool | None:
        if not wait:
            return None  # every message must wait for a token
        seen_while_waiting.append(len(smtp_server.messages))
        return True

    try:
        results = backend.send_serialized_many(batch(3), may_begin=may_begin)
    finally:
        backend.close()
    assert all(o.status is Status.ACCEPTED for outcomes in results for o in outcomes)
    assert seen_while_waiting == [0, 1, 2]


def test_each_acceptance_is_told_before_the_next_message_goes(smtp_server: SMTPTestServer) -> None:
    backend = smtp.EmailBackend(host=smtp_server.host, port=smtp_server.port, timeout=5)
    told: list[tuple[int, list[str]]] = []
    smtp_server.fail_recipient("m1r1@example.com", 550, "5.1.1 Gone")
    try:
        backend.send_serialized_many(batch(3), on_accepted=lambda position, accepted: told.append((position, accepted)))
    finally:
        backend.close()
    assert told == [(0, ["m0r0@example.com", "m0r1@example.com"]), (1, ["m1r0@example.com"]),
                    (2, ["m2r0@example.com", "m2r1@example.com"])]


def test_an_acceptance_that_cannot_be_recorded_stops_the_connection(smtp_server: SMTPTestServer) -> None:
    backend = smtp.EmailBackend(host=smtp_server.host, port=smtp_server.port, timeout=5)

    def on_accepted(position: int, accepted: list[str]) -> None:
        raise redis.ConnectionError("the ledger is out of reach")

    with pytest.raises(redis.ConnectionError):
        backend.send_serialized_many(batch(3), on_accepted=on_accepted)
    assert not backend.is_connected  # the replies still due are never read on it
    smtp_server.wait_for_messages(1)
    backend.close()
