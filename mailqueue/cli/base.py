"""What every command shares: the parser that errs in one line, and turning errors into lines."""

from __future__ import annotations

import argparse
import json
import smtplib
import sys
from typing import Any, NoReturn

from mailqueue.exceptions import MailQueueError

# The namespace attribute each command's parser sets (``parser.set_defaults(handler=run)``).
HANDLER = "handler"


class CommandError(MailQueueError):
    """A command cannot do what was asked; the message is shown as it is."""


class CommandParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that points at --help (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def fail(message: str, status: int = 1) -> int:
    """Print ``mailqueue: error: <message>`` on stderr and return the exit status."""
    first_line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    print(f"mailqueue: error: {first_line}", file=sys.stderr)
    return status


def describe_error(error: BaseException) -> str:
    """One readable line for an exception, naming what could not be reached where it helps."""
    import kombu.exceptions
    import redis

    if isinstance(error, MailQueueError):
        return str(error) or type(error).__name__
    if isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
        return f"cannot reach Redis: {error}"
    if isinstance(error, kombu.exceptions.OperationalError):
        return f"cannot reach the broker: {error}"
    if isinstance(error, smtplib.SMTPException):
        return f"SMTP error: {error}"
    if isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror}{where}"
    return f"{type(error).__name__}: {error} (run with --traceback for details)"


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def add_command(
    subparsers: argparse._SubParsersAction[CommandParser], name: str, *, help: str, description: str | None = None
) -> CommandParser:
    """Add a subcommand whose --help shows ``description`` (or ``help``) in full."""
    parser: CommandParser = subparsers.add_parser(
        name, help=help, description=description or help, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(command_parser=parser)  # so errors found after parsing name the right command
    return parser


def port_number(value: str) -> int:
    """An argparse type: a TCP port, 0 to 65535 (0: any free port); anything else is a usage error."""
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0 to 65535)")
    return port
