"""mailqueue: Django's ``django.core.mail`` API without Django, plus a queue backend.

Names are imported on first use, so ``import mailqueue`` stays cheap and never pulls in
Celery unless the queue backend is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# The locmem backend appends here; tests read it and may reset it (mailqueue.outbox = []).
outbox: list[Any] = []

_LAZY = {
    "send_mail": "mailqueue.mail",
    "send_mass_mail": "mailqueue.mail",
    "mail_admins": "mailqueue.mail",
    "mail_managers": "mailqueue.mail",
    "get_connection": "mailqueue.mail",
    "mailers": "mailqueue.handler",
    "MailerDoesNotExist": "mailqueue.exceptions",
    "InvalidMailer": "mailqueue.exceptions",
    "EmailMessage": "mailqueue.message.model",
    "EmailMultiAlternatives": "mailqueue.message.model",
    "EmailAttachment": "mailqueue.message.model",
    "EmailAlternative": "mailqueue.message.model",
    "DEFAULT_ATTACHMENT_MIME_TYPE": "mailqueue.message.model",
    "make_msgid": "mailqueue.message.model",
    "DNS_NAME": "mailqueue.message.utils",
    "ImproperlyConfigured": "mailqueue.exceptions",
    "MailQueueError": "mailqueue.exceptions",
    "InvalidMessage": "mailqueue.exceptions",
    "SchedulingUnsupported": "mailqueue.exceptions",
    "MessageTooLarge": "mailqueue.exceptions",
    "BrokerUnavailable": "mailqueue.exceptions",
    "DeliveryTimeout": "mailqueue.exceptions",
    "DeliveryFailed": "mailqueue.exceptions",
    "UnsupportedPayload": "mailqueue.exceptions",
    "Delivery": "mailqueue.queue.delivery",
    "settings": "mailqueue.conf",
    "override_settings": "mailqueue.conf",
}

__all__ = ["outbox", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None and name in _DEPRECATED_ON_IMPORT:
        return _deprecated_on_import(name)
    if module is None:
        raise AttributeError(f"module 'mailqueue' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


_DEPRECATED_ON_IMPORT = frozenset({"BadHeaderError"})


def _deprecated_on_import(name: str) -> Any:
    """A name Django 6.1 still exports with a warning on every import (never cached here)."""
    from mailqueue import deprecation

    deprecation.warn(deprecation.DEPRECATED_ON_IMPORT[name])
    return getattr(deprecation, name)


def __dir__() -> list[str]:
    return sorted(__all__)
