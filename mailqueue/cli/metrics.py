"""``mailqueue metrics``: a Prometheus endpoint for the fleet, read from the broker's Redis."""

from __future__ import annotations

import argparse
import errno
import sys

from mailqueue.cli.base import CommandError, CommandParser, add_command, port_number

DEFAULT_PORT = 9808

DESCRIPTION = f"""\
Serve Prometheus metrics on http://HOST:PORT/metrics (default port {DEFAULT_PORT}).

Each scrape reads the broker's Redis: the running totals the workers keep (delivered,
failed, dead-lettered, retries, deferred, SMTP replies by class, the delivery latency
histogram) and the gauges of the moment (queue depth and age, in flight, deferred, dead
letters, quarantined). If Redis cannot be read, the scrape still answers, with
mailqueue_broker_up 0. Run one exporter per fleet (any host that reaches the broker).
See config/prometheus/ for a scrape config and alert rules."""


def register(subparsers: argparse._SubParsersAction[CommandParser]) -> None:
    parser = add_command(subparsers, "metrics", help="serve Prometheus metrics read from the broker",
                         description=DESCRIPTION)
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                        help="TCP port to listen on (default: %(default)s; 0: any free port)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: %(default)s; 0.0.0.0 for every interface)")
    parser.add_argument("--queue", action="append", default=[], metavar="NAME", dest="queues",
                        help="also report the depth of this queue (repeatable; MAILQUEUE_QUEUE is always reported)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry, start_http_server

    from mailqueue.cli import brokerstate
    from mailqueue.cli.exporter import BrokerCollector
    from mailqueue.conf import settings
    from mailqueue.queue.broker import redacted

    client, url = brokerstate.broker_client()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BrokerCollector(client, [settings.MAILQUEUE_QUEUE, *args.queues]))
    try:
        server, thread = start_http_server(args.port, addr=args.host, registry=registry)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise CommandError(f"port {args.port} on {args.host} is already in use; choose another with --port"
                               ) from None
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
    print(f"Serving metrics of {redacted(url)} on http://{args.host}:{server.server_port}/metrics",
          file=sys.stderr, flush=True)
    thread.join()
    return 0
