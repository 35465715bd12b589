"""``mailqueue devserver``: a real SMTP server in a subprocess, spoken to with smtplib."""

from __future__ import annotations

import signal
import smtplib
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailqueue.devserver import free_port
from tests.cli.conftest import MAILQUEUE, Run, assert_one_line_error


class DevServer:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process, self.port = process, port

    def stop(self) -> tuple[int, str, str]:
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=10)
        return self.process.returncode, out, err


@pytest.fixture
def devserver(cli_env: dict[str, str], tmp_path: Path) -> Iterator[object]:
    servers: list[DevServer] = []

    def start(*options: str) -> DevServer:
        port = free_port()
        process = subprocess.Popen(
            [MAILQUEUE, "devserver", "--port", str(port), *options], env=cli_env, cwd=tmp_path,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert process.stderr is not None
        banner = process.stderr.readline()
        assert f"listening on 127.0.0.1:{port}" in banner, banner
        servers.append(DevServer(process, port))
        return servers[-1]

    yield start
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def message(subject: str = "Hello", to: str = "ann@example.com") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "bob@example.com", to, subject
    msg.set_content("Hi Ann")
    return msg


def test_prints_one_line_per_message_and_stops_cleanly(devserver: object) -> None:
    server = devserver()  # type: ignore[operator]
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        client.send_message(message("First"))
        client.send_message(message("Second"), to_addrs=["carl@example.com", "dee@example.com"])
    status, out, err = server.stop()
    assert status == 0
    lines = out.splitlines()
    assert "bob@example.com -> ann@example.com  'First'" in lines[0]
    assert "-> carl@example.com, dee@example.com  'Second'" in lines[1]
    assert "stopped after 2 message(s)" in err


def test_full_prints_the_whole_message(devserver: object) -> None:
    server = devserver("--full")  # type: ignore[operator]
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        client.send_message(message())
    _, out, _ = server.stop()
    assert "Subject: Hello" in out
    assert "Hi Ann" in out


def test_save_writes_eml_files_with_the_envelope(devserver: object, tmp_path: Path) -> None:
    server = devserver("--save", str(tmp_path / "inbox"), "--quiet")  # type: ignore[operator]
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        client.send_message(message(), to_addrs=["ann@example.com", "hidden@example.com"])
    _, out, _ = server.stop()
    assert out == ""
    [saved] = (tmp_path / "inbox").glob("*.eml")
    text = saved.read_text()
    assert "X-Envelope-To: ann@example.com, hidden@example.com" in text
    assert "Subject: Hello" in text


def test_simulated_failures_bounce_and_greylist(devserver: object) -> None:
    server = devserver("--simulate-failures", "--quiet")  # type: ignore[operator]
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as bounced:
            client.send_message(message(to="bounce-1@example.com"))
        assert bounced.value.recipients["bounce-1@example.com"][0] == 550
        with pytest.raises(smtplib.SMTPRecipientsRefused) as greylisted:
            client.send_message(message(to="greylist-1@example.com"))
        assert greylisted.value.recipients["greylist-1@example.com"][0] == 451
        assert client.send_message(message(to="greylist-1@example.com")) == {}
    server.stop()


def test_port_in_use_is_a_one_line_error(devserver: object, mailqueue: Run) -> None:
    server = devserver("--quiet")  # type: ignore[operator]
    line = assert_one_line_error(mailqueue("devserver", "--port", str(server.port)))
    assert f"cannot listen on 127.0.0.1:{server.port}" in line
    server.stop()


@pytest.mark.parametrize("port", ["99999", "-1", "smtp"])
def test_a_bad_port_is_a_one_line_usage_error(mailqueue: Run, port: str) -> None:
    line = assert_one_line_error(mailqueue("devserver", "--port", port, timeout=20), status=2)
    assert "port" in line
