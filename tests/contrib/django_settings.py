"""The smallest Django settings that send mail through mailqueue, for tests/contrib.

Only what the Django backend needs is set; message-building settings (DEFAULT_FROM_EMAIL,
DEFAULT_CHARSET, EMAIL_USE_LOCALTIME) keep Django's defaults. The broker URL is filled in by
the suite's fixtures, which point it at the test Redis.
"""

from __future__ import annotations

import django

SECRET_KEY = "mailqueue-tests-only"
DEBUG = False  # so Django's default LOGGING mails the admins (AdminEmailHandler)
USE_TZ = True
INSTALLED_APPS: list[str] = []
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

mailqueue_backend = "mailqueue.contrib.django.EmailBackend"
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": mailqueue_backend}}  # EMAIL_BACKEND is deprecated since 6.1
else:
    EMAIL_BACKEND = mailqueue_backend

SERVER_EMAIL = "server@example.com"
if django.VERSION >= (6, 0):
    ADMINS = ["Ops Team <ops@example.com>"]
else:
    ADMINS = [("Ops Team", "ops@example.com")]  # name/address pairs before Django 6.0

MAILQUEUE_ON_COMMIT = False
