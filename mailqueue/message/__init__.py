"""The message model and its serialization: what a message is, and its RFC 5322 bytes.

- ``model``: ``EmailMessage`` and ``EmailMultiAlternatives``, as in Django 6.1's ``django.core.mail.message``.
- ``headers``: header rules (validation, generated values, IDNA in address headers).
- ``attachments``: what ``attach()`` stores, and how each kind becomes a MIME part.
- ``addresses``: every address rule (the fast mailbox recogniser, IDNA, envelope addresses).
- ``fastpath`` and ``fastheaders``: the bytes written without the email package, byte for byte
  what the email package would write; ``model.message()`` is the email-package serializer.
- ``utils``: the host's DNS name, as in ``django.core.mail.utils``.

Imports go one way: ``model`` uses the others; nothing here imports the queue or the workers.
"""

from mailqueue.message.model import (
    CONNECTION_WITH_FAIL_SILENTLY,
    DEFAULT_ATTACHMENT_MIME_TYPE,
    EmailAlternative,
    EmailAttachment,
    EmailMessage,
    EmailMultiAlternatives,
    make_msgid,
)

__all__ = [
    "CONNECTION_WITH_FAIL_SILENTLY",
    "DEFAULT_ATTACHMENT_MIME_TYPE",
    "EmailAlternative",
    "EmailAttachment",
    "EmailMessage",
    "EmailMultiAlternatives",
    "make_msgid",
]
