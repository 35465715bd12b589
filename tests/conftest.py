"""Fixtures that start real servers. Each kind lives in its own module under tests/fixtures."""

pytest_plugins = [
    "tests.fixtures.redis",
    "tests.fixtures.smtp",
    "tests.fixtures.celery",
]
