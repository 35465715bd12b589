"""Where the broker is, and the Celery configuration producers and workers share.

Both sides agree on JSON only (nothing is ever pickled) and on the Redis visibility
timeout, which decides how soon a crashed worker's unacknowledged tasks come back.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mailqueue.conf import settings


def broker_url() -> str:
    """MAILQUEUE_BROKER_URL, or the embedded Redis when none is configured."""
    configured: str = settings.MAILQUEUE_BROKER_URL
    if configured:
        return configured
    from mailqueue.queue.embedded import ensure_embedded_redis

    return ensure_embedded_redis()


def result_backend_url() -> str:
    return settings.MAILQUEUE_RESULT_BACKEND or broker_url()


def redacted(url: str) -> str:
    """The URL with its password masked, for error messages and logs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def shared_celery_config() -> dict[str, Any]:
    """Celery settings that producers and workers must agree on."""
    return {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_default_queue": settings.MAILQUEUE_QUEUE,
        "broker_transport_options": {"visibility_timeout": settings.MAILQUEUE_VISIBILITY_TIMEOUT},
        "result_backend_transport_options": {"visibility_timeout": settings.MAILQUEUE_VISIBILITY_TIMEOUT},
        "result_expires": settings.MAILQUEUE_RESULT_EXPIRES,
    }
