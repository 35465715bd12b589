"""The SMTP backend's Django API (send_messages, open/close) against real aiosmtpd servers."""

from __future__ import annotations

import email.message
import smtplib
import threading
from typing import Any

import pytest

from mailqueue.backends import smtp
from mailqueue.conf import override_settings
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.message import EmailMessage
from tests.backends.contract import MailboxContract
from tests.fixtures.smtp import SMTPTestServer


def backend_for(server: SMTPTestServer, **kwargs: Any) -> smtp.EmailBackend:
    return smtp.EmailBackend(host=server.host, port=server.port, **kwargs)


class TestSMTPBackend(MailboxContract):
    @pytest.fixture(autouse=True)
    def use_server(self, smtp_server: SMTPTestServer) -> None:
        self.server = smtp_server

    def make_backend(self, **kwargs: Any) -> smtp.EmailBackend:
        return backend_for(self.server, **kwargs)

    def mailbox(self) -> list[email.message.EmailMessage]:
        return [received.message() for received in self.server.messages]

    def flush_mailbox(self) -> None:
        self.server.clear()


# --- Settings and arguments ----------------------------------------------------------------


@override_settings(
    EMAIL_HOST="mail.example.com", EMAIL_PORT=822, EMAIL_HOST_USER="user", EMAIL_HOST_PASSWORD="pw",
    EMAIL_USE_TLS=True, EMAIL_TIMEOUT=10.0, EMAIL_SSL_CERTFILE="cert.pem", EMAIL_SSL_KEYFILE="key.pem",
)
def test_every_argument_defaults_to_its_setting() -> None:
    backend = smtp.EmailBackend()
    assert (backend.host, backend.port) == ("mail.example.com", 822)
    assert (backend.username, backend.password) == ("user", "pw")
    assert (backend.use_tls, backend.use_ssl, backend.timeout) == (True, False, 10.0)
    assert (backend.ssl_certfile, backend.ssl_keyfile) == ("cert.pem", "key.pem")


@override_settings(
    EMAIL_HOST="mail.example.com", EMAIL_PORT=822, EMAIL_HOST_USER="user", EMAIL_HOST_PASSWORD="pw",
    EMAIL_USE_TLS=True, EMAIL_TIMEOUT=10.0, EMAIL_SSL_CERTFILE="cert.pem", EMAIL_SSL_KEYFILE="key.pem",
)
def test_arguments_win_over_settings() -> None:
    backend = smtp.EmailBackend(
        host="other.example.net", port=5322, username="u2", password="p2", use_tls=False,
        use_ssl=True, timeout=15, ssl_certfile="c2.pem", ssl_keyfile="k2.pem",
    )
    assert (backend.host, backend.port, backend.username, backend.password) == (
        "other.example.net", 5322, "u2", "p2")
    assert (backend.use_tls, backend.use_ssl, backend.timeout) == (False, True, 15)
    assert (backend.ssl_certfile, backend.ssl_keyfile) == ("c2.pem", "k2.pem")


@override_settings(EMAIL_HOST_USER="user", EMAIL_HOST_PASSWORD="pw")
def test_empty_credentials_disable_the_settings_ones() -> None:
    backend = smtp.EmailBackend(username="", password="")
    assert (backend.username, backend.password) == ("", "")


def test_defaults_are_djangos() -> None:
    backend = smtp.EmailBackend()
    assert (backend.host, backend.port, backend.timeout) == ("localhost", 25, None)
    assert (backend.use_tls, backend.use_ssl, backend.ssl_certfile, backend.ssl_keyfile) == (
        False, False, None, None)


def test_tls_and_ssl_arguments_together_are_improperly_configured() -> None:
    with pytest.raises(ImproperlyConfigured, match="EMAIL_USE_TLS/EMAIL_USE_SSL are mutually exclusive"):
        smtp.EmailBackend(use_tls=True, use_ssl=True)


@override_settings(EMAIL_USE_TLS=True, EMAIL_USE_SSL=True)
def test_tls_and_ssl_settings_together_are_improperly_configured() -> None:
    message = "EMAIL_USE_TLS/EMAIL_USE_SSL are mutually exclusive, so only set one of those settings to True."
    with pytest.raises(ImproperlyConfigured) as raised:
        smtp.EmailBackend()
    assert str(raised.value) == message


# --- open() and close() ----------------------------------------------------------------------


def test_open_returns_true_when_it_connects(smtp_server: SMTPTestServer) -> None:
    backend = backend_for(smtp_server)
    assert backend.connection is None
    assert backend.open() is True
    assert backend.connection is not None
    backend.close()


def test_open_returns_false_when_already_open(smtp_server: SMTPTestServer) -> None:
    backend = backend_for(smtp_server)
    backend.open()
    assert backend.open() is False
    assert smtp_server.connections == 1
    backend.close()


def test_open_returns_none_when_it_fails_silently(smtp_server: SMTPTestServer) -> None:
    smtp_server.stop()
    backend = backend_for(smtp_server, fail_silently=True)
    assert backend.open() is None
    assert backend.connection is None


