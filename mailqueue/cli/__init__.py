"""The ``mailqueue`` command: one subcommand per module in this package.

Each command module has ``register(subparsers)``, which adds its parser and sets
``handler`` (a function taking the parsed namespace and returning an exit status).
Every expected failure (bad settings, broker or SMTP server unreachable, unknown task id)
becomes one line on stderr and exit status 1; bad arguments give exit status 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from mailqueue import __version__
from mailqueue.cli import (
    cancel,
    dead,
    demo,
    devserver,
    embedded,
    metrics,
    send,
    sendtestemail,
    settings,
    stats,
    status,
    worker,
)
from mailqueue.cli.base import CommandParser, describe_error, fail

COMMANDS = (worker, send, sendtestemail, status, cancel, stats, metrics, dead, devserver, demo, embedded, settings)


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="mailqueue",
        description="Send mail through a Redis queue and a Celery worker fleet, and operate the fleet.",
        epilog="Run 'mailqueue COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"mailqueue {__version__}")
    parser.add_argument(
        "--settings", metavar="MODULE",
        help="settings module to use (sets MAILQUEUE_SETTINGS), e.g. config.local",
    )
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=CommandParser)
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit status."""
    # Like manage.py, settings modules such as config.local are found from the working
    # directory; appended, so a stray file there cannot shadow an installed package.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra", False):
        args.command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    if args.settings:
        os.environ["MAILQUEUE_SETTINGS"] = args.settings
    try:
        status: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mailqueue ... | head`: the reader is gone, which is not an error to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second failure at exit
        return 141  # 128 + SIGPIPE, as a command killed by the broken pipe would
    except Exception as error:  # every failure becomes one line, unless --traceback asks for more
        if args.traceback:
            raise
        return fail(describe_error(error))
    return status
