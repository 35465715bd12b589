"""The worker fleet: ``celery -A workers worker`` delivers what the queue backend enqueued."""

from workers.app import app, create_app

__all__ = ["app", "create_app"]
