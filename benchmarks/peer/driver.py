"""The peer's producer side, driven over stdin by the benchmark (run in the peer's venv).

One command a line, one JSON reply a line:

- ``prepare N``: make N messages (the benchmark's 1 KB text mix), not yet sent;
- ``send``: ``send_messages`` of the prepared ones through django-celery-email;
- ``latency N``: N ``send_mail`` calls, each timed, then N redis-py PINGs, each timed; sent
  while no worker consumes the queue, which is emptied afterwards. Samples in seconds.
"""

import json
import sys
import time

import redis
from django.conf import settings
from django.core import mail
from django.core.mail import send_mail

import benchmarks.peer.app  # noqa: F401 - django.setup() and the Celery app
from benchmarks.mixes import MIXES, RECIPIENT, SENDER, SUBJECT, TEXT


def timed(call, count):
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def latency(count):
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        mails = timed(lambda: send_mail(SUBJECT, TEXT, SENDER, [RECIPIENT]), count)
        pings = timed(client.ping, count)
    finally:
        client.delete(settings.CELERY_EMAIL_TASK_CONFIG["queue"])
        client.close()
    return {"enqueue": mails, "ping": pings}


def main():
    prepared = []
    for line in sys.stdin:
        command, *args = line.split()
        if command == "prepare":
            prepared = [MIXES[0].build(mail) for _ in range(int(args[0]))]
            reply = {"prepared": len(prepared)}
        elif command == "send":
            mail.get_connection().send_messages(prepared)
            reply = {"sent": len(prepared)}
        elif command == "latency":
            reply = latency(int(args[0]))
        else:
            reply = {"error": f"unknown command {command!r}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
