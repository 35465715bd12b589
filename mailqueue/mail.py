"""The send functions of Django 6.1's ``django.core.mail``, and ``get_connection``.

Options after the required arguments are keyword-only: this is a new library, so there is
no deprecated positional path. Combining a ``connection`` with options that only a new
connection could use is a TypeError, as in Django 6.1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from mailqueue.backends.base import BaseEmailBackend
from mailqueue.conf import settings
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.loading import import_string
from mailqueue.message import CONNECTION_WITH_FAIL_SILENTLY, EmailMessage, EmailMultiAlternatives

__all__ = ["get_connection", "mail_admins", "mail_managers", "send_mail", "send_mass_mail"]

AUTH_WITH_CONNECTION = (
    "auth_user and auth_password cannot be used with a connection. "
    "Pass auth_user and auth_password to get_connection() instead."
)

DataTuple = tuple[str, str, "str | None", Sequence[str]]


def get_connection(
    backend: str | None = None, *, fail_silently: bool = False, **kwargs: Any
) -> BaseEmailBackend:
    """Return an instance of ``backend`` (a dotted path), by default EMAIL_BACKEND.

    ``fail_silently`` and the other keyword arguments go to the backend's constructor.
    """
    if backend is None:
        backend_class = import_string(settings.EMAIL_BACKEND, setting="EMAIL_BACKEND")
    else:
        backend_class = import_string(backend, setting="the backend argument of get_connection()")
    if fail_silently:
        kwargs["fail_silently"] = fail_silently
    connection: BaseEmailBackend = backend_class(**kwargs)
    return connection


def _connection_for(
    connection: BaseEmailBackend | None,
    *,
    fail_silently: bool,
    auth_user: str | None = None,
    auth_password: str | None = None,
) -> BaseEmailBackend:
    """The given connection, or a new default one built from the other options."""
    if connection is None:
        options: dict[str, Any] = {"fail_silently": fail_silently}
        if auth_user is not None:
            options["username"] = auth_user
        if auth_password is not None:
            options["password"] = auth_password
        return get_connection(**options)
    if fail_silently:
        raise TypeError(CONNECTION_WITH_FAIL_SILENTLY)
    if auth_user is not None or auth_password is not None:
        raise TypeError(AUTH_WITH_CONNECTION)
    return connection


def send_mail(
    subject: str,
    message: str,
    from_email: str | None,
    recipient_list: Sequence[str],
    *,
    fail_silently: bool = False,
    auth_user: str | None = None,
    auth_password: str | None = None,
    connection: BaseEmailBackend | None = None,
    html_message: str | None = None,
) -> int:
    """Send one message to everyone in ``recipient_list`` (all in To:); return 0 or 1."""
    _check_html_message(html_message)
    connection = _connection_for(
        connection, fail_silently=fail_silently, auth_user=auth_user, auth_password=auth_password
    )
    mail = EmailMultiAlternatives(subject, message, from_email, recipient_list, connection=connection)
    if html_message:
        mail.attach_alternative(html_message, "text/html")
    return mail.send()


def _check_html_message(html_message: object) -> None:
    """Name the argument: Django crashes with a KeyError deep in the email package."""
    if html_message is not None and not isinstance(html_message, (str, bytes)):
        raise TypeError(f'"html_message" must be a str, not {type(html_message).__name__}.')


def send_mass_mail(
    datatuple: Iterable[DataTuple],
    *,
    fail_silently: bool = False,
    auth_user: str | None = None,
    auth_password: str | None = None,
    connection: BaseEmailBackend | None = None,
) -> int:
    """Send one message per ``(subject, message, from_email, recipient_list)`` over one
    connection; return how many were sent."""
    connection = _connection_for(
        connection, fail_silently=fail_silently, auth_user=auth_user, auth_password=auth_password
    )
    messages = [
        EmailMessage(subject, message, sender, recipients, connection=connection)
        for subject, message, sender, recipients in datatuple
    ]
    return connection.send_messages(messages)


def _server_recipients(setting_name: str) -> list[str]:
    recipients = getattr(settings, setting_name)
    if not recipients:
        return []
    if not isinstance(recipients, (list, tuple)) or not all(isinstance(a, str) for a in recipients):
        raise ImproperlyConfigured(f"The {setting_name} setting must be a list of email address strings.")
    return list(recipients)


def _send_server_message(
    setting_name: str,
    subject: str,
    message: str,
    *,
    fail_silently: bool,
    connection: BaseEmailBackend | None,
    html_message: str | None,
) -> None:
    if connection is not None and fail_silently:
        raise TypeError(CONNECTION_WITH_FAIL_SILENTLY)
    _check_html_message(html_message)
    recipients = _server_recipients(setting_name)
    if not recipients:
        return
    mail = EmailMultiAlternatives(
        subject=f"{settings.EMAIL_SUBJECT_PREFIX}{subject}",
        body=message,
        from_email=settings.SERVER_EMAIL,
        to=recipients,
        connection=connection,
    )
    if html_message:
        mail.attach_alternative(html_message, "text/html")
    mail.send(fail_silently=fail_silently)


def mail_admins(
    subject: str,
    message: str,
    *,
    fail_silently: bool = False,
    connection: BaseEmailBackend | None = None,
    html_message: str | None = None,
) -> None:
    """Send a message to the ADMINS setting's addresses (nothing if it is empty)."""
    _send_server_message(
        "ADMINS", subject, message,
        fail_silently=fail_silently, connection=connection, html_message=html_message,
    )


def mail_managers(
    subject: str,
    message: str,
    *,
    fail_silently: bool = False,
    connection: BaseEmailBackend | None = None,
    html_message: str | None = None,
) -> None:
    """Send a message to the MANAGERS setting's addresses (nothing if it is empty)."""
    _send_server_message(
        "MANAGERS", subject, message,
        fail_silently=fail_silently, connection=connection, html_message=html_message,
    )
