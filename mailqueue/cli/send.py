"""``mailqueue send``: send one message through the configured backend (usually: enqueue it)."""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import TYPE_CHECKING

from mailqueue.cli.base import CommandError, CommandParser, add_command
from mailqueue.exceptions import MailQueueError

if TYPE_CHECKING:
    from mailqueue.message import EmailMessage

DESCRIPTION = """\
Send one message through EMAIL_BACKEND (or --backend). With the queue backend
(mailqueue.backends.queue.EmailBackend) the message is enqueued and its task id is
printed: follow it with 'mailqueue status TASK_ID --wait'. Other backends print the
number of messages sent.

Either build the message from options:
  mailqueue send --to ann@example.com --subject Hello --body 'Hi Ann' --attach report.pdf
or send a whole .eml file as it is (recipients from its To/Cc/Bcc unless given):
  mailqueue send --eml < message.eml

--body and --html read standard input when given '-'. --at holds the message until then
(the queue backend stores it; other backends refuse it), --priority sets the queue
backend's priority:
  mailqueue send --to ann@example.com --subject Reminder --at 2026-12-24T09:00:00+01:00"""


def register(subparsers: argparse._SubParsersAction[CommandParser]) -> None:
    parser = add_command(subparsers, "send", help="send (enqueue) one message", description=DESCRIPTION)
    parser.add_argument("--from", dest="from_email", metavar="ADDRESS", help="sender (default: DEFAULT_FROM_EMAIL)")
    for name in ("to", "cc", "bcc"):
        parser.add_argument(f"--{name}", action="append", default=[], metavar="ADDRESS",
                            help=f"{name.capitalize()} recipient (repeat the option, or separate with commas)")
    parser.add_argument("--reply-to", action="append", default=[], metavar="ADDRESS", help="Reply-To address")
    parser.add_argument("--subject", default="", help="subject line")
    parser.add_argument("--body", default="", help="plain-text body ('-': read standard input)")
    parser.add_argument("--html", help="HTML alternative of the body ('-': read standard input)")
    parser.add_argument("--attach", action="append", default=[], metavar="PATH", help="attach a file (repeatable)")
    parser.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                        help="extra header (repeatable)")
    parser.add_argument("--eml", nargs="?", const="-", metavar="FILE",
                        help="send this .eml file as it is ('-' or no value: standard input)")
    parser.add_argument("--backend", metavar="DOTTED.PATH", help="backend to use instead of EMAIL_BACKEND")
    parser.add_argument("--at", type=send_at, metavar="ISO-8601",
                        help="deliver no earlier than this time, with its offset (2026-12-24T09:00+01:00, or Z)")
    parser.add_argument("--priority", choices=("high", "normal", "low"),
                        help="the queue backend's priority (default: normal)")
    parser.set_defaults(handler=run)


def send_at(value: str) -> datetime.datetime:
    """An argparse type: an ISO-8601 time with its UTC offset (a naive time is ambiguous)."""
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO-8601 time (2026-12-24T09:00:00+01:00)") from None
    if moment.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no UTC offset: add one (+01:00, or Z for UTC)")
    return moment


def split_addresses(values: list[str]) -> list[str]:
    return [address.strip() for value in values for address in value.split(",") if address.strip()]


def read_text(value: str | None, *, option: str) -> str | None:
    if value != "-":
        return value
    if sys.stdin.isatty():
        raise CommandError(f"{option} - reads standard input, but standard input is a terminal.")
    return sys.stdin.read()


def parse_headers(values: list[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    headers = {}
    for value in values:
        name, colon, content = value.partition(":")
        if not colon or not name.strip():
            parser.error(f"--header {value!r} is not of the form 'Name: value'")  # a usage error: exit 2
        headers[name.strip()] = content.strip()
    return headers


def build_message(args: argparse.Namespace) -> EmailMessage:
    from mailqueue.cli.eml import RawEmailMessage
    from mailqueue.message import EmailMultiAlternatives

    to, cc, bcc = split_addresses(args.to), split_addresses(args.cc), split_addresses(args.bcc)
    if args.eml is not None:
        if args.subject or args.body or args.html or args.attach or args.header:
            args.command_parser.error("--eml sends a message as it is; it cannot be combined with --subject, "
                                      "--body, --html, --attach or --header")
        raw = sys.stdin.buffer.read() if args.eml == "-" else read_file(args.eml)
        eml = RawEmailMessage(raw, from_email=args.from_email, to=to, cc=cc, bcc=bcc)
        if not eml.recipients():
            source = "standard input" if args.eml == "-" else args.eml
            raise CommandError(f"the message in {source} has no recipient: its To, Cc and Bcc headers are "
                               "missing or empty; give --to, --cc or --bcc")
        return eml
    if not (to or cc or bcc):
        args.command_parser.error("no recipient: give --to, --cc or --bcc (or a message with --eml)")
    body, html = read_text(args.body, option="--body"), read_text(args.html, option="--html")
    message = EmailMultiAlternatives(
        subject=args.subject, body=body or "", from_email=args.from_email, to=to, cc=cc, bcc=bcc,
        reply_to=split_addresses(args.reply_to), headers=parse_headers(args.header, args.command_parser),
    )
    if html is not None:
        message.attach_alternative(html, "text/html")
    for path in args.attach:
        message.attach_file(path)
    return message


def read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror}") from None


def where(connection: object) -> str:
    """The backend, and the server it talks to when it has one, for error messages."""
    name = f"{type(connection).__module__}.{type(connection).__name__}"
    host, port = getattr(connection, "host", None), getattr(connection, "port", None)
    return f"{name} (SMTP server {host}:{port})" if host else name


def run(args: argparse.Namespace) -> int:
    from mailqueue.mail import get_connection

    message = build_message(args)
    message.send_at = args.at
    options = {"priority": args.priority} if args.priority else {}
    connection = get_connection(args.backend, **options) if args.backend else get_connection(**options)
    try:
        sent = connection.send_messages([message])
    except MailQueueError:  # BrokerUnavailable (a ConnectionError too) says it all already
        raise
    except OSError as error:  # smtplib and socket errors
        raise CommandError(f"cannot send through {where(connection)}: {error}") from None
    delivery = getattr(message, "delivery", None)
    if delivery is not None:
        print(delivery.task_id)
    else:
        print(sent)
    return 0 if sent else 1