def test_open_raises_when_the_server_is_down(smtp_server: SMTPTestServer) -> None:
    smtp_server.stop()
    with pytest.raises(ConnectionRefusedError):
        backend_for(smtp_server).open()


def test_close_forgets_the_connection_and_open_reconnects(smtp_server: SMTPTestServer) -> None:
    backend = backend_for(smtp_server)
    backend.open()
    backend.close()
    assert backend.connection is None
    assert backend.open() is True
    backend.close()
    assert smtp_server.connections == 2


def test_close_after_the_server_went_away_does_not_raise(smtp_server: SMTPTestServer) -> None:
    backend = backend_for(smtp_server)
    backend.open()
    smtp_server.stop()
    backend.close()
    assert backend.connection is None


def test_timeout_is_given_to_the_connection(smtp_server: SMTPTestServer) -> None:
    backend = backend_for(smtp_server, timeout=42)
    backend.open()
    assert backend.connection is not None
    assert backend.connection.timeout == 42
    backend.close()


def test_slow_server_times_out(smtp_server: SMTPTestServer) -> None:
    smtp_server.delay_at("mail", 2.0)
    backend = backend_for(smtp_server, timeout=0.3)
    with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
        backend.send_messages([EmailMessage(to=["to@example.com"])])


# --- Connection reuse -------------------------------------------------------------------------


def test_send_messages_opens_and_closes_its_own_connection(smtp_server: SMTPTestServer) -> None:
    backend = backend_for(smtp_server)
    backend.send_messages([EmailMessage(to=["to@example.com"])])
    assert backend.connection is None
    backend.send_messages([EmailMessage(to=["to@example.com"])])
    assert smtp_server.connections == 2


def test_send_messages_leaves_an_opened_connection_open(smtp_server: SMTPTestServer) -> None:
    backend = backend_for(smtp_server)
    backend.open()
    backend.send_messages([EmailMessage(to=["one@example.com"])])
    assert backend.connection is not None
    backend.send_messages([EmailMessage(to=["two@example.com"])])
    backend.close()
    assert smtp_server.connections == 1
    assert smtp_server.messages[0].peer == smtp_server.messages[1].peer


def test_context_manager_reuses_one_connection(smtp_server: SMTPTestServer) -> None:
    with backend_for(smtp_server) as connection:
        EmailMessage(to=["one@example.com"], connection=connection).send()
        connection.send_messages([EmailMessage(to=["two@example.com"]), EmailMessage(to=["three@example.com"])])
    assert connection.connection is None  # type: ignore[attr-defined]
    assert len(smtp_server.messages) == 3
    assert smtp_server.connections == 1


def test_send_messages_of_an_empty_list_does_not_connect(smtp_server: SMTPTestServer) -> None:
    assert backend_for(smtp_server).send_messages([]) == 0
    assert smtp_server.connections == 0


def test_message_without_recipients_is_not_sent(smtp_server: SMTPTestServer) -> None:
    assert backend_for(smtp_server).send_messages([EmailMessage(to=[])]) == 0
    assert smtp_server.messages == []


def test_send_messages_returns_zero_when_open_failed_silently(smtp_server: SMTPTestServer) -> None:
    smtp_server.stop()
    backend = backend_for(smtp_server, fail_silently=True)
    assert backend.send_messages([EmailMessage(to=["to@example.com"])]) == 0


def test_threads_can_share_one_open_backend(smtp_server: SMTPTestServer) -> None:
    backend = backend_for(smtp_server)
    backend.open()
    counts: list[int] = []

    def send(n: int) -> None:
        counts.append(backend.send_messages([EmailMessage(to=[f"to-{n}-{i}@example.com"]) for i in range(5)]))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    backend.close()
    assert sum(counts) == 40
    assert len(smtp_server.messages) == 40
    assert smtp_server.connections == 1


# --- What goes on the wire ---------------------------------------------------------------------


def test_message_uses_crlf_line_endings(smtp_server: SMTPTestServer) -> None:
    backend_for(smtp_server).send_messages([EmailMessage("Subject", "one\ntwo\n", to=["to@example.com"])])
    content = smtp_server.messages[0].content
    assert b"\r\n" in content
    assert b"\n" not in content.replace(b"\r\n", b"")
    assert b"\r" not in content.replace(b"\r\n", b"")


def test_envelope_comes_from_from_email_and_recipients(smtp_server: SMTPTestServer) -> None:
    message = EmailMessage(
        "Subject", "Body", "Sender <from@example.com>", ["To <to@example.com>"],
        cc=["cc@example.com"], bcc=["bcc@example.com"],
    )
    backend_for(smtp_server).send_messages([message])
    received = smtp_server.messages[0]
    assert received.mail_from == "from@example.com"
    assert received.rcpt_tos == ["to@example.com", "cc@example.com", "bcc@example.com"]


