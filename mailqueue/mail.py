"""The send functions of Django 6.1's ``django.core.mail``, ``get_connection`` and ``mailers``.

``using="alias"`` picks a MAILERS entry. The older options (``connection``, ``fail_silently``,
``auth_user``/``auth_password``, options passed by position) still work with Django 6.1's
deprecation warnings (``mailqueue.deprecation``); combining a ``connection`` or ``using`` with
options only a new connection could use is a TypeError, as in Django 6.1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from mailqueue.backends.base import BaseEmailBackend
from mailqueue.conf import settings
from mailqueue.deprecation import (
    GET_CONNECTION_WARNING,
    deprecate_posargs,
    legacy_recipients,
    report_using_incompatibility,
    warn_about_external_use,
    warn_about_send_options,
)
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.handler import DEFAULT_MAILER_ALIAS, mailers, warn_about_default_mailer
from mailqueue.loading import import_string
from mailqueue.message import CONNECTION_WITH_FAIL_SILENTLY, EmailMessage, EmailMultiAlternatives

__all__ = ["get_connection", "mail_admins", "mail_managers", "mailers", "send_mail", "send_mass_mail"]

AUTH_WITH_CONNECTION = (
    "auth_user and auth_password cannot be used with a connection. "
    "Pass auth_user and auth_password to get_connection() instead."
)

DataTuple = tuple[str, str, "str | None", Sequence[str]]


@deprecate_posargs(["fail_silently"])
def get_connection(
    backend: str | None = None, *, fail_silently: bool = False, **kwargs: Any
) -> BaseEmailBackend:
    """Return an instance of ``backend`` (a dotted path), by default EMAIL_BACKEND.

    Deprecated in Django 6.1 in favour of ``mailers``: with MAILERS set, it builds the
    default mailer with ``kwargs`` as extra OPTIONS. ``fail_silently`` and the other keyword
    arguments go to the backend's constructor.
    """
    warn_about_external_use(GET_CONNECTION_WARNING, skip_frames=1)
    if fail_silently:
        kwargs["fail_silently"] = fail_silently
    if mailers.is_configured:
        if backend is not None:
            raise RuntimeError("get_connection(backend, ...) is not supported with MAILERS.")
        return mailers.create_connection(DEFAULT_MAILER_ALIAS, deprecated_options=kwargs)
    if backend is None:
        return mailers.legacy_default(**kwargs)
    warn_about_default_mailer()
    backend_class = import_string(backend, setting="the backend argument of get_connection()")
    connection: BaseEmailBackend = backend_class(**kwargs)
    return connection


def _connection_for(
    connection: BaseEmailBackend | None,
    *,
    using: str | None,
    fail_silently: bool,
    auth_user: str | None = None,
    auth_password: str | None = None,
) -> BaseEmailBackend:
    """The mailer ``using``, the given connection, or a new default one built from the options."""
    if using is not None:
        report_using_incompatibility(connection, fail_silently, auth_user, auth_password)
        return mailers[using]
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


@deprecate_posargs(["fail_silently", "auth_user", "auth_password", "connection", "html_message"])
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
    using: str | None = None,
) -> int:
    """Send one message to everyone in ``recipient_list`` (all in To:); return 0 or 1."""
    warn_about_send_options(
        fail_silently=fail_silently, connection=connection,
        auth=auth_user is not None or auth_password is not None,
    )
    _check_html_message(html_message)
    if using is not None:  # the mailer is created by send(), only if there is someone to send to
        report_using_incompatibility(connection, fail_silently, auth_user, auth_password)
    else:
        connection = _connection_for(
            connection, using=None, fail_silently=fail_silently, auth_user=auth_user, auth_password=auth_password
        )
    mail = EmailMultiAlternatives(subject, message, from_email, recipient_list, connection=connection)
    if html_message:
        mail.attach_alternative(html_message, "text/html")
    return mail.send(using=using)


def _check_html_message(html_message: object) -> None:
    """Name the argument: Django crashes with a KeyError deep in the email package."""
    if html_message is not None and not isinstance(html_message, (str, bytes)):
        raise TypeError(f'"html_message" must be a str, not {type(html_message).__name__}.')


@deprecate_posargs(["fail_silently", "auth_user", "auth_password", "connection"])
def send_mass_mail(
    datatuple: Iterable[DataTuple],
    *,
    fail_silently: bool = False,
    auth_user: str | None = None,
    auth_password: str | None = None,
    connection: BaseEmailBackend | None = None,
    using: str | None = None,
) -> int:
    """Send one message per ``(subject, message, from_email, recipient_list)`` over one
    connection; return how many were sent."""
    warn_about_send_options(
        fail_silently=fail_silently, connection=connection,
        auth=auth_user is not None or auth_password is not None,
    )
    connection = _connection_for(
        connection, using=using, fail_silently=fail_silently, auth_user=auth_user, auth_password=auth_password
    )
    messages = [
        EmailMessage(subject, message, sender, recipients, connection=connection)
        for subject, message, sender, recipients in datatuple
    ]
    return connection.send_messages(messages)


def _server_recipients(setting_name: str) -> list[Any]:
    recipients = getattr(settings, setting_name)
    if not recipients:
        return []
    recipients = legacy_recipients(setting_name, recipients)
    if not isinstance(recipients, (list, tuple)) or not all(_is_address(a) for a in recipients):
        raise ImproperlyConfigured(f"The {setting_name} setting must be a list of email address strings.")
    return list(recipients)


def _is_address(value: object) -> bool:
    """A str, or a lazy string (Django's gettext_lazy: a Promise), which Django accepts too."""
    return isinstance(value, str) or any(base.__name__ == "Promise" for base in type(value).__mro__)


def _send_server_message(
    setting_name: str,
    subject: str,
    message: str,
    *,
    fail_silently: bool,
    connection: BaseEmailBackend | None,
    html_message: str | None,
    using: str | None,
) -> None:
    # skip_frames=2: past mail_admins()/mail_managers() and their deprecate_posargs wrapper.
    warn_about_send_options(fail_silently=fail_silently, connection=connection, skip_frames=2)
    if using is not None:
        report_using_incompatibility(connection, fail_silently)
    elif connection is not None and fail_silently:
        raise TypeError(CONNECTION_WITH_FAIL_SILENTLY)
    _check_html_message(html_message)
    recipients = _server_recipients(setting_name)
    if not recipients:
        return
    mail = EmailMultiAlternatives(
        subject=f"{settings.EMAIL_SUBJECT_PREFIX}{subject}",
        body=message,
        from_email=settings.SERVER_EMAIL,
        to=[str(address) for address in recipients],
        connection=connection,
    )
    if html_message:
        mail.attach_alternative(html_message, "text/html")
    mail.send(fail_silently=fail_silently, using=using)


@deprecate_posargs(["fail_silently", "connection", "html_message"])
def mail_admins(
    subject: str,
    message: str,
    *,
    fail_silently: bool = False,
    connection: BaseEmailBackend | None = None,
    html_message: str | None = None,
    using: str | None = None,
) -> None:
    """Send a message to the ADMINS setting's addresses (nothing if it is empty)."""
    _send_server_message(
        "ADMINS", subject, message,
        fail_silently=fail_silently, connection=connection, html_message=html_message, using=using,
    )


@deprecate_posargs(["fail_silently", "connection", "html_message"])
def mail_managers(
    subject: str,
    message: str,
    *,
    fail_silently: bool = False,
    connection: BaseEmailBackend | None = None,
    html_message: str | None = None,
    using: str | None = None,
) -> None:
    """Send a message to the MANAGERS setting's addresses (nothing if it is empty)."""
    _send_server_message(
        "MANAGERS", subject, message,
        fail_silently=fail_silently, connection=connection, html_message=html_message, using=using,
    )
