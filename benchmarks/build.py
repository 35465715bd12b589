"""(a) build: messages built and serialized per second, mailqueue and Django, same inputs.

mailqueue is timed doing what the queue backend does for each message: build the
RFC 5322 bytes (fast path) and check the envelope (``Envelope.from_email_message``). Its
standard build (the email package, as Django does it) is timed too. Django is timed on
``EmailMessage.message().as_bytes()``. Each time includes making the message object.
"""

from __future__ import annotations

import email.policy
import time
from collections.abc import Callable
from typing import Any

import mailqueue.message
from benchmarks.mixes import MIXES, Mix
from benchmarks.report import rate, ratio, table
from mailqueue.queue.envelope import Envelope

MAX_SIZE = 25 * 1024 * 1024


def django_mail() -> Any | None:
    """``django.core.mail``, configured just enough to build messages, or None."""
    try:
        import django
        from django.conf import settings
    except ImportError:
        return None
    if not settings.configured:
        settings.configure(DEFAULT_CHARSET="utf-8", DEFAULT_FROM_EMAIL="webmaster@localhost",
                           EMAIL_USE_LOCALTIME=False, USE_TZ=True)
    from django.core import mail

    mail.VERSION = django.get_version()
    return mail


def batch_size(work: Callable[[], Any], *, seconds: float) -> int:
    """How many calls take about a tenth of ``seconds`` (after a first, warming call)."""
    work()
    batch = 1
    while True:
        started = time.perf_counter()
        for _ in range(batch):
            work()
        if time.perf_counter() - started > seconds / 10:
            return batch
        batch *= 2


def per_second(works: dict[str, Callable[[], Any]], *, seconds: float, rounds: int) -> dict[str, float]:
    """Calls per second of each contender: the best of ``rounds`` loops of about ``seconds``,
    the contenders taking turns so that drift on a shared machine hits them alike."""
    batches = {name: batch_size(work, seconds=seconds) for name, work in works.items()}
    best = dict.fromkeys(works, 0.0)
    for _ in range(rounds):
        for name, work in works.items():
            done, started = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - started) < seconds:
                for _ in range(batches[name]):
                    work()
                done += batches[name]
            best[name] = max(best[name], done / elapsed)
    return best


def contenders(mix: Mix, django: Any | None) -> dict[str, Callable[[], Any]]:
    def fast() -> Any:
        return Envelope.from_email_message(mix.build(mailqueue.message), max_size=MAX_SIZE)

    def standard() -> Any:
        return mix.build(mailqueue.message).message(policy=email.policy.SMTP).as_bytes()

    runs = {"mailqueue": fast, "mailqueue_standard": standard}
    if django is not None:
        runs["django"] = lambda: mix.build(django).message().as_bytes()
    return runs


def run(*, quick: bool) -> dict[str, Any]:
    django = django_mail()
    seconds, rounds = (0.05, 2) if quick else (0.4, 5)
    results: dict[str, Any] = {"django_version": getattr(django, "VERSION", None), "mixes": {}}
    for mix in MIXES:
        rates = per_second(contenders(mix, django), seconds=seconds, rounds=rounds)
        entry: dict[str, Any] = {"label": mix.label, "per_second": rates}
        if "django" in rates:
            entry["speedup_vs_django"] = rates["mailqueue"] / rates["django"]
        results["mixes"][mix.key] = entry
    return results


def render(results: dict[str, Any]) -> str:
    django = results["django_version"]
    header = ["mix", "mailqueue", "mailqueue (standard build)", f"django {django}" if django else "django",
              "mailqueue / django"]
    rows = []
    for entry in results["mixes"].values():
        rates = entry["per_second"]
        rows.append([entry["label"], rate(rates["mailqueue"]), rate(rates["mailqueue_standard"]),
                     rate(rates["django"]) if "django" in rates else "not installed",
                     ratio(entry["speedup_vs_django"]) if "speedup_vs_django" in entry else "-"])
    return table("(a) build: messages built and serialized per second (best of rounds)", header, rows)
