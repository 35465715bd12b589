"""``mailqueue stats``: the fleet at a glance, read from the broker's Redis and a worker ping."""

from __future__ import annotations

import argparse
import time
from typing import Any

from mailqueue.cli.base import CommandParser, add_command, print_json
from mailqueue.cli.report import when

DESCRIPTION = """\
Show the queue depth (per priority: high, normal, low), the scheduled sends waiting for
their send_at, the tasks in flight (taken by a worker, not yet acknowledged),
the deferred retries, the dead letters, the running totals the workers keep (delivered,
failed, retry rounds), the connections open to each relay with a fleet-wide limit
(MAILQUEUE_MAX_CONNECTIONS, a relay's MAX_CONNECTIONS) and the workers that answer a ping."""


def register(subparsers: argparse._SubParsersAction[CommandParser]) -> None:
    parser = add_command(subparsers, "stats", help="show queue depth, totals and workers online",
                         description=DESCRIPTION)
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.add_argument("--timeout", type=float, default=1.0, metavar="SECONDS",
                        help="how long to wait for workers to answer the ping (default: %(default)s)")
    parser.add_argument("--no-workers", action="store_true", help="do not ping the workers")
    parser.set_defaults(handler=run)


def workers_online(timeout: float) -> list[str]:
    """Names of the workers answering a Celery ping within ``timeout`` seconds."""
    from workers.app import app

    replies = app.control.ping(timeout=timeout) or []
    return sorted(name for reply in replies for name in reply)


def collect(*, ping_timeout: float | None) -> dict[str, Any]:
    from mailqueue.cli import brokerstate
    from mailqueue.conf import settings
    from mailqueue.queue.broker import redacted
    from workers.deadletters import DeadLetters

    client, url = brokerstate.broker_client()
    deferred = brokerstate.deferred(client)
    scheduled = brokerstate.scheduled(client)
    totals = brokerstate.totals(client)
    return {
        "broker": redacted(url),
        "queue": settings.MAILQUEUE_QUEUE,
        "queued": brokerstate.queue_depth(client),
        "queued_by_priority": brokerstate.depth_by_priority(client),
        "scheduled": {"tasks": scheduled.tasks, "messages": scheduled.messages, "next_due": scheduled.next_due},
        "in_flight": brokerstate.in_flight(client),
        "deferred": {"tasks": deferred.tasks, "messages": deferred.messages, "next_due": deferred.next_due},
        "dead_letters": DeadLetters(client).count(),
        "delivered": totals.get("sent", 0),
        "failed": totals.get("failed", 0),
        "retries": totals.get("retries", 0),
        "totals": totals,
        "connections": _connections(client),
        "workers": None if ping_timeout is None else workers_online(ping_timeout),
    }


def _connections(client: Any) -> dict[str, Any]:
    """brokerstate.connections(), or why the relays' settings cannot say (the rest still shows)."""
    from mailqueue.cli import brokerstate
    from mailqueue.exceptions import ImproperlyConfigured

    try:
        return brokerstate.connections(client)
    except ImproperlyConfigured as error:
        return {"error": str(error)}


def text_lines(stats: dict[str, Any]) -> list[str]:
    deferred, scheduled = stats["deferred"], stats["scheduled"]
    next_due = deferred["next_due"]
    hint = " (see 'mailqueue dead list')" if stats["dead_letters"] else ""
    due = f" (next retry in {max(0.0, next_due - time.time()):.0f} s)" if next_due else ""
    rows = [
        ("Broker", f"{stats['broker']} (queue {stats['queue']!r})"),
        ("Queued", f"{stats['queued']} task(s) waiting for a worker ("
                   + ", ".join(f"{name} {count}" for name, count in stats["queued_by_priority"].items()) + ")"),
        ("Scheduled", f"{scheduled['tasks']} task(s), {scheduled['messages']} message(s)"
                      + (f" (next due {when(scheduled['next_due'])})" if scheduled["next_due"] else "")),
        ("In flight", f"{stats['in_flight']} task(s) taken by a worker, not yet acknowledged"),
        ("Deferred", f"{deferred['tasks']} task(s), {deferred['messages']} message(s){due}"),
        ("Dead letters", f"{stats['dead_letters']}{hint}"),
        ("Delivered", f"{stats['delivered']} message(s)"),
        ("Failed", f"{stats['failed']} message(s)"),
        ("Retries", f"{stats['retries']} round(s)"),
    ]
    connections = stats["connections"]
    if "error" in connections:
        rows.append(("Connections", f"cannot be read: {connections['error']}"))
    elif connections:
        rows.append(("Connections", ", ".join(f"relay {name!r} {held['open']} of {held['limit']} open"
                                              for name, held in connections.items())))
    workers = stats["workers"]
    if workers is not None:
        rows.append(("Workers", f"{len(workers)} online" + (f": {', '.join(workers)}" if workers else "")))
    return [f"{label + ':':<14}{value}" for label, value in rows]


def run(args: argparse.Namespace) -> int:
    if args.json:
        return print_json_stats(ping_timeout=None if args.no_workers else args.timeout)
    stats = collect(ping_timeout=None if args.no_workers else args.timeout)
    print("\n".join(text_lines(stats)))
    return 0


def print_json_stats(*, ping_timeout: float | None) -> int:
    """JSON even when the broker is down: monitoring scripts parse the output, whatever happened."""
    from mailqueue.cli.base import describe_error
    from mailqueue.conf import redacted, settings

    try:
        stats = collect(ping_timeout=ping_timeout)
    except Exception as error:
        print_json({"broker": redacted(settings.MAILQUEUE_BROKER_URL) or "(embedded)",
                    "queue": settings.MAILQUEUE_QUEUE, "error": describe_error(error)})
        return 1
    print_json(stats)
    return 0
