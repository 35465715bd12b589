"""Fixtures that start real servers. Each kind lives in its own module under tests/fixtures.

- ``tests.fixtures.redis``: a real Redis per session (the machine's, or a ``redis-server`` we
  start), a database flushed around each test, and throwaway servers for fault tests.
- ``tests.fixtures.smtp``: aiosmtpd servers with a recording handler, and faults per test.
- ``tests.fixtures.celery``: workers. In-process workers come from Celery's own pytest
  plugin (``celery.contrib.pytest``, enabled by the pytest-celery package): we override its
  ``celery_app`` (the real ``workers`` app, not a bare TestApp), ``celery_config``,
  ``celery_worker_pool`` and ``celery_worker_parameters``, and use its in-process
  ``celery_worker``. pytest-celery 1.x also registers Docker-based fixtures
  (``celery_setup``, its own ``celery_worker``, brokers and backends in containers): CI has
  no Docker engine, so the in-process ``celery_worker`` is put back under its name and
  ``celery_setup`` refuses to run. Session-scoped workers (``celery_session_worker``) are not
  used: each test has its own queue and SMTP server, so its worker cannot outlive it.
  Subprocess workers (``worker_process``, ``celery -A workers worker``) are ours; no plugin
  starts a real worker command without Docker.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailqueue.queue.embedded import embedded_status, stop_embedded_redis

pytest_plugins = [
    "tests.fixtures.redis",
    "tests.fixtures.smtp",
    "tests.fixtures.celery",
]

# Where the embedded Redis would live if a test reached it without configuring a broker.
PROJECT_DATA_DIR = Path(__file__).resolve().parent.parent / "var" / "mailqueue"


@pytest.fixture(scope="session", autouse=True)
def no_embedded_redis_left_in_the_project() -> Iterator[None]:
    """Tests configure their broker; one that falls back to the embedded Redis in the project's
    folder would leave a daemon running after the session. Stop it, and say which run did it."""
    running_before = embedded_status(str(PROJECT_DATA_DIR)).url is not None
    yield
    if not running_before and embedded_status(str(PROJECT_DATA_DIR)).url is not None:
        stop_embedded_redis(str(PROJECT_DATA_DIR))
        warnings.warn(f"a test started the embedded Redis in {PROJECT_DATA_DIR}; it was stopped", stacklevel=1)
