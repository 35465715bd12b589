from __future__ import annotations

import email
import email.message
import email.policy
import io
import sys
import warnings
from typing import Any

import pytest

from mailqueue.backends import console
from mailqueue.message import EmailMessage
from tests.backends.contract import MailboxContract

SEPARATOR = "\n" + "-" * 79 + "\n"


def parse_stream(text: str) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(chunk.encode(), policy=email.policy.default)
        for chunk in text.split(SEPARATOR) if chunk
    ]


class TestConsoleBackend(MailboxContract):
    """Backends created without a stream write to sys.stdout, read back through capsys."""

    @pytest.fixture(autouse=True)
    def stdout(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.written = ""

    def make_backend(self, **kwargs: Any) -> console.EmailBackend:
        return console.EmailBackend(**kwargs)

    def mailbox(self) -> list[email.message.EmailMessage]:
        self.written += self.capsys.readouterr().out
        return parse_stream(self.written)

    def flush_mailbox(self) -> None:
        self.capsys.readouterr()
        self.written = ""

    def test_default_stream_is_the_current_stdout(self) -> None:
        assert self.make_backend().stream is sys.stdout


def test_stream_argument_receives_the_messages() -> None:
    stream = io.StringIO()
    console.EmailBackend(stream=stream).send_messages([EmailMessage(to=["to@example.com"])])
    [message] = parse_stream(stream.getvalue())
    assert message["To"] == "to@example.com"
    assert "\nDate: " in stream.getvalue()


def test_each_message_ends_with_a_line_of_79_dashes() -> None:
    stream = io.StringIO()
    console.EmailBackend(stream=stream).send_messages([EmailMessage(to=["to@example.com"])] * 2)
    text = stream.getvalue()
    assert text.count("\n" + "-" * 79 + "\n") == 2
    assert text.endswith("\n" + "-" * 79 + "\n")


def test_fail_silently_swallows_errors_and_counts_what_was_written() -> None:
    good = EmailMessage(to=["to@example.com"])
    bad = EmailMessage(subject="Subject\nMultiline", to=["to@example.com"])
    stream = io.StringIO()
    assert console.EmailBackend(stream=stream, fail_silently=True).send_messages([good, bad]) == 1


def test_errors_are_raised_without_fail_silently() -> None:
    bad = EmailMessage(subject="Subject\nMultiline", to=["to@example.com"])
    with pytest.raises(ValueError):
        console.EmailBackend(stream=io.StringIO()).send_messages([bad])


def test_fail_silently_may_come_by_position_as_in_django() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Django's console backend takes it without a warning
        assert console.EmailBackend(True).fail_silently is True
    with pytest.raises(TypeError):
        console.EmailBackend(True, io.StringIO())  # type: ignore[call-arg]  # stream is keyword-only there too
