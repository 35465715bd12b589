"""The send functions and get_connection (mailqueue.mail), as Django 6.1 documents them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import mailqueue
from mailqueue.backends import console, filebased, locmem, smtp
from mailqueue.conf import override_settings
from mailqueue.deprecation import RemovedInDjango2028Warning
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.mail import get_connection, mail_admins, mail_managers, send_mail, send_mass_mail
from tests.fixtures.smtp import SMTP_PASSWORD, SMTP_USERNAME, SMTPTestServer

ServerMessage = Callable[..., object]
LOCMEM = "mailqueue.backends.locmem.EmailBackend"
FAIL_SILENTLY_MESSAGE = (
    "fail_silently cannot be used with a connection. Pass fail_silently to get_connection() instead."
)
AUTH_MESSAGE = (
    "auth_user and auth_password cannot be used with a connection. "
    "Pass auth_user and auth_password to get_connection() instead."
)


@pytest.fixture(autouse=True)
def locmem_outbox() -> Iterator[None]:
    mailqueue.outbox = []
    with override_settings(EMAIL_BACKEND=LOCMEM):
        yield
    mailqueue.outbox = []


@pytest.fixture
def via_smtp(smtp_server: SMTPTestServer) -> Iterator[SMTPTestServer]:
    """Route the default backend to a real SMTP server."""
    with override_settings(EMAIL_BACKEND="mailqueue.backends.smtp.EmailBackend",
                           EMAIL_HOST=smtp_server.host, EMAIL_PORT=smtp_server.port):
        yield smtp_server


# --- The public names ---------------------------------------------------------------------------


def test_functions_are_importable_from_the_package() -> None:
    assert mailqueue.send_mail is send_mail
    assert mailqueue.send_mass_mail is send_mass_mail
    assert mailqueue.mail_admins is mail_admins
    assert mailqueue.mail_managers is mail_managers
    assert mailqueue.get_connection is get_connection


# --- get_connection --------------------------------------------------------------------------------


def test_get_connection_uses_email_backend() -> None:
    assert isinstance(get_connection(), locmem.EmailBackend)
    with override_settings(EMAIL_BACKEND="mailqueue.backends.console.EmailBackend"):
        assert isinstance(get_connection(), console.EmailBackend)


def test_get_connection_default_is_the_smtp_backend() -> None:
    with override_settings(EMAIL_BACKEND="mailqueue.backends.smtp.EmailBackend"):
        assert isinstance(get_connection(), smtp.EmailBackend)


def test_get_connection_loads_a_dotted_path_and_passes_keyword_arguments(tmp_path: Path) -> None:
    connection = get_connection("mailqueue.backends.filebased.EmailBackend", file_path=tmp_path)
    assert isinstance(connection, filebased.EmailBackend)
    assert connection.file_path == str(tmp_path)


def test_get_connection_passes_fail_silently() -> None:
    assert get_connection(fail_silently=True).fail_silently is True
    assert get_connection().fail_silently is False


def test_get_connection_fail_silently_by_position_warns_as_django() -> None:
    with pytest.warns(RemovedInDjango2028Warning, match=r"Passing positional argument\(s\) 'fail_silently' to "
                      r"get_connection\(\) is deprecated"):
        assert get_connection(LOCMEM, True).fail_silently is True  # type: ignore[misc]


def test_unknown_email_backend_is_improperly_configured_naming_the_setting() -> None:
    with override_settings(EMAIL_BACKEND="mailqueue.backends.nope.EmailBackend"):
        with pytest.raises(ImproperlyConfigured, match="EMAIL_BACKEND"):
            get_connection()


def test_unknown_backend_argument_is_improperly_configured_naming_the_path() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"has no attribute 'Nope' \(from the backend argument"):
        get_connection("mailqueue.backends.locmem.Nope")


# --- send_mail --------------------------------------------------------------------------------------


def test_send_mail_returns_one_and_puts_every_recipient_in_to() -> None:
    assert send_mail("Subject", "Body", "from@example.com", ["one@example.com", "two@example.com"]) == 1
    [message] = mailqueue.outbox
    assert message.to == ["one@example.com", "two@example.com"]
    assert message.message()["To"] == "one@example.com, two@example.com"


def test_send_mail_without_from_email_uses_default_from_email() -> None:
    with override_settings(DEFAULT_FROM_EMAIL="site@example.com"):
        send_mail("Subject", "Body", None, ["to@example.com"])
    assert mailqueue.outbox[0].from_email == "site@example.com"


def test_send_mail_without_recipients_returns_zero() -> None:
    assert send_mail("Subject", "Body", "from@example.com", []) == 0
    assert mailqueue.outbox == []


def test_send_mail_with_html_message_is_multipart_alternative() -> None:
    send_mail("Subject", "Text", "from@example.com", ["to@example.com"], html_message="<p>HTML</p>")
    built = mailqueue.outbox[0].message()
    assert built.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in built.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize("html", [1, 1.5, ["<p>HTML</p>"]], ids=["int", "float", "list"])
def test_send_mail_with_an_html_message_that_is_not_text_raises_naming_it(html: object) -> None:
    # Django 6.1 raises KeyError from inside the email package when the message is built.
    with pytest.raises(TypeError, match='"html_message" must be a str, not'):
        send_mail("Subject", "Text", "from@example.com", ["to@example.com"], html_message=html)  # type: ignore[arg-type]
    assert mailqueue.outbox == []


@pytest.mark.parametrize("function", [mail_admins, mail_managers])
def test_server_message_with_an_html_message_that_is_not_text_raises_naming_it(function: ServerMessage) -> None:
    with override_settings(ADMINS=["a@example.com"], MANAGERS=["m@example.com"]):
        with pytest.raises(TypeError, match='"html_message"'):
            function("Alert", "Text", html_message=42)
    assert mailqueue.outbox == []


def test_send_mail_options_by_position_warn_as_django() -> None:
    with pytest.warns(RemovedInDjango2028Warning, match=r"'fail_silently' to send_mail\(\) is deprecated"):
        assert send_mail("Subject", "Body", "from@example.com", ["to@example.com"], True) == 1  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"send_mail\(\) takes at most 9 positional argument\(s\)"):
        send_mail("S", "B", "f@example.com", ["t@example.com"], False, None, None, None, None, 1)  # type: ignore[misc]


def test_send_mail_with_a_connection_refuses_fail_silently() -> None:
    with pytest.raises(TypeError) as raised:
        send_mail("S", "B", "f@example.com", ["t@example.com"], fail_silently=True, connection=get_connection())
    assert str(raised.value) == FAIL_SILENTLY_MESSAGE


@pytest.mark.parametrize("credentials", [{"auth_user": "u"}, {"auth_password": "p"},
                                         {"auth_user": "u", "auth_password": "p"}])
def test_send_mail_with_a_connection_refuses_auth_arguments(credentials: dict[str, Any]) -> None:
    with pytest.raises(TypeError) as raised:
        send_mail("S", "B", "f@example.com", ["t@example.com"], connection=get_connection(), **credentials)
    assert str(raised.value) == AUTH_MESSAGE
    assert mailqueue.outbox == []


def test_send_mail_uses_the_given_connection(tmp_path: Path) -> None:
    connection = get_connection("mailqueue.backends.filebased.EmailBackend", file_path=tmp_path)
    send_mail("Subject", "Body", "from@example.com", ["to@example.com"], connection=connection)
    assert mailqueue.outbox == []
    assert len(list(tmp_path.iterdir())) == 1


def test_send_mail_logs_in_with_auth_user_and_auth_password(smtp_auth_server: SMTPTestServer) -> None:
    server = smtp_auth_server
    with override_settings(EMAIL_BACKEND="mailqueue.backends.smtp.EmailBackend",
                           EMAIL_HOST=server.host, EMAIL_PORT=server.port):
        sent = send_mail("Subject", "Body", "from@example.com", ["to@example.com"],
                         auth_user=SMTP_USERNAME, auth_password=SMTP_PASSWORD)
    assert sent == 1
    assert server.messages[0].authenticated


def test_send_mail_over_smtp_sends_one_message(via_smtp: SMTPTestServer) -> None:
    assert send_mail("Subject", "Body", "from@example.com", ["one@example.com", "two@example.com"]) == 1
    [received] = via_smtp.messages
    assert received.rcpt_tos == ["one@example.com", "two@example.com"]


def test_send_mail_fail_silently_returns_zero_when_the_server_is_down(via_smtp: SMTPTestServer) -> None:
    via_smtp.stop()
    assert send_mail("Subject", "Body", "from@example.com", ["to@example.com"], fail_silently=True) == 0


def test_send_mail_raises_when_the_server_is_down(via_smtp: SMTPTestServer) -> None:
    via_smtp.stop()
    with pytest.raises(ConnectionRefusedError):
        send_mail("Subject", "Body", "from@example.com", ["to@example.com"])


def test_send_mail_newline_in_subject_raises_value_error() -> None:
    with pytest.raises(ValueError):
        send_mail("Subject\nBcc: victim@example.com", "Body", "from@example.com", ["to@example.com"])


# --- send_mass_mail -----------------------------------------------------------------------------------


def test_send_mass_mail_returns_the_count_of_separate_messages() -> None:
    datatuple = (
        ("Subject", "Message.", "from@example.com", ["john@example.com"]),
        ("Subject", "Message.", "from@example.com", ["jane@example.com"]),
    )
    assert send_mass_mail(datatuple) == 2
    assert [m.to for m in mailqueue.outbox] == [["john@example.com"], ["jane@example.com"]]


def test_send_mass_mail_uses_one_smtp_connection(via_smtp: SMTPTestServer) -> None:
    datatuple = [("Subject", "Body", "from@example.com", [f"to-{n}@example.com"]) for n in range(3)]
    assert send_mass_mail(datatuple) == 3
    assert len(via_smtp.messages) == 3
    assert via_smtp.connections == 1


def test_send_mass_mail_options_by_position_warn_as_django() -> None:
    with pytest.warns(RemovedInDjango2028Warning, match=r"'fail_silently' to send_mass_mail\(\) is deprecated"):
        assert send_mass_mail([], True) == 0  # type: ignore[misc]


def test_send_mass_mail_with_a_connection_refuses_fail_silently() -> None:
    with pytest.raises(TypeError) as raised:
        send_mass_mail([], fail_silently=True, connection=get_connection())
    assert str(raised.value) == FAIL_SILENTLY_MESSAGE


def test_send_mass_mail_with_a_connection_refuses_auth_arguments() -> None:
    with pytest.raises(TypeError) as raised:
        send_mass_mail([], auth_user="u", connection=get_connection())
    assert str(raised.value) == AUTH_MESSAGE


def test_send_mass_mail_fail_silently_returns_zero_when_the_server_is_down(via_smtp: SMTPTestServer) -> None:
    via_smtp.stop()
    datatuple = [("Subject", "Body", "from@example.com", ["to@example.com"])]
    assert send_mass_mail(datatuple, fail_silently=True) == 0


# --- mail_admins and mail_managers -------------------------------------------------------------------


@pytest.mark.parametrize(("function", "setting"), [(mail_admins, "ADMINS"), (mail_managers, "MANAGERS")])
def test_server_message_goes_to_the_setting_with_prefix_and_server_email(function: ServerMessage, setting: str) -> None:
    with override_settings(**{setting: ["a@example.com", "b@example.com"]},
                           SERVER_EMAIL="server@example.com", EMAIL_SUBJECT_PREFIX="[Site] "):
        assert function("Alert", "Content") is None
    [message] = mailqueue.outbox
    assert (message.subject, message.from_email) == ("[Site] Alert", "server@example.com")
    assert message.to == ["a@example.com", "b@example.com"]


@pytest.mark.parametrize(("function", "setting"), [(mail_admins, "ADMINS"), (mail_managers, "MANAGERS")])
def test_server_message_with_html_is_multipart_alternative(function: ServerMessage, setting: str) -> None:
    with override_settings(**{setting: ["a@example.com"]}):
        function("Alert", "Text", html_message="<p>HTML</p>")
    assert mailqueue.outbox[0].message().get_content_type() == "multipart/alternative"


@pytest.mark.parametrize(("function", "setting"), [(mail_admins, "ADMINS"), (mail_managers, "MANAGERS")])
def test_empty_setting_sends_nothing_and_opens_no_connection(
    function: ServerMessage, setting: str, via_smtp: SMTPTestServer
) -> None:
    with override_settings(**{setting: []}):
        assert function("Alert", "Content") is None
    assert via_smtp.connections == 0


@pytest.mark.parametrize("function", [mail_admins, mail_managers])
@pytest.mark.parametrize("value", [
    "admin@example.com",
    ["admin@example.com", 42],
])
def test_setting_that_is_not_a_list_of_strings_is_improperly_configured(function: ServerMessage, value: object) -> None:
    setting = "ADMINS" if function is mail_admins else "MANAGERS"
    with override_settings(**{setting: value}):
        with pytest.raises(ImproperlyConfigured) as raised:
            function("Alert", "Content")
    assert str(raised.value) == f"The {setting} setting must be a list of email address strings."


@pytest.mark.parametrize("function", [mail_admins, mail_managers])
def test_server_message_with_a_connection_refuses_fail_silently(function: ServerMessage) -> None:
    with override_settings(ADMINS=["a@example.com"], MANAGERS=["m@example.com"]):
        with pytest.raises(TypeError) as raised:
            function("Alert", "Content", fail_silently=True, connection=get_connection())
    assert str(raised.value) == FAIL_SILENTLY_MESSAGE


@pytest.mark.parametrize("function", [mail_admins, mail_managers])
def test_server_message_options_by_position_warn_as_django(function: ServerMessage) -> None:
    with pytest.warns(RemovedInDjango2028Warning, match=rf"'fail_silently' to {function.__name__}\(\) is deprecated"):
        function("Alert", "Content", True)


@pytest.mark.parametrize("function", [mail_admins, mail_managers])
def test_server_message_fail_silently_swallows_a_down_server(function: ServerMessage, via_smtp: SMTPTestServer) -> None:
    via_smtp.stop()
    with override_settings(ADMINS=["a@example.com"], MANAGERS=["m@example.com"]):
        assert function("Alert", "Content", fail_silently=True) is None
        with pytest.raises(ConnectionRefusedError):
            function("Alert", "Content")


@pytest.mark.parametrize("function", [mail_admins, mail_managers])
def test_server_message_uses_the_given_connection(function: ServerMessage, via_smtp: SMTPTestServer) -> None:
    with override_settings(ADMINS=["a@example.com"], MANAGERS=["m@example.com"]):
        with get_connection() as connection:
            function("One", "Content", connection=connection)
            function("Two", "Content", connection=connection)
    assert len(via_smtp.messages) == 2
    assert via_smtp.connections == 1


@pytest.mark.parametrize(("function", "setting"), [(mail_admins, "ADMINS"), (mail_managers, "MANAGERS")])
def test_name_address_pairs_are_sent_to_the_addresses_with_djangos_warning(
    function: ServerMessage, setting: str
) -> None:
    with override_settings(**{setting: [("Ann", "ann@example.com"), ("Bob", "bob@example.com")]}):
        with pytest.warns(RemovedInDjango2028Warning, match=rf"\(name, address\) pairs in the {setting} setting"):
            function("Alert", "Content")
    assert mailqueue.outbox[0].to == ["ann@example.com", "bob@example.com"]
