"""A starting point for production: copy it into your project and adapt it.

Point MAILQUEUE_SETTINGS at your copy (for example ``MAILQUEUE_SETTINGS=mysite.mail_settings``)
on the application servers and on the workers alike: both sides must agree on the broker,
the queue name and the key prefix. Secrets come from the environment, never from a file
in version control, and never travel in task payloads: only the workers need the SMTP
password.

Every setting is described in the README's settings table (generated from
``mailqueue/defaults.py``).
"""

import os

# --- The application: enqueue instead of talking SMTP inside a request ---------------------
EMAIL_BACKEND = "mailqueue.backends.queue.EmailBackend"
DEFAULT_FROM_EMAIL = "Example <no-reply@example.com>"
SERVER_EMAIL = "errors@example.com"
ADMINS = ["ops@example.com"]
EMAIL_SUBJECT_PREFIX = "[example] "

# --- The broker: a dedicated Redis with appendonly yes and maxmemory-policy noeviction -----
# (an evicting Redis silently drops queued mail when it fills up). TLS: use rediss://.
MAILQUEUE_BROKER_URL = os.environ.get("MAILQUEUE_BROKER_URL", "redis://:password@redis.internal:6379/0")
MAILQUEUE_RESULT_BACKEND = ""  # empty: reports live on the broker's Redis
MAILQUEUE_QUEUE = "mailqueue"
MAILQUEUE_KEY_PREFIX = "mailqueue"  # change it if several deployments share one Redis
MAILQUEUE_BROKER_CONNECT_TIMEOUT = 2.0  # a web request fails fast if the broker is down

# --- The workers: the SMTP relay they deliver through --------------------------------------
EMAIL_HOST = "smtp.example.com"
EMAIL_PORT = 587
EMAIL_USE_TLS = True
EMAIL_HOST_USER = "mailer@example.com"
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")  # set on workers only
EMAIL_TIMEOUT = 30.0

# --- Delivery policy -------------------------------------------------------------------------
MAILQUEUE_BATCH_SIZE = 50
MAILQUEUE_MAX_RETRIES = 10  # with the delays below: retried for roughly 5 hours
MAILQUEUE_RETRY_MIN_DELAY = 30.0
MAILQUEUE_RETRY_MAX_DELAY = 3600.0
# How soon a crashed worker's tasks go back to the queue. Keep it above the longest batch
# (MAILQUEUE_BATCH_SIZE messages over a slow relay) or a slow task will be run twice.
MAILQUEUE_VISIBILITY_TIMEOUT = 300
MAILQUEUE_LEDGER_TTL = 7 * 24 * 3600
MAILQUEUE_CONNECTION_MAX_AGE = 300.0
MAILQUEUE_CONNECTION_MAX_MESSAGES = 1000
MAILQUEUE_RESULT_EXPIRES = 7 * 24 * 3600
