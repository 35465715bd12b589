"""An application's own test suite: ``MAILQUEUE_SETTINGS=config.test``.

Like Django's test runner, mail stays in memory: send_mail() appends to
``mailqueue.outbox`` and nothing leaves the process. Tests that do run the queue and
workers (with ``override_settings(EMAIL_BACKEND="mailqueue.backends.queue.EmailBackend")``)
get a local Redis on database 9, a development SMTP server on port 1025 and retry delays
short enough for a test to wait for them.
"""

EMAIL_BACKEND = "mailqueue.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = "tests@example.com"

MAILQUEUE_BROKER_URL = "redis://127.0.0.1:6379/9"
MAILQUEUE_KEY_PREFIX = "mailqueue-test"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = 1025
EMAIL_TIMEOUT = 5.0

MAILQUEUE_RETRY_MIN_DELAY = 0.1
MAILQUEUE_RETRY_MAX_DELAY = 1.0
MAILQUEUE_MAX_RETRIES = 3
MAILQUEUE_DEFERRED_POLL_INTERVAL = 0.1
MAILQUEUE_VISIBILITY_TIMEOUT = 30
MAILQUEUE_RESULT_EXPIRES = 3600
