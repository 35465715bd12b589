"""Where the broker is, and the Celery configuration producers and workers share.

Both sides agree on JSON only (nothing is ever pickled) and on the Redis visibility
timeout, which decides how soon a crashed worker's unacknowledged tasks come back.
"""

from __future__ import annotations

from typing import Any

from mailqueue.conf import redacted, settings

__all__ = ["broker_url", "redacted", "result_backend_url", "shared_celery_config"]


def broker_url() -> str:
    """MAILQUEUE_BROKER_URL, or the embedded Redis when none is configured."""
    configured: str = settings.MAILQUEUE_BROKER_URL
    if configured:
        return configured
    from mailqueue.queue.embedded import ensure_embedded_redis

    return ensure_embedded_redis()


def result_backend_url() -> str:
    return settings.MAILQUEUE_RESULT_BACKEND or broker_url()


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
