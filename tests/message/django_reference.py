"""The real Django 6.1, configured just enough to build messages: the reference we match.

Importing this module skips the importing test module on Python 3.11 (Django 6.x needs
3.12) and fails it on 3.12+ if Django 6.1 is missing, so the comparison is never skipped
quietly.
"""

from __future__ import annotations

import sys

import pytest

from tests.message.corpus import Library

if sys.version_info < (3, 12):
    pytest.skip(
        "Django 6.1, the reference implementation, requires Python 3.12 or newer",
        allow_module_level=True,
    )

import django  # noqa: E402 - only after the version check; an ImportError fails the tests
from django.conf import settings  # noqa: E402

if django.VERSION[:2] != (6, 1):
    raise ImportError(f"The reference must be Django 6.1, found {django.get_version()}")

if not settings.configured:
    settings.configure(
        DEFAULT_CHARSET="utf-8",
        DEFAULT_FROM_EMAIL="webmaster@localhost",
        EMAIL_USE_LOCALTIME=False,
        USE_TZ=True,
    )

from django.core import mail as django_mail  # noqa: E402

DJANGO: Library = Library(
    name="django",
    EmailMessage=django_mail.EmailMessage,
    EmailMultiAlternatives=django_mail.EmailMultiAlternatives,
)
