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

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailqueue.queue.embedded import default_data_dir, embedded_status, stop_embedded_redis

pytest_plugins = [
    "tests.fixtures.redis",
    "tests.fixtures.smtp",
    "tests.fixtures.celery",
]

# Where the embedded Redis would live if a test reached it without configuring a broker.
PROJECT_DATA_DIR = Path(__file__).resolve().parent.parent / "var" / "mailqueue"


@pytest.fixture(scope="session", autouse=True)
def no_embedded_redis_left_in_the_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests configure their broker; one that falls back to the embedded Redis would leave a
    daemon running after the session. Stop it, and say which run did it.

    The default data folder is per user (``$XDG_DATA_HOME/mailqueue``): the session points
    XDG_DATA_HOME at a temporary folder, inherited by every subprocess, so that no test ever
    touches the real user's data."""
    previous = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    folders = [PROJECT_DATA_DIR, default_data_dir()]
    running_before = {folder: embedded_status(str(folder)).url is not None for folder in folders}
    try:
        yield
    finally:
        for folder in folders:
            if not running_before[folder] and embedded_status(str(folder)).url is not None:
                stop_embedded_redis(str(folder))
                warnings.warn(f"a test started the embedded Redis in {folder}; it was stopped", stacklevel=1)
        if previous is None:
            os.environ.pop("XDG_DATA_HOME", None)
        else:
            os.environ["XDG_DATA_HOME"] = previous
