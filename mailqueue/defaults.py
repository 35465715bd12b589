"""Every setting mailqueue reads, with its default, its type and one line of documentation.

This table is the single source of truth: ``mailqueue.conf`` parses environment variables
with the ``type`` given here, and the README's settings table is checked against it.
Durations are in seconds and sizes in bytes unless the name says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Setting:
    default: Any
    type: type  # how an environment variable is parsed (bool, int, float, list, str)
    doc: str


SETTINGS: dict[str, Setting] = {
    # --- Django's email settings, with Django's defaults -------------------------------
    "MAILERS": Setting(
        None, dict, "Named mailers: {alias: {'BACKEND': dotted path, 'OPTIONS': {...}}}, as in Django 6.1; "
        "JSON in the environment. None: mailers.default is EMAIL_BACKEND configured from EMAIL_*."
    ),
    "EMAIL_BACKEND": Setting(
        "mailqueue.backends.smtp.EmailBackend", str, "Dotted path of the backend that send_mail() and friends use."
    ),
    "EMAIL_HOST": Setting("localhost", str, "SMTP server host."),
    "EMAIL_PORT": Setting(25, int, "SMTP server port."),
    "EMAIL_HOST_USER": Setting("", str, "SMTP username; login happens only if user and password are set."),
    "EMAIL_HOST_PASSWORD": Setting("", str, "SMTP password; workers read it from their own settings."),
    "EMAIL_USE_TLS": Setting(False, bool, "Use STARTTLS (usually port 587)."),
    "EMAIL_USE_SSL": Setting(
        False, bool, "Use implicit TLS (usually port 465). Mutually exclusive with EMAIL_USE_TLS."
    ),
    "EMAIL_TIMEOUT": Setting(
        None, float, "Socket timeout for SMTP connections, in seconds. None: none for the SMTP backend; 60 in workers."
    ),
    "EMAIL_SSL_KEYFILE": Setting(None, str, "PEM private key for a TLS client certificate."),
    "EMAIL_SSL_CERTFILE": Setting(None, str, "PEM client certificate for TLS."),
    "EMAIL_FILE_PATH": Setting(None, str, "Directory the filebased backend writes to."),
    "DEFAULT_FROM_EMAIL": Setting("webmaster@localhost", str, "From address when a message gives none."),
    "SERVER_EMAIL": Setting("root@localhost", str, "From address of mail_admins() and mail_managers()."),
    "ADMINS": Setting([], list, "Addresses mail_admins() writes to (list of strings)."),
    "MANAGERS": Setting([], list, "Addresses mail_managers() writes to (list of strings)."),
    "EMAIL_SUBJECT_PREFIX": Setting("[Django] ", str, "Subject prefix of mail_admins() and mail_managers()."),
    "DEFAULT_CHARSET": Setting("utf-8", str, "Charset of message bodies."),
    "EMAIL_USE_LOCALTIME": Setting(False, bool, "Date header in local time instead of UTC."),
    # --- The queue: producer side ---------------------------------------------------------
    "MAILQUEUE_BROKER_URL": Setting(
        "", str, "Broker URL (redis://host:port/db). Empty: an embedded Redis under MAILQUEUE_DATA_DIR."
    ),
    "MAILQUEUE_RESULT_BACKEND": Setting("", str, "Celery result backend URL. Empty: the broker URL."),
    "MAILQUEUE_QUEUE": Setting("mailqueue", str, "Name of the queue delivery tasks are sent to."),
    "MAILQUEUE_BATCH_SIZE": Setting(
        100, int, "Most messages per delivery task (100: a relay 20 ms away took 915 messages/s from "
        "2 processes, against 759 with 50; BENCHMARKS.md)."
    ),
    "MAILQUEUE_BATCH_MAX_BYTES": Setting(
        16 * 1024 * 1024, int, "Most bytes of messages per delivery task; a larger message goes alone "
        "(Redis takes at most 512 MB in one value)."
    ),
    "MAILQUEUE_MAX_MESSAGE_SIZE": Setting(
        25 * 1024 * 1024, int, "Largest serialized message accepted, in bytes (refused at the call site)."
    ),
    "MAILQUEUE_BROKER_CONNECT_TIMEOUT": Setting(
        2.0, float, "Seconds to wait for the broker before send_messages() raises BrokerUnavailable."
    ),
    "MAILQUEUE_BROKER_SOCKET_TIMEOUT": Setting(
        30.0, float, "Seconds a publish may wait on a broker that accepted the connection but does not answer."
    ),
    "MAILQUEUE_BROKER_MAX_MEMORY_FRACTION": Setting(
        0.9, float, "Producers refuse new mail (BrokerFull) above this fraction of Redis's maxmemory; "
        "workers stop taking tasks halfway from there to full. 1.0: off."
    ),
    "MAILQUEUE_KEY_PREFIX": Setting("mailqueue", str, "Prefix of every Redis key mailqueue owns."),
    "MAILQUEUE_ON_COMMIT": Setting(
        False, bool, "Django backend: enqueue when the current transaction commits (never, if it rolls back)."
    ),
    "MAILQUEUE_DATA_DIR": Setting(
        "", str, "Folder of the embedded Redis's data (when no broker URL is set). Empty: one per user, "
        "$XDG_DATA_HOME/mailqueue or ~/.local/share/mailqueue. A relative path is relative to the current directory."
    ),
    "MAILQUEUE_SIGNING_KEY": Setting(
        [], list, "Secret keys that sign delivery tasks (HMAC-SHA256); sign with the first, accept any. Empty: off."
    ),
    # --- The queue: worker side -----------------------------------------------------------
    "MAILQUEUE_DELIVERY_BACKEND": Setting(
        "mailqueue.backends.smtp.EmailBackend", str, "Backend the workers deliver through (configured from EMAIL_*)."
    ),
    "MAILQUEUE_MAX_RETRIES": Setting(
        10, int, "Most retry rounds for a transient failure before the message is dead-lettered."
    ),
    "MAILQUEUE_RETRY_MIN_DELAY": Setting(
        30.0, float, "First retry delay, in seconds; doubles each round, with jitter."
    ),
    "MAILQUEUE_RETRY_MAX_DELAY": Setting(3600.0, float, "Longest retry delay, in seconds."),
    "MAILQUEUE_VISIBILITY_TIMEOUT": Setting(
        300, int, "Seconds before Redis hands an unacknowledged task (of a crashed worker) to another worker."
    ),
    "MAILQUEUE_LEDGER_TTL": Setting(
        7 * 24 * 3600, int, "Seconds the ledger remembers accepted recipients per Message-ID."
    ),
    "MAILQUEUE_CONNECTION_MAX_AGE": Setting(
        300.0, float, "Seconds a worker keeps one SMTP connection before reopening it."
    ),
    "MAILQUEUE_CONNECTION_MAX_MESSAGES": Setting(
        1000, int, "Messages a worker sends over one SMTP connection before reopening it."
    ),
    "MAILQUEUE_CONNECTIONS_PER_PROCESS": Setting(
        16, int, "SMTP connections per relay each worker process keeps busy at once, opened only as "
        "the work needs them (16: 2 processes reach 32 connections, about 880 pipelined messages/s to "
        "a relay 20 ms away, under common per-client limits such as Postfix's 50)."
    ),
    "MAILQUEUE_MAX_CONNECTIONS": Setting(
        None, int, "Most SMTP connections the whole fleet holds open to the default relay (a lease "
        "in Redis per connection; MAILQUEUE_RELAYS entries take MAX_CONNECTIONS). None: no fleet-wide limit."
    ),
    "MAILQUEUE_CONNECTION_IDLE_TIMEOUT": Setting(
        5.0, float, "Seconds a connection to a relay with a fleet-wide limit stays open unused before "
        "it is closed and its slot given back."
    ),
    "MAILQUEUE_DEFERRED_POLL_INTERVAL": Setting(
        1.0, float, "Seconds between checks for deferred retries that are due."
    ),
    "MAILQUEUE_WORKER_PRIORITIES": Setting(
        ["high", "normal", "low"], list, "Priorities this worker takes, highest first whatever the order "
        "(mailqueue worker --priorities high); a worker of all three takes high before normal before low."
    ),
    "MAILQUEUE_SCHEDULE_POLL_INTERVAL": Setting(
        0.5, float, "Seconds between checks for scheduled sends (send_at) that are due."
    ),
    "MAILQUEUE_RELAYS": Setting(
        None, dict, "Relays besides 'default' (the EMAIL_* settings): {name: {'EMAIL_HOST': ..., 'EMAIL_PORT': ..., "
        "'EMAIL_HOST_USER': ..., 'EMAIL_HOST_PASSWORD': ..., 'EMAIL_USE_TLS': ..., 'RATE_LIMIT': '50/s'}}; "
        "JSON in the environment. Producers pick one with get_connection(relay=name); only the name travels."
    ),
    "MAILQUEUE_RATE_LIMIT": Setting(
        "", str, "Messages per second, minute or hour ('20/s', '600/m', '10000/h') the whole fleet hands to the "
        "default relay. Empty: no limit."
    ),
    "MAILQUEUE_RATE_LIMIT_MAX_WAIT": Setting(
        2.0, float, "Longest a worker waits for the rate limit before deferring the rest of its round, in seconds."
    ),
    "MAILQUEUE_THROTTLE_PAUSE": Setting(
        30.0, float, "Seconds every worker holds off a relay that answered 421 or 454 (too many messages)."
    ),
    "MAILQUEUE_SIGNING_REQUIRED": Setting(
        True, bool, "With a signing key set, refuse unsigned tasks (false: accept them, while producers start signing)."
    ),
    "MAILQUEUE_RESULT_EXPIRES": Setting(7 * 24 * 3600, int, "Seconds delivery reports are kept in the result backend."),
}
