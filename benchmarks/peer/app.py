"""The peer's Celery app: ``celery -A benchmarks.peer.app worker`` in the peer's venv."""

import os

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.peer.settings")
django.setup()

app = Celery("peer")
app.config_from_object("django.conf:settings", namespace="CELERY")

import djcelery_email.tasks  # noqa: E402,F401 - registers djcelery_email_send_multiple on this app
