"""A server's recipient limit per transaction (issue 10, row 9): ``452 4.5.3 Too many recipients``.

RFC 5321 (section 4.5.3.1.10): the client sends the message to the recipients accepted so
far, then the rest in further transactions. The server here is a real aiosmtpd whose RCPT
answers 452 once the transaction holds ``limit`` recipients, as Postfix's
``smtpd_recipient_limit`` does.
"""

from __future__ import annotations

import math
import smtplib
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from celery import Celery

from mailqueue.backends import smtp
from mailqueue.message import EmailMessage
from mailqueue.outcomes import Status
from tests.fixtures.celery import delivered_pairs, make_payload, send_batch
from tests.fixtures.smtp import Fault, RecordingHandler, SMTPTestServer, running_server

RAW = b"From: from@example.com\r\nTo: list@example.com\r\nSubject: Hi\r\n\r\nBody\r\n"
SENDER = "from@example.com"
LIMIT = 100
TOO_MANY = "452 4.5.3 Too many recipients"


class LimitedHandler(RecordingHandler):
    """Answers 452 to every RCPT past ``limit`` in one transaction; counts the transactions."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        # Refused with a 452 when it comes first in a transaction ("*": any address).
        self.refused_first: set[str] = set()

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not envelope.rcpt_tos and self.refused_first & {address, "*"}:
            return "452 4.3.1 Insufficient system storage"
        if len(envelope.rcpt_tos) >= self.limit:
            return TOO_MANY
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest) -> Iterator[SMTPTestServer]:
    """The test's SMTP server (the workers' settings point at it), with a recipient limit."""
    server = SMTPTestServer()
    server.handler = LimitedHandler(LIMIT)
    yield from running_server(request, server)


@pytest.fixture
def backend(smtp_server: SMTPTestServer) -> Iterator[smtp.EmailBackend]:
    backend = smtp.EmailBackend(host=smtp_server.host, port=smtp_server.port, timeout=5)
    yield backend
    backend.close()


def addresses(count: int) -> list[str]:
    return [f"user{index}@example.com" for index in range(count)]


def handler(server: SMTPTestServer) -> LimitedHandler:
    assert isinstance(server.handler, LimitedHandler)
    return server.handler


# --- send_serialized: the workers' engine -------------------------------------------------------


def test_1001_recipients_go_out_in_11_transactions_over_one_connection(
    backend: smtp.EmailBackend, smtp_server: SMTPTestServer
) -> None:
    recipients = addresses(1001)
    outcomes = backend.send_serialized(RAW, sender=SENDER, recipients=recipients)

    assert [outcome.recipient for outcome in outcomes] == recipients
    assert {(outcome.status, outcome.code) for outcome in outcomes} == {(Status.ACCEPTED, 250)}
    delivered = [address for message in smtp_server.messages for address in message.rcpt_tos]
    assert sorted(delivered) == sorted(recipients)  # each exactly once
    assert len(smtp_server.messages) == math.ceil(1001 / LIMIT)
    assert [len(message.rcpt_tos) for message in smtp_server.messages] == [100] * 10 + [1]
    assert smtp_server.connections == 1
    assert backend.is_connected


def test_other_refusals_keep_their_own_outcome_across_transactions(
    backend: smtp.EmailBackend, smtp_server: SMTPTestServer
) -> None:
    recipients = addresses(250)
    smtp_server.fail_recipient("user5@example.com", 550, "5.1.1 No such user")
    smtp_server.fail_recipient("user150@example.com", 451, "4.2.1 Busy")

    outcomes = {o.recipient: (o.status, o.code) for o in backend.send_serialized(
        RAW, sender=SENDER, recipients=recipients)}

    assert outcomes.pop("user5@example.com") == (Status.PERMANENT, 550)
    assert outcomes.pop("user150@example.com") == (Status.TRANSIENT, 451)
    assert set(outcomes.values()) == {(Status.ACCEPTED, 250)}
    delivered = [address for message in smtp_server.messages for address in message.rcpt_tos]
    assert sorted(delivered) == sorted(outcomes)
    assert len(smtp_server.messages) == 3  # 100 + 100 + 48 accepted


def test_a_452_to_the_first_rcpt_is_a_transient_failure_not_a_loop(
    backend: smtp.EmailBackend, smtp_server: SMTPTestServer
) -> None:
    handler(smtp_server).refused_first = {"*"}  # the server is out of storage
    outcomes = backend.send_serialized(RAW, sender=SENDER, recipients=addresses(3))

    assert {(o.status, o.code, o.reply) for o in outcomes} == {
        (Status.TRANSIENT, 452, "4.3.1 Insufficient system storage")}
    assert smtp_server.messages == []


def test_a_452_on_the_first_rcpt_of_a_later_transaction_leaves_the_rest_for_a_retry(
    backend: smtp.EmailBackend, smtp_server: SMTPTestServer
) -> None:
    handler(smtp_server).limit = 2
    handler(smtp_server).refused_first = {"user2@example.com"}
    outcomes = backend.send_serialized(RAW, sender=SENDER, recipients=addresses(5))

    # 1st transaction: user0, user1, then user2 over the limit; 2nd: user2 refused first
    # (452: a real failure, retried later), then user3 and user4.
    assert [(o.status, o.code) for o in outcomes] == [
        (Status.ACCEPTED, 250), (Status.ACCEPTED, 250), (Status.TRANSIENT, 452),
        (Status.ACCEPTED, 250), (Status.ACCEPTED, 250)]
    assert outcomes[2].reply == "4.3.1 Insufficient system storage"
    assert [m.rcpt_tos for m in smtp_server.messages] == [
        ["user0@example.com", "user1@example.com"], ["user3@example.com", "user4@example.com"]]


def test_a_refused_data_leaves_the_recipients_over_the_limit_transient(
    backend: smtp.EmailBackend, smtp_server: SMTPTestServer
) -> None:
    smtp_server.fail_data(554, "5.6.0 Content rejected", times=1)
    outcomes = backend.send_serialized(RAW, sender=SENDER, recipients=addresses(150))

    assert {(o.status, o.code) for o in outcomes[:100]} == {(Status.PERMANENT, 554)}
    assert {(o.status, o.code, o.reply) for o in outcomes[100:]} == {
        (Status.TRANSIENT, 452, "4.5.3 Too many recipients")}
    assert smtp_server.messages == []


def test_a_disconnect_in_a_later_transaction_keeps_the_earlier_acceptances(
    backend: smtp.EmailBackend, smtp_server: SMTPTestServer
) -> None:
    smtp_server.add_fault(Fault("rcpt", "disconnect", address="user150@example.com", times=1))
    outcomes = backend.send_serialized(RAW, sender=SENDER, recipients=addresses(200))

    assert {(o.status, o.code) for o in outcomes[:100]} == {(Status.ACCEPTED, 250)}
    assert {(o.status, o.code) for o in outcomes[100:]} == {(Status.TRANSIENT, None)}
    assert [len(m.rcpt_tos) for m in smtp_server.messages] == [100]
    assert not backend.is_connected


# --- send_messages: Django's API ----------------------------------------------------------------


def test_send_messages_sends_the_rest_in_further_transactions(
    backend: smtp.EmailBackend, smtp_server: SMTPTestServer
) -> None:
    # Django's backend ignores the recipients refused with 452 (smtplib's sendmail returns
    # them) and sends to the first 100 only.
    recipients = addresses(1001)
    message = EmailMessage("Hi", "Body", SENDER, ["list@example.com"], bcc=recipients)

    assert backend.send_messages([message]) == 1

    delivered = [address for received in smtp_server.messages for address in received.rcpt_tos]
    assert sorted(delivered) == sorted(["list@example.com", *recipients])
    assert len(smtp_server.messages) == math.ceil(1002 / LIMIT)
    assert smtp_server.connections == 1


def test_send_messages_still_raises_when_every_recipient_is_refused(
    backend: smtp.EmailBackend, smtp_server: SMTPTestServer
) -> None:
    handler(smtp_server).refused_first = {"*"}
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        backend.send_messages([EmailMessage("Hi", "Body", SENDER, addresses(3))])


# --- Through a worker ---------------------------------------------------------------------------


@pytest.mark.faults
@pytest.mark.timeout(30)
@pytest.mark.usefixtures("celery_worker")
def test_a_worker_delivers_1001_recipients_in_one_round_with_no_dead_letter(
    celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    payload = make_payload(to=addresses(1001))

    report: dict[str, Any] = send_batch(celery_app, [payload]).get(timeout=30)

    entry = report["messages"][payload["message_id"]]
    assert (report["sent"], report["failed"], report["retries"]) == (1, 0, 0)
    assert (entry["status"], entry["attempts"], entry.get("dead_letter")) == ("sent", 1, None)
    pairs = delivered_pairs(smtp_server)
    assert set(pairs) == {(payload["message_id"], address) for address in addresses(1001)}
    assert set(pairs.values()) == {1}
    assert len(smtp_server.messages) == 11 and smtp_server.connections == 1
