"""Django 5.2 settings for the peer: django-celery-email queues, Django's SMTP backend delivers.

Everything the benchmark varies comes from the environment (``PEER_*``), so the worker and
the driver read the same values.
"""

import os

SECRET_KEY = "benchmark-only"  # noqa: S105 - nothing is signed with it
USE_TZ = True
INSTALLED_APPS = ["djcelery_email"]
EMAIL_BACKEND = "djcelery_email.backends.CeleryEmailBackend"
CELERY_EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
CELERY_EMAIL_CHUNK_SIZE = int(os.environ.get("PEER_CHUNK_SIZE", "10"))  # the peer's default
CELERY_EMAIL_TASK_CONFIG = {"queue": os.environ.get("PEER_QUEUE", "peer-bench")}
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ.get("PEER_SMTP_PORT", "25"))
EMAIL_TIMEOUT = 10
CELERY_BROKER_URL = os.environ.get("PEER_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # as mailqueue's workers: one task per process at a time
CELERY_TASK_ACKS_LATE = True
