"""Which dead letters a ``mailqueue dead`` command means, and how to repair their recipients.

Operators work on hundreds or thousands of dead letters at once ("every 550 from example.com
in the last hour"), so the commands take filters as well as ids; and a dead letter caused by
a typo'd address is repaired (``--to``, ``--replace``) rather than only requeued.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from mailqueue.cli.base import CommandParser

if TYPE_CHECKING:
    from workers.deadletters import LetterFilter

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
FILTER_OPTIONS = ("code", "recipient", "domain", "older_than", "newer_than")


def duration(value: str) -> float:
    """An argparse type: '90', '90s', '15m', '2h' or '3d', in seconds."""
    match = DURATION.match(value)
    if not match:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration (for example 90s, 15m, 2h, 3d)")
    return float(match.group(1)) * UNIT_SECONDS[match.group(2)]


def add_filter_options(parser: CommandParser) -> None:
    group = parser.add_argument_group("filters (combined: a letter must match all of them)")
    group.add_argument("--code", type=int, metavar="CODE", help="the last SMTP reply code, e.g. 550")
    group.add_argument("--recipient", metavar="ADDRESS", help="one of the failed recipients is ADDRESS")
    group.add_argument("--domain", metavar="DOMAIN", help="one of the failed recipients is at DOMAIN")
    group.add_argument("--older-than", type=duration, metavar="AGE", help="failed at least AGE ago (90s, 15m, 2h, 3d)")
    group.add_argument("--newer-than", type=duration, metavar="AGE", help="failed at most AGE ago")


def letter_filter(args: argparse.Namespace) -> LetterFilter:
    from workers.deadletters import LetterFilter

    return LetterFilter(code=args.code, recipient=args.recipient, domain=args.domain and args.domain.lower(),
                        older_than=args.older_than, newer_than=args.newer_than)


def has_filter(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) is not None for name in FILTER_OPTIONS)


def add_repair_options(parser: CommandParser) -> None:
    group = parser.add_argument_group("repair (the message is unchanged; only its envelope recipients are)")
    group.add_argument("--to", action="append", default=[], metavar="ADDRESS",
                       help="send to ADDRESS instead of the failed recipients (one dead letter; repeatable)")
    group.add_argument("--replace", action="append", default=[], metavar="OLD=NEW",
                       help="send to NEW instead of the failed recipient OLD (repeatable)")


def recipient_rewrite(args: argparse.Namespace) -> Callable[[list[str]], list[str]] | None:
    """The repair asked for on the command line, or None; a bad address is a usage error."""
    from mailqueue.message.addresses import envelope_address

    parser: CommandParser = args.command_parser

    def address(value: str, option: str) -> str:
        try:
            return envelope_address(value.strip())
        except (TypeError, ValueError) as error:
            parser.error(f"{option} {value!r}: {error}")

    if args.to and args.replace:
        parser.error("give --to or --replace, not both")
    if args.to:
        new = [address(value, "--to") for value in args.to]
        return lambda _failed: list(new)
    if not args.replace:
        return None
    mapping: dict[str, str] = {}
    for item in args.replace:
        old, equals, new_address = item.partition("=")
        if not equals or not old.strip():
            parser.error(f"--replace {item!r} is not of the form OLD=NEW")
        mapping[old.strip().lower()] = address(new_address, "--replace")
    return lambda failed: [mapping.get(recipient.lower(), recipient) for recipient in failed]
