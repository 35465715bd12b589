"""One machine, nothing to install: ``MAILQUEUE_SETTINGS=config.local``.

The broker is the embedded Redis (``MAILQUEUE_BROKER_URL`` left empty) with its data in
the per-user folder (``MAILQUEUE_DATA_DIR`` left empty: ``~/.local/share/mailqueue``), the
same whatever directory a command runs from, and the workers deliver to
the development SMTP server (``mailqueue devserver``, port 1025). Retries come quickly so
that a greylisted recipient is retried while you watch.

    mailqueue devserver &                       # prints what the workers deliver
    MAILQUEUE_SETTINGS=config.local mailqueue worker --concurrency 2 &
    MAILQUEUE_SETTINGS=config.local mailqueue send --to ann@example.com --subject Hi --body Hello
"""

# The application side: every send_mail() is enqueued.
EMAIL_BACKEND = "mailqueue.backends.queue.EmailBackend"
DEFAULT_FROM_EMAIL = "mailqueue@localhost"

# The broker: empty means the embedded Redis under MAILQUEUE_DATA_DIR (empty: the per-user folder).
MAILQUEUE_BROKER_URL = ""
MAILQUEUE_DATA_DIR = ""

# The workers' side: deliver to `mailqueue devserver`.
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = 1025
EMAIL_TIMEOUT = 10.0
MAILQUEUE_RETRY_MIN_DELAY = 2.0
MAILQUEUE_RETRY_MAX_DELAY = 60.0
MAILQUEUE_MAX_RETRIES = 5