def test_header_overrides_do_not_change_the_envelope(smtp_server: SMTPTestServer) -> None:
    message = EmailMessage(
        "Subject", "Body", "from@example.com", ["to@example.com"],
        headers={"From": "header-from@example.com", "To": "header-to@example.com",
                 "Cc": "header-cc@example.com", "Reply-To": "reply@example.com"},
    )
    backend_for(smtp_server).send_messages([message])
    received = smtp_server.messages[0]
    assert received.mail_from == "from@example.com"
    assert received.rcpt_tos == ["to@example.com"]
    parsed = received.message()
    assert (parsed["From"], parsed["To"], parsed["Cc"]) == (
        "header-from@example.com", "header-to@example.com", "header-cc@example.com")


def test_envelope_domains_are_idna_encoded(smtp_server: SMTPTestServer) -> None:
    message = EmailMessage("Subject", "Body", "Jörg <from@öäü.com>", ["to@exämple.com"], cc=["cc@ñandú.cl"])
    backend_for(smtp_server).send_messages([message])
    received = smtp_server.messages[0]
    assert received.mail_from == "from@xn--4ca9at.com"
    assert received.rcpt_tos == ["to@xn--exmple-cua.com", "cc@xn--and-6ma2c.cl"]


def test_non_ascii_local_part_is_refused_naming_the_address(smtp_server: SMTPTestServer) -> None:
    message = EmailMessage("Subject", "Body", "from@example.com", ["jörg@example.com"])
    with pytest.raises(ValueError, match="jörg@example.com"):
        backend_for(smtp_server).send_messages([message])
    assert smtp_server.messages == []


@pytest.mark.parametrize("address", ["to@example.com, other@example.com", "not an address", "to@"])
def test_invalid_envelope_address_raises_value_error_naming_it(
    smtp_server: SMTPTestServer, address: str
) -> None:
    message = EmailMessage("Subject", "Body", "from@example.com", [address])
    with pytest.raises(ValueError, match="Invalid address"):
        backend_for(smtp_server).send_messages([message])
    assert smtp_server.messages == []


def test_prep_address_keeps_unicode_without_force_ascii() -> None:
    backend = smtp.EmailBackend()
    assert backend.prep_address("Jörg <jörg@exämple.com>", force_ascii=False) == "jörg@exämple.com"


# --- Refusals, as Django reports them ------------------------------------------------------------


@pytest.mark.smtp_fault("rcpt", "to@example.com", 550, "5.1.1 No such user")
def test_all_recipients_refused_raises(smtp_server: SMTPTestServer) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        backend_for(smtp_server).send_messages([EmailMessage(to=["to@example.com"])])


@pytest.mark.smtp_fault("rcpt", "to@example.com", 550, "5.1.1 No such user")
def test_refusal_is_swallowed_with_fail_silently(smtp_server: SMTPTestServer) -> None:
    backend = backend_for(smtp_server, fail_silently=True)
    assert backend.send_messages([EmailMessage(to=["to@example.com"])]) == 0


@pytest.mark.smtp_fault("rcpt", "bad@example.com", 550, "5.1.1 No such user")
def test_partly_refused_message_counts_as_sent_like_django(smtp_server: SMTPTestServer) -> None:
    message = EmailMessage(to=["good@example.com", "bad@example.com"])
    assert backend_for(smtp_server).send_messages([message]) == 1
    assert smtp_server.messages[0].rcpt_tos == ["good@example.com"]


@pytest.mark.smtp_fault("data", 554, "5.6.0 Content rejected")
def test_data_refusal_raises_smtp_data_error(smtp_server: SMTPTestServer) -> None:
    with pytest.raises(smtplib.SMTPDataError) as raised:
        backend_for(smtp_server).send_messages([EmailMessage(to=["to@example.com"])])
    assert raised.value.smtp_code == 554


@pytest.mark.smtp_fault("mail", 550, "5.7.1 Sender rejected")
def test_sender_refusal_raises_smtp_sender_refused(smtp_server: SMTPTestServer) -> None:
    with pytest.raises(smtplib.SMTPSenderRefused):
        backend_for(smtp_server).send_messages([EmailMessage(to=["to@example.com"])])


@pytest.mark.smtp_fault("data", 554, "5.6.0 Content rejected", times=1)
def test_failed_message_does_not_stop_later_ones_with_fail_silently(smtp_server: SMTPTestServer) -> None:
    backend = backend_for(smtp_server, fail_silently=True)
    messages = [EmailMessage(to=["one@example.com"]), EmailMessage(to=["two@example.com"])]
    assert backend.send_messages(messages) == 1
    assert smtp_server.messages[0].rcpt_tos == ["two@example.com"]


@pytest.mark.smtp_fault("disconnect", "data")
def test_disconnect_during_send_raises(smtp_server: SMTPTestServer) -> None:
    with pytest.raises(smtplib.SMTPServerDisconnected):
        backend_for(smtp_server).send_messages([EmailMessage(to=["to@example.com"])])
