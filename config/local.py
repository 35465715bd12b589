"""One machine, nothing to install: ``MAILQUEUE_SETTINGS=config.local``.

The broker is the embedded Redis (``MAILQUEUE_BROKER_URL`` left empty) with its data in
``var/mailqueue`` under the directory the commands run from, and the workers deliver to
the development SMTP server (``mailqueue devserver``, port 1025). Retries come quickly so
that a greylisted recipient is retried while you watch.

    mailqueue devserver &                       # prints what the workers deliver
    MAILQUEUE_SETTINGS=config.local mailqueue worker --concurrency 2 &
    MAILQUEUE_SETTINGS=config.local mailqueue send --to ann@example.com --subject Hi --body Hello
"""

# The application side: every send_mail() is enqueued.
EMAIL_BACKEND = "mailqueue.backends.queue.EmailBackend"
DEFAULT_FROM_EMAIL = "mailqueue@localhost"

# The broker: empty means the embedded Redis under MAILQUEUE_DATA_DIR.
MAILQUEUE_BROKER_URL = ""
MAILQUEUE_DATA_DIR = "var/mailqueue"

# The workers' side: deliver to `mailqueue devserver`.
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = 1025
EMAIL_TIMEOUT = 10.0
MAILQUEUE_RETRY_MIN_DELAY = 2.0
MAILQUEUE_RETRY_MAX_DELAY = 60.0
MAILQUEUE_MAX_RETRIES = 5
