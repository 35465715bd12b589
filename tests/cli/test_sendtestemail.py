"""``mailqueue sendtestemail``: Django's sendtestemail, run as the installed console script."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

from tests.cli.conftest import Run, assert_one_line_error

HOST = re.escape(socket.gethostname())
SUBJECT = re.compile(rf"Test email from {HOST} on \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\+00:00")


def smtp_env(server: Any, **extra: str) -> dict[str, str]:
    return {"EMAIL_HOST": server.host, "EMAIL_PORT": str(server.port), **extra}


def test_sends_djangos_test_message_to_every_address(mailqueue: Run, smtp_server: Any) -> None:
    result = mailqueue("sendtestemail", "ann@example.com", "bob@example.com", env=smtp_env(smtp_server))
    assert result.returncode == 0, result.stderr
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["ann@example.com", "bob@example.com"]
    message = received.message()
    assert SUBJECT.fullmatch(message["Subject"]), message["Subject"]
    assert message["From"] == "webmaster@localhost"
    assert message.get_content() == "If you're reading this, it was successful.\n"


def test_admins_and_managers_get_their_own_messages(mailqueue: Run, smtp_server: Any) -> None:
    env = smtp_env(smtp_server, ADMINS="admin@example.com", MANAGERS="manager@example.com")
    result = mailqueue("sendtestemail", "--managers", "--admins", env=env)
    assert result.returncode == 0, result.stderr
    bodies = {m.rcpt_tos[0]: m.message() for m in smtp_server.messages}
    assert sorted(bodies) == ["admin@example.com", "manager@example.com"]
    assert bodies["admin@example.com"].get_content() == "This email was sent to the site admins.\n"
    assert bodies["manager@example.com"].get_content() == "This email was sent to the site managers.\n"
    assert bodies["admin@example.com"]["Subject"].startswith("[Django] Test email from ")


def test_using_sends_through_the_named_mailer(mailqueue: Run, smtp_server: Any) -> None:
    mailers = {"default": {"BACKEND": "mailqueue.backends.dummy.EmailBackend"},
               "ops": {"OPTIONS": {"host": smtp_server.host, "port": smtp_server.port}}}
    result = mailqueue("sendtestemail", "ann@example.com", "--using", "ops", env={"MAILERS": json.dumps(mailers)})
    assert result.returncode == 0, result.stderr
    assert [m.rcpt_tos for m in smtp_server.messages] == [["ann@example.com"]]


def test_an_unknown_mailer_is_one_line_naming_it(mailqueue: Run) -> None:
    result = mailqueue("sendtestemail", "ann@example.com", "--using", "nope")
    assert "The mailer 'nope' is not configured." in assert_one_line_error(result)


def test_without_recipients_or_options_it_says_what_to_give(mailqueue: Run) -> None:
    line = assert_one_line_error(mailqueue("sendtestemail"), status=2)
    assert "You must specify some email recipients, or pass the --managers or --admin options." in line


def test_help_names_every_option(mailqueue: Run) -> None:
    result = mailqueue("sendtestemail", "--help")
    assert result.returncode == 0
    for option in ("--managers", "--admins", "--using", "settings.ADMINS", "MAILERS alias"):
        assert option in result.stdout
