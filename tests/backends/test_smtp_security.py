"""STARTTLS, implicit TLS, client certificates and AUTH, against real aiosmtpd servers."""

from __future__ import annotations

import smtplib
import ssl
from pathlib import Path

import pytest
import trustme

from mailqueue import mailers
from mailqueue.backends import smtp
from mailqueue.conf import override_settings
from mailqueue.message import EmailMessage
from tests.fixtures.smtp import SMTP_PASSWORD, SMTP_USERNAME, SMTPTestServer


def send_one(backend: smtp.EmailBackend) -> int:
    return backend.send_messages([EmailMessage("Subject", "Body", "from@example.com", ["to@example.com"])])


# --- STARTTLS ---------------------------------------------------------------------------------


def test_use_tls_upgrades_with_starttls(smtp_starttls_server: SMTPTestServer) -> None:
    server = smtp_starttls_server
    assert send_one(smtp.EmailBackend(host=server.host, port=server.port, use_tls=True)) == 1
    assert server.messages[0].tls is True
    assert server.messages[0].peercert is None  # no client certificate was configured


def test_without_use_tls_a_starttls_only_server_refuses(smtp_starttls_server: SMTPTestServer) -> None:
    server = smtp_starttls_server
    with pytest.raises(smtplib.SMTPSenderRefused):
        send_one(smtp.EmailBackend(host=server.host, port=server.port))


def test_use_tls_against_a_server_without_starttls_raises(smtp_server: SMTPTestServer) -> None:
    backend = smtp.EmailBackend(host=smtp_server.host, port=smtp_server.port, use_tls=True)
    with pytest.raises(smtplib.SMTPNotSupportedError, match="STARTTLS extension not supported"):
        backend.open()
    assert backend.connection is None


