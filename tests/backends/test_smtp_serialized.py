"""EmailBackend.send_serialized(): the workers' engine, one outcome per recipient."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from mailqueue.backends import smtp
from mailqueue.outcomes import RecipientOutcome, Status
from tests.fixtures.smtp import SMTP_PASSWORD, SMTP_USERNAME, SMTPTestServer

RAW = b"From: from@example.com\r\nTo: to@example.com\r\nSubject: Hi\r\n\r\nBody\r\n"
SENDER = "from@example.com"


@pytest.fixture
def backend(smtp_server: SMTPTestServer) -> Iterator[smtp.EmailBackend]:
    backend = smtp.EmailBackend(host=smtp_server.host, port=smtp_server.port, timeout=5)
    yield backend
    backend.close()


def send(backend: smtp.EmailBackend, *recipients: str, **kwargs: Any) -> list[RecipientOutcome]:
    return backend.send_serialized(kwargs.pop("message", RAW), sender=kwargs.pop("sender", SENDER),
                                   recipients=list(recipients))


def statuses(outcomes: list[RecipientOutcome]) -> list[tuple[str, Status, int | None]]:
    return [(o.recipient, o.status, o.code) for o in outcomes]


# --- Accepted --------------------------------------------------------------------------------


def test_accepted_recipients_get_the_data_reply(backend: smtp.EmailBackend, smtp_server: SMTPTestServer) -> None:
    outcomes = send(backend, "one@example.com", "two@example.com")
    assert statuses(outcomes) == [("one@example.com", Status.ACCEPTED, 250), ("two@example.com", Status.ACCEPTED, 250)]
    assert outcomes[0].reply == "2.0.0 Message accepted for delivery"


def test_bytes_and_envelope_arrive_unchanged(backend: smtp.EmailBackend, smtp_server: SMTPTestServer) -> None:
    send(backend, "one@example.com", "two@example.com")
    [received] = smtp_server.messages
    assert received.content == RAW
    assert received.mail_from == SENDER
    assert received.rcpt_tos == ["one@example.com", "two@example.com"]


def test_bare_line_feeds_become_crlf(backend: smtp.EmailBackend, smtp_server: SMTPTestServer) -> None:
    send(backend, "to@example.com", message=b"Subject: Hi\n\nOne\nTwo\r\n")
    assert smtp_server.messages[0].content == b"Subject: Hi\r\n\r\nOne\r\nTwo\r\n"


def test_size_is_declared_and_8bit_data_is_flagged(backend: smtp.EmailBackend, smtp_server: SMTPTestServer) -> None:
    data = "Subject: Hi\r\n\r\nTrès bien\r\n".encode()
    send(backend, "to@example.com", message=data)
    assert smtp_server.messages[0].mail_options == [f"SIZE={len(data)}", "BODY=8BITMIME"]


def test_connection_is_left_open_and_reused(backend: smtp.EmailBackend, smtp_server: SMTPTestServer) -> None:
    send(backend, "one@example.com")
    assert backend.is_connected
    send(backend, "two@example.com")
    assert smtp_server.connections == 1
    backend.close()
    assert not backend.is_connected


def test_idna_recipient_is_punycoded_on_the_wire(backend: smtp.EmailBackend, smtp_server: SMTPTestServer) -> None:
    [outcome] = send(backend, "to@exämple.com")
    assert outcome.status is Status.ACCEPTED
    assert outcome.recipient == "to@exämple.com"  # reported as the caller named it
    assert smtp_server.messages[0].rcpt_tos == ["to@xn--exmple-cua.com"]


def test_null_sender_is_allowed_for_bounces(backend: smtp.EmailBackend, smtp_server: SMTPTestServer) -> None:
    [outcome] = send(backend, "to@example.com", sender="")
    assert outcome.status is Status.ACCEPTED
    assert smtp_server.messages[0].mail_from == "<>"


def test_no_recipients_sends_nothing(backend: smtp.EmailBackend, smtp_server: SMTPTestServer) -> None:
    assert send(backend) == []
    assert smtp_server.connections == 0


def test_recipients_as_a_string_is_a_type_error(backend: smtp.EmailBackend) -> None:
    with pytest.raises(TypeError, match="recipients"):
        backend.send_serialized(RAW, sender=SENDER, recipients="to@example.com")


def test_message_as_str_is_a_type_error(backend: smtp.EmailBackend) -> None:
    with pytest.raises(TypeError, match="bytes"):
        backend.send_serialized(RAW.decode(), sender=SENDER, recipients=["to@example.com"])  # type: ignore[arg-type]


def test_arguments_after_the_message_are_keyword_only(backend: smtp.EmailBackend) -> None:
    with pytest.raises(TypeError):
        backend.send_serialized(RAW, SENDER, ["to@example.com"])  # type: ignore[call-arg]


# --- Refused per recipient -----------------------------------------------------------------------


@pytest.mark.smtp_fault("rcpt", "bad@example.com", 550, "5.1.1 No such user")
def test_550_recipient_is_permanent_and_the_others_are_delivered(
    backend: smtp.EmailBackend, smtp_server: SMTPTestServer
) -> None:
    outcomes = send(backend, "good@example.com", "bad@example.com")
    assert statuses(outcomes) == [
        ("good@example.com", Status.ACCEPTED, 250), ("bad@example.com", Status.PERMANENT, 550)]
    assert outcomes[1].reply == "5.1.1 No such user"
    assert smtp_server.messages[0].rcpt_tos == ["good@example.com"]


@pytest.mark.smtp_fault("rcpt", "busy@example.com", 451, "4.2.1 Mailbox busy")
def test_451_recipient_is_transient(backend: smtp.EmailBackend) -> None:
    outcomes = send(backend, "busy@example.com", "good@example.com")
    assert statuses(outcomes) == [
        ("busy@example.com", Status.TRANSIENT, 451), ("good@example.com", Status.ACCEPTED, 250)]
    assert outcomes[0].reply == "4.2.1 Mailbox busy"


@pytest.mark.smtp_fault("rcpt", "busy@example.com", 451, "4.2.1 Mailbox busy", times=1)
def test_transient_recipient_is_accepted_on_a_later_attempt(backend: smtp.EmailBackend) -> None:
    [first] = send(backend, "busy@example.com")
    [second] = send(backend, "busy@example.com")
    assert (first.status, second.status) == (Status.TRANSIENT, Status.ACCEPTED)


@pytest.mark.smtp_fault("rcpt", "a@example.com", 550, "5.1.1 No such user")
@pytest.mark.smtp_fault("rcpt", "b@example.com", 451, "4.2.1 Busy")
def test_all_refused_sends_no_data_and_keeps_the_connection(
    backend: smtp.EmailBackend, smtp_server: SMTPTestServer
) -> None:
    outcomes = send(backend, "a@example.com", "b@example.com")
    assert [o.status for o in outcomes] == [Status.PERMANENT, Status.TRANSIENT]
    assert smtp_server.messages == []
    assert backend.is_connected
    [later] = send(backend, "c@example.com")
    assert later.status is Status.ACCEPTED
    assert smtp_server.connections == 1


def test_invalid_recipient_is_permanent_without_a_code(backend: smtp.EmailBackend, smtp_server: SMTPTestServer) -> None:
    bad, good = send(backend, "not an address", "good@example.com")
    assert (bad.status, bad.code) == (Status.PERMANENT, None)
    assert "not an address" in bad.reply
    assert good.status is Status.ACCEPTED
    assert smtp_server.messages[0].rcpt_tos == ["good@example.com"]


def test_invalid_sender_is_permanent_for_everyone(backend: smtp.EmailBackend, smtp_server: SMTPTestServer) -> None:
    outcomes = send(backend, "one@example.com", "two@example.com", sender="a, b")
    assert [(o.status, o.code) for o in outcomes] == [(Status.PERMANENT, None)] * 2
    assert "Invalid sender" in outcomes[0].reply
    assert smtp_server.connections == 0


# --- Refused for everyone ---------------------------------------------------------------------------


@pytest.mark.smtp_fault("mail", 550, "5.7.1 Sender rejected")
def test_sender_refused_with_5xx_is_permanent_for_all(backend: smtp.EmailBackend, smtp_server: SMTPTestServer) -> None:
    outcomes = send(backend, "one@example.com", "two@example.com")
    assert statuses(outcomes) == [
        ("one@example.com", Status.PERMANENT, 550), ("two@example.com", Status.PERMANENT, 550)]
    assert outcomes[0].reply == "5.7.1 Sender rejected"
    assert smtp_server.messages == []


@pytest.mark.smtp_fault("mail", 451, "4.3.0 Try later", times=1)
def test_sender_refused_with_4xx_is_transient_and_the_connection_stays_usable(backend: smtp.EmailBackend) -> None:
    [first] = send(backend, "to@example.com")
    [second] = send(backend, "to@example.com")
    assert (first.status, first.code) == (Status.TRANSIENT, 451)
    assert second.status is Status.ACCEPTED


@pytest.mark.smtp_fault("rcpt", "bad@example.com", 550, "5.1.1 No such user")
@pytest.mark.smtp_fault("data", 554, "5.6.0 Content rejected")
def test_554_at_data_is_permanent_for_every_recipient_that_passed_rcpt(backend: smtp.EmailBackend) -> None:
    outcomes = send(backend, "one@example.com", "bad@example.com", "two@example.com")
    assert statuses(outcomes) == [
        ("one@example.com", Status.PERMANENT, 554),
        ("bad@example.com", Status.PERMANENT, 550),
        ("two@example.com", Status.PERMANENT, 554),
    ]
    assert outcomes[0].reply == "5.6.0 Content rejected"


@pytest.mark.smtp_fault("data", 451, "4.3.0 Queue full")
def test_4xx_at_data_is_transient(backend: smtp.EmailBackend) -> None:
    [outcome] = send(backend, "to@example.com")
    assert (outcome.status, outcome.code) == (Status.TRANSIENT, 451)


# --- Connection problems ----------------------------------------------------------------------------


@pytest.mark.smtp_fault("disconnect", "data")
def test_disconnect_at_data_is_transient_and_drops_the_connection(
    backend: smtp.EmailBackend, smtp_server: SMTPTestServer
) -> None:
    outcomes = send(backend, "one@example.com", "two@example.com")
    assert [(o.status, o.code) for o in outcomes] == [(Status.TRANSIENT, None)] * 2
    assert outcomes[0].reply  # the error's text
    assert not backend.is_connected
    [again] = send(backend, "one@example.com")
    assert again.status is Status.ACCEPTED
    assert smtp_server.connections == 2


@pytest.mark.smtp_fault("rcpt", "bad@example.com", 550, "5.1.1 No such user")
def test_disconnect_keeps_outcomes_already_settled(backend: smtp.EmailBackend, smtp_server: SMTPTestServer) -> None:
    smtp_server.disconnect_at("data")
    bad, good = send(backend, "bad@example.com", "good@example.com")
    assert (bad.status, bad.code) == (Status.PERMANENT, 550)
    assert (good.status, good.code) == (Status.TRANSIENT, None)


@pytest.mark.smtp_fault("disconnect", "rcpt")
def test_disconnect_at_rcpt_is_transient_for_everyone(backend: smtp.EmailBackend) -> None:
    outcomes = send(backend, "one@example.com", "two@example.com")
    assert [(o.status, o.code) for o in outcomes] == [(Status.TRANSIENT, None)] * 2


def test_connection_refused_is_transient_and_never_raises(smtp_server: SMTPTestServer) -> None:
    smtp_server.stop()
    backend = smtp.EmailBackend(host=smtp_server.host, port=smtp_server.port)
    [outcome] = send(backend, "to@example.com")
    assert (outcome.status, outcome.code) == (Status.TRANSIENT, None)
    assert "refused" in outcome.reply.lower()
    assert not backend.is_connected


def test_server_down_then_back_up(backend: smtp.EmailBackend, smtp_server: SMTPTestServer) -> None:
    smtp_server.stop()
    [down] = send(backend, "to@example.com")
    smtp_server.start()
    [up] = send(backend, "to@example.com")
    assert (down.status, up.status) == (Status.TRANSIENT, Status.ACCEPTED)


def test_connection_the_server_closed_while_idle_is_reopened(
    backend: smtp.EmailBackend, smtp_server: SMTPTestServer
) -> None:
    send(backend, "one@example.com")
    smtp_server.stop()  # drops the idle connection
    smtp_server.start()
    [outcome] = send(backend, "two@example.com")
    assert outcome.status is Status.ACCEPTED
    assert smtp_server.connections == 2


@pytest.mark.smtp_fault("delay", "rcpt", 2.0)
def test_timeout_is_transient_and_drops_the_connection(smtp_server: SMTPTestServer) -> None:
    backend = smtp.EmailBackend(host=smtp_server.host, port=smtp_server.port, timeout=0.3)
    [outcome] = send(backend, "to@example.com")
    assert (outcome.status, outcome.code) == (Status.TRANSIENT, None)
    assert "timed out" in outcome.reply
    assert not backend.is_connected


def test_fail_silently_does_not_change_what_is_reported(smtp_server: SMTPTestServer) -> None:
    smtp_server.stop()
    backend = smtp.EmailBackend(host=smtp_server.host, port=smtp_server.port, fail_silently=True)
    [outcome] = send(backend, "to@example.com")
    assert outcome.status is Status.TRANSIENT
    assert "refused" in outcome.reply.lower()


# --- Secure and authenticated sessions ---------------------------------------------------------------


def test_works_over_starttls(smtp_starttls_server: SMTPTestServer) -> None:
    server = smtp_starttls_server
    backend = smtp.EmailBackend(host=server.host, port=server.port, use_tls=True)
    [outcome] = send(backend, "to@example.com")
    backend.close()
    assert outcome.status is Status.ACCEPTED
    assert server.messages[0].tls


def test_works_over_implicit_tls(smtp_ssl_server: SMTPTestServer) -> None:
    server = smtp_ssl_server
    backend = smtp.EmailBackend(host=server.host, port=server.port, use_ssl=True)
    [outcome] = send(backend, "to@example.com")
    backend.close()
    assert outcome.status is Status.ACCEPTED


def test_logs_in_before_sending(smtp_auth_server: SMTPTestServer) -> None:
    server = smtp_auth_server
    backend = smtp.EmailBackend(host=server.host, port=server.port, username=SMTP_USERNAME, password=SMTP_PASSWORD)
    [outcome] = send(backend, "to@example.com")
    backend.close()
    assert outcome.status is Status.ACCEPTED
    assert server.messages[0].authenticated


def test_failed_login_is_transient_with_the_servers_code(smtp_auth_server: SMTPTestServer) -> None:
    # A session that cannot be set up says nothing about the message: try again later.
    server = smtp_auth_server
    backend = smtp.EmailBackend(host=server.host, port=server.port, username=SMTP_USERNAME, password="wrong")
    [outcome] = send(backend, "to@example.com")
    assert (outcome.status, outcome.code) == (Status.TRANSIENT, 535)
    assert not backend.is_connected


@pytest.mark.smtp_fault("rcpt", "to@example.com", 421, "4.3.2 Shutting down")
def test_421_drops_the_connection_the_server_is_closing(backend: smtp.EmailBackend) -> None:
    [outcome] = send(backend, "to@example.com")
    assert (outcome.status, outcome.code) == (Status.TRANSIENT, 421)
    assert not backend.is_connected


def test_threads_can_share_one_backend(backend: smtp.EmailBackend, smtp_server: SMTPTestServer) -> None:
    results: list[list[RecipientOutcome]] = []

    def deliver(n: int) -> None:
        for i in range(5):
            results.append(send(backend, f"to-{n}-{i}@example.com"))

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 30
    assert all(outcome.status is Status.ACCEPTED for outcomes in results for outcome in outcomes)
    assert len(smtp_server.messages) == 30
    assert smtp_server.connections == 1
