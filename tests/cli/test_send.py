"""``mailqueue send``: through the SMTP backend to aiosmtpd, and through the queue backend to Redis."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from mailqueue.devserver import free_port
from tests.cli.conftest import Run, assert_one_line_error
from tests.queue_inspection import queued_tasks

SMTP_BACKEND = "mailqueue.backends.smtp.EmailBackend"
EML = (
    "From: Ann <ann@example.com>\n"
    "To: bob@example.com\n"
    "Cc: carl@example.com\n"
    "Bcc: secret@example.com\n"
    "Subject: Raw one\n"
    "\n"
    "Sent as it is.\n"
)


def smtp_env(smtp_server: Any) -> dict[str, str]:
    return {"EMAIL_BACKEND": SMTP_BACKEND, "EMAIL_HOST": smtp_server.host, "EMAIL_PORT": str(smtp_server.port)}


def test_builds_a_message_from_options_and_sends_it_over_smtp(
    mailqueue: Run, smtp_server: Any, tmp_path: Path
) -> None:
    (tmp_path / "report.csv").write_text("a,b\n1,2\n")
    result = mailqueue(
        "send", "--from", "ann@example.com", "--to", "bob@example.com,carl@example.com", "--cc", "dee@example.com",
        "--bcc", "hidden@example.com", "--subject", "Quarterly", "--body", "Numbers attached.",
        "--html", "<p>Numbers <b>attached</b>.</p>", "--attach", "report.csv", "--header", "X-Tag: q3",
        env=smtp_env(smtp_server),
    )
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "1", "")
    [received] = smtp_server.messages
    assert received.mail_from == "ann@example.com"
    assert sorted(received.rcpt_tos) == ["bob@example.com", "carl@example.com", "dee@example.com",
                                         "hidden@example.com"]
    message = received.message()
    assert message["Subject"] == "Quarterly"
    assert message["X-Tag"] == "q3"
    assert message["Bcc"] is None
    assert message.get_body(("html",)).get_content() == "<p>Numbers <b>attached</b>.</p>\n"
    [attachment] = message.iter_attachments()
    assert attachment.get_filename() == "report.csv"


def test_body_dash_reads_standard_input(mailqueue: Run, smtp_server: Any) -> None:
    result = mailqueue("send", "--to", "bob@example.com", "--body", "-", input="from stdin\n",
                       env=smtp_env(smtp_server))
    assert result.returncode == 0, result.stderr
    assert smtp_server.messages[0].message().get_content() == "from stdin\n"


def test_eml_on_standard_input_is_sent_as_it_is(mailqueue: Run, smtp_server: Any) -> None:
    result = mailqueue("send", "--eml", input=EML, env=smtp_env(smtp_server))
    assert result.returncode == 0, result.stderr
    [received] = smtp_server.messages
    assert received.mail_from == "ann@example.com"
    assert sorted(received.rcpt_tos) == ["bob@example.com", "carl@example.com", "secret@example.com"]
    message = received.message()
    assert message["Subject"] == "Raw one"
    assert message["Bcc"] is None
    assert message["Message-ID"] and message["Date"]
    assert message.get_content() == "Sent as it is.\n"


def test_eml_recipients_can_be_replaced(mailqueue: Run, smtp_server: Any) -> None:
    result = mailqueue("send", "--eml", "--to", "only@example.com", input=EML, env=smtp_env(smtp_server))
    assert result.returncode == 0, result.stderr
    assert sorted(smtp_server.messages[0].rcpt_tos) == ["carl@example.com", "only@example.com",
                                                        "secret@example.com"]


def test_queue_backend_prints_the_task_id_and_enqueues(mailqueue: Run, redis_url: str, redis_client: Any) -> None:
    result = mailqueue(
        "send", "--to", "bob@example.com", "--subject", "Queued", "--body", "Later.",
        env={"EMAIL_BACKEND": "mailqueue.backends.queue.EmailBackend", "MAILQUEUE_BROKER_URL": redis_url},
    )
    assert result.returncode == 0, result.stderr
    task_id = result.stdout.strip()
    assert str(uuid.UUID(task_id)) == task_id
    [task] = queued_tasks(redis_client)
    assert task.headers["id"] == task_id
    assert task.payloads[0]["recipients"] == ["bob@example.com"]


def test_unreachable_broker_is_one_line(mailqueue: Run) -> None:
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    line = assert_one_line_error(mailqueue(
        "send", "--to", "bob@example.com", "--body", "x",
        env={"EMAIL_BACKEND": "mailqueue.backends.queue.EmailBackend", "MAILQUEUE_BROKER_URL": dead_broker},
    ))
    assert re.match(r"mailqueue: error: Could not enqueue on the broker at redis://127\.0\.0\.1:\d+/0", line)


def test_unreachable_smtp_server_is_one_line(mailqueue: Run) -> None:
    port = free_port()
    line = assert_one_line_error(mailqueue(
        "send", "--to", "bob@example.com", "--body", "x",
        env={"EMAIL_BACKEND": SMTP_BACKEND, "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(port)},
    ))
    assert f"SMTP server 127.0.0.1:{port}" in line
    assert "refused" in line.lower()


def test_invalid_address_is_one_line(mailqueue: Run, smtp_server: Any) -> None:
    line = assert_one_line_error(mailqueue("send", "--to", "not an address", "--body", "x",
                                           env=smtp_env(smtp_server)))
    assert "not an address" in line
    assert smtp_server.messages == []


def test_missing_attachment_is_one_line(mailqueue: Run, smtp_server: Any) -> None:
    line = assert_one_line_error(mailqueue("send", "--to", "bob@example.com", "--attach", "nope.pdf",
                                           env=smtp_env(smtp_server)))
    assert "nope.pdf" in line


def test_no_recipient_is_a_usage_error(mailqueue: Run) -> None:
    line = assert_one_line_error(mailqueue("send", "--subject", "Hi"), status=2)
    assert "no recipient" in line


def test_eml_with_building_options_is_a_usage_error(mailqueue: Run) -> None:
    line = assert_one_line_error(mailqueue("send", "--eml", "--subject", "Hi", input=EML), status=2)
    assert "--eml" in line


def test_malformed_header_option_is_a_one_line_usage_error(mailqueue: Run, smtp_server: Any) -> None:
    line = assert_one_line_error(mailqueue("send", "--to", "bob@example.com", "--header", "NoColon",
                                           env=smtp_env(smtp_server)), status=2)
    assert "'Name: value'" in line


def test_eml_without_from_is_one_line(mailqueue: Run, smtp_server: Any) -> None:
    line = assert_one_line_error(mailqueue("send", "--eml", input="To: bob@example.com\n\nhi\n",
                                           env=smtp_env(smtp_server)))
    assert "no From header" in line


@pytest.mark.parametrize("headers", ["", "To: \nCc:\n"])
def test_eml_without_recipients_says_so(mailqueue: Run, smtp_server: Any, headers: str) -> None:
    eml = f"From: ann@example.com\n{headers}Subject: Hi\n\nhi\n"
    line = assert_one_line_error(mailqueue("send", "--eml", input=eml, env=smtp_env(smtp_server)))
    assert "has no recipient" in line and "--to" in line
    assert smtp_server.messages == []


def test_unknown_backend_is_one_line(mailqueue: Run) -> None:
    line = assert_one_line_error(mailqueue("send", "--to", "bob@example.com", "--backend", "no.such.Backend"))
    assert "no.such" in line


def test_an_incomplete_address_is_explained(mailqueue: Run, smtp_server: Any) -> None:
    line = assert_one_line_error(mailqueue("send", "--to", "ann@", "--body", "hi", env=smtp_env(smtp_server)))
    assert "'ann@'" in line and "local-part@domain" in line and "index" not in line