def test_server_certificate_is_verified(
    smtp_starttls_server: SMTPTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stranger = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    monkeypatch.setenv("SSL_CERT_FILE", str(stranger))
    server = smtp_starttls_server
    backend = smtp.EmailBackend(host=server.host, port=server.port, use_tls=True)
    with pytest.raises(ssl.SSLCertVerificationError):
        backend.open()
    assert backend.connection is None


def test_starttls_presents_the_client_certificate(
    smtp_starttls_server: SMTPTestServer, client_cert: tuple[str, str]
) -> None:
    certfile, keyfile = client_cert
    server = smtp_starttls_server
    backend = smtp.EmailBackend(
        host=server.host, port=server.port, use_tls=True, ssl_certfile=certfile, ssl_keyfile=keyfile
    )
    send_one(backend)
    peercert = server.messages[0].peercert
    assert peercert is not None
    assert (("commonName", "mailqueue-test-client"),) in peercert["subject"]


# --- Implicit TLS --------------------------------------------------------------------------------


def test_use_ssl_speaks_tls_from_the_first_byte(smtp_ssl_server: SMTPTestServer) -> None:
    server = smtp_ssl_server
    backend = smtp.EmailBackend(host=server.host, port=server.port, use_ssl=True)
    assert backend.connection_class is smtplib.SMTP_SSL
    assert send_one(backend) == 1
    assert server.messages[0].tls is True


def test_use_ssl_presents_the_client_certificate(
    smtp_ssl_server: SMTPTestServer, client_cert: tuple[str, str]
) -> None:
    certfile, keyfile = client_cert
    server = smtp_ssl_server
    send_one(smtp.EmailBackend(
        host=server.host, port=server.port, use_ssl=True, ssl_certfile=certfile, ssl_keyfile=keyfile))
    assert server.messages[0].peercert is not None


def test_use_ssl_against_a_plain_server_fails(smtp_server: SMTPTestServer) -> None:
    backend = smtp.EmailBackend(host=smtp_server.host, port=smtp_server.port, use_ssl=True, timeout=5)
    with pytest.raises(ssl.SSLError):
        backend.open()


def test_missing_client_certificate_file_fails_on_open(smtp_ssl_server: SMTPTestServer, tmp_path: Path) -> None:
    server = smtp_ssl_server
    backend = smtp.EmailBackend(
        host=server.host, port=server.port, use_ssl=True, ssl_certfile=str(tmp_path / "missing.pem"))
    with pytest.raises(FileNotFoundError):
        backend.open()


# --- A key file without a certificate file: stored, as in Django 6.1 ------------------------------


def test_keyfile_without_certfile_is_stored(client_cert: tuple[str, str]) -> None:
    _, keyfile = client_cert
    assert smtp.EmailBackend(host="h", ssl_keyfile=keyfile).ssl_keyfile == keyfile
    with override_settings(EMAIL_SSL_KEYFILE=keyfile):
        backend = smtp.EmailBackend(host="h")
    assert (backend.ssl_keyfile, backend.ssl_certfile) == (keyfile, None)
    with override_settings(MAILERS={"m": {"OPTIONS": {"host": "h", "ssl_keyfile": keyfile}}}):
        assert mailers["m"].ssl_keyfile == keyfile


def test_keyfile_without_certfile_fails_on_the_first_tls_connection_as_in_django(
    smtp_starttls_server: SMTPTestServer, client_cert: tuple[str, str]
) -> None:
    server = smtp_starttls_server
    backend = smtp.EmailBackend(host=server.host, port=server.port, use_tls=True, ssl_keyfile=client_cert[1])
    with pytest.raises(TypeError, match="certfile should be a valid filesystem path"):  # Django's error too
        backend.open()
    assert backend.connection is None and server.messages == []


def test_keyfile_without_certfile_is_not_used_without_tls(smtp_server: SMTPTestServer) -> None:
    backend = smtp.EmailBackend(host=smtp_server.host, port=smtp_server.port, ssl_keyfile="missing-key.pem")
    assert send_one(backend) == 1


# --- AUTH ----------------------------------------------------------------------------------------


def test_login_with_username_and_password(smtp_auth_server: SMTPTestServer) -> None:
    server = smtp_auth_server
    backend = smtp.EmailBackend(host=server.host, port=server.port, username=SMTP_USERNAME, password=SMTP_PASSWORD)
    assert send_one(backend) == 1
    assert server.messages[0].authenticated is True


def test_wrong_password_raises_and_keeps_no_connection(smtp_auth_server: SMTPTestServer) -> None:
    server = smtp_auth_server
    backend = smtp.EmailBackend(host=server.host, port=server.port, username=SMTP_USERNAME, password="wrong")
    with pytest.raises(smtplib.SMTPAuthenticationError):
        backend.open()
    assert backend.connection is None  # stored only once fully set up


def test_failed_login_then_a_good_one_works(smtp_auth_server: SMTPTestServer) -> None:
    server = smtp_auth_server
    backend = smtp.EmailBackend(host=server.host, port=server.port, username=SMTP_USERNAME, password="wrong")
    with pytest.raises(smtplib.SMTPAuthenticationError):
        backend.open()
    backend.password = SMTP_PASSWORD
    assert backend.open() is True
    backend.close()


def test_wrong_password_with_fail_silently_opens_nothing(smtp_auth_server: SMTPTestServer) -> None:
    server = smtp_auth_server
    backend = smtp.EmailBackend(
        host=server.host, port=server.port, username=SMTP_USERNAME, password="wrong", fail_silently=True)
    assert backend.open() is None
    assert send_one(backend) == 0


@pytest.mark.parametrize(("username", "password"), [("", ""), (SMTP_USERNAME, ""), ("", SMTP_PASSWORD)])
def test_no_login_unless_both_username_and_password_are_set(
    smtp_auth_server: SMTPTestServer, username: str, password: str
) -> None:
    server = smtp_auth_server
    backend = smtp.EmailBackend(host=server.host, port=server.port, username=username, password=password)
    with pytest.raises(smtplib.SMTPSenderRefused) as raised:
        send_one(backend)
    assert raised.value.smtp_code == 530  # authentication required: no login was attempted


def test_login_against_a_server_without_auth_raises(smtp_server: SMTPTestServer) -> None:
    backend = smtp.EmailBackend(host=smtp_server.host, port=smtp_server.port, username="u", password="p")
    with pytest.raises(smtplib.SMTPNotSupportedError, match="SMTP AUTH extension not supported"):
        backend.open()
