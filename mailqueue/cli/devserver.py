"""``mailqueue devserver``: a development SMTP server that prints or saves what it receives."""

from __future__ import annotations

import argparse
import sys

from mailqueue.cli.base import CommandError, CommandParser, add_command, port_number
from mailqueue.devserver import BOUNCE_PREFIX, DEFAULT_PORT, GREYLIST_PREFIX

DESCRIPTION = f"""\
Run a development SMTP server (aiosmtpd). It accepts every message and prints a
summary line for each (or the whole message with --full), and saves each one as an
.eml file with --save DIR. Point the workers at it with EMAIL_HOST/EMAIL_PORT.

With --simulate-failures, recipients whose local part starts with '{BOUNCE_PREFIX}' are
refused for good (550) and those starting with '{GREYLIST_PREFIX}' are refused once (451),
then accepted: a way to watch retries and dead letters. Stop it with Ctrl-C."""


def register(subparsers: argparse._SubParsersAction[CommandParser]) -> None:
    parser = add_command(subparsers, "devserver", help="run a development SMTP server", description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                        help="port to listen on (default: %(default)s)")
    parser.add_argument("--save", metavar="DIR", help="save every message as an .eml file in DIR")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--full", action="store_true", help="print whole messages, not one line each")
    output.add_argument("--quiet", action="store_true", help="print nothing per message")
    parser.add_argument("--simulate-failures", action="store_true",
                        help=f"refuse '{BOUNCE_PREFIX}*' recipients (550) and '{GREYLIST_PREFIX}*' ones once (451)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mailqueue.devserver import DevServerHandler, serve_until_signalled, start_devserver

    handler = DevServerHandler(
        out=None if args.quiet else sys.stdout, save_dir=args.save, full=args.full,
        simulate_failures=args.simulate_failures,
    )
    try:
        controller = start_devserver(handler, host=args.host, port=args.port)
    except (OSError, RuntimeError) as error:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {error}") from None
    where = f"; saving to {args.save}" if args.save else ""
    print(f"mailqueue devserver listening on {args.host}:{args.port}{where} (Ctrl-C to stop)",
          file=sys.stderr, flush=True)
    serve_until_signalled(controller)
    print(f"mailqueue devserver stopped after {handler.received} message(s)", file=sys.stderr)
    return 0
