"""Type-checked use of the public API (run by tests/test_code_quality.py under mypy --strict).

It is never executed; it breaks the build when a public signature loses or changes its types.
"""

from __future__ import annotations

import email.message
import email.policy

import mailqueue
from mailqueue.backends.base import BaseEmailBackend
from mailqueue.backends.queue import EmailBackend as QueueBackend
from mailqueue.conf import override_settings, settings
from mailqueue.exceptions import BrokerUnavailable, ImproperlyConfigured, MailQueueError
from mailqueue.mail import get_connection, mail_admins, send_mail, send_mass_mail
from mailqueue.message import EmailAlternative, EmailAttachment, EmailMessage, EmailMultiAlternatives
from mailqueue.queue.delivery import Delivery


def application_code() -> int:
    sent: int = send_mail("Subject", "Body", "from@example.com", ["to@example.com"], fail_silently=True)
    sent += send_mass_mail((("S", "B", None, ["a@example.com"]),))
    mail_admins("Subject", "Body", html_message="<p>Body</p>")
    return sent


def message_code() -> bytes:
    msg = EmailMultiAlternatives("Subject", "Body", to=["to@example.com"], cc=["cc@example.com"])
    msg.attach_alternative("<p>Body</p>", "text/html")
    msg.attach("notes.txt", "text", "text/plain")
    alternatives: list[EmailAlternative] = msg.alternatives
    assert alternatives
    attachment = EmailAttachment("a.bin", b"\x00", "application/octet-stream")
    plain = EmailMessage("S", "B", attachments=[attachment])
    built: email.message.EmailMessage = plain.message(policy=email.policy.SMTP)
    recipients: list[str] = msg.recipients()
    assert recipients
    return built.as_bytes()


def backend_code() -> None:
    connection: BaseEmailBackend = get_connection("mailqueue.backends.locmem.EmailBackend")
    with connection:
        connection.send_messages([EmailMessage("S", "B", to=["to@example.com"])])
    queue = QueueBackend(fail_silently=False, batch_size=10)
    message = EmailMessage("S", "B", to=["to@example.com"])
    try:
        count: int = queue.send_messages([message])
    except BrokerUnavailable:
        count = 0
    if count:
        delivery: Delivery = message.delivery  # type: ignore[attr-defined]  # added by the backend
        report: dict[str, object] = delivery.get(timeout=1.0)
        assert report


def settings_code() -> None:
    with override_settings(EMAIL_PORT=2525):
        port: int = settings.EMAIL_PORT
        assert port
    outbox: list[object] = mailqueue.outbox
    assert isinstance(outbox, list)


def errors_code() -> None:
    try:
        send_mail("S", "B", None, ["to@example.com"])
    except (ImproperlyConfigured, MailQueueError, ValueError, ConnectionError):
        pass
