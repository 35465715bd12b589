"""Fixtures that start real servers. Each kind lives in its own module under tests/fixtures."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailqueue.embedded import embedded_status, stop_embedded_redis

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
