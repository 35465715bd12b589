"""The producer side of the queue: from a built message to a task on the broker, and back.

- ``envelope``: the wire format (versioned JSON: RFC 5322 bytes plus the SMTP envelope), the
  only contract between the producer and the workers.
- ``producer``: publishing delivery tasks by name, over one pooled connection per process.
- ``delivery``: the handle a queued message carries, and its report once delivered.
- ``broker``: where the broker is, and the Celery configuration both sides share.
- ``embedded``: the embedded ``redis-server`` used when no broker is configured.
- ``keys``: every Redis key mailqueue owns, named in one place.

The workers import ``envelope``, ``broker`` and ``keys`` from here; nothing here imports them.
"""
