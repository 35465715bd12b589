"""``mailqueue dead list|show|requeue|purge``: inspect and repair messages that failed for good."""

from __future__ import annotations

import argparse
import base64
import sys
from typing import TYPE_CHECKING, Any

from mailqueue.cli.base import CommandParser, add_command, print_json
from mailqueue.cli.report import server_answer, when

if TYPE_CHECKING:
    from workers.deadletters import DeadLetter, DeadLetters

DESCRIPTION = """\
A message lands in the dead-letter store when a recipient is refused for good (5xx), when
its retries run out, or when its delivery task crashes. Each dead letter keeps the message,
the recipients that failed and what the server said last.

  mailqueue dead list                  # oldest first
  mailqueue dead show ID [--raw]       # details, or the message itself
  mailqueue dead requeue ID... | --all # send again, to the failed recipients only
  mailqueue dead purge ID... | --all   # delete"""


def register(subparsers: argparse._SubParsersAction[CommandParser]) -> None:
    parser = add_command(subparsers, "dead", help="list, show, requeue or purge dead letters", description=DESCRIPTION)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=CommandParser)

    listing = add_command(actions, "list", help="list dead letters, oldest first")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default: %(default)s)")
    listing.add_argument("--offset", type=int, default=0, help="skip this many first")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(handler=list_letters)

    show = add_command(actions, "show", help="show one dead letter")
    show.add_argument("letter_id", metavar="ID")
    output = show.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the whole record as JSON")
    output.add_argument("--raw", action="store_true", help="print the message (RFC 5322) as it would be sent")
    show.set_defaults(handler=show_letter)

    for name, help_text, handler in (
        ("requeue", "send dead letters again (to their failed recipients only)", requeue_letters),
        ("purge", "delete dead letters", purge_letters),
    ):
        action = add_command(actions, name, help=help_text)
        action.add_argument("letter_ids", metavar="ID", nargs="*", help="dead-letter ids (see 'mailqueue dead list')")
        action.add_argument("--all", action="store_true", help="every dead letter")
        action.set_defaults(handler=handler)


def store() -> DeadLetters:
    from mailqueue.cli.brokerstate import broker_client
    from workers.deadletters import DeadLetters

    client, _url = broker_client()
    return DeadLetters(client)


def letter_summary(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id, "failed_at": letter.failed_at, "message_id": letter.message_id,
        "recipients": letter.recipients, "attempts": letter.attempts, "task_id": letter.task_id,
        "code": letter.error.get("code"), "reply": letter.error.get("reply", ""),
    }


def list_letters(args: argparse.Namespace) -> int:
    letters = store().list(limit=args.limit, offset=args.offset)
    if args.json:
        print_json([letter_summary(letter) for letter in letters])
        return 0
    if not letters:
        print("No dead letters.")
        return 0
    for letter in letters:
        print(f"{letter.id}  {when(letter.failed_at)}  {letter.message_id}  to {', '.join(letter.recipients)}")
        print(f"    {server_answer(letter.error.get('code'), letter.error.get('reply', ''))}"
              f"  ({letter.attempts} attempt(s))")
    return 0


def show_letter(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    letter = store().get(args.letter_id)
    if args.json:
        print_json(asdict(letter))
    elif args.raw:
        sys.stdout.buffer.write(base64.b64decode(letter.payload.get("message", "")))
        sys.stdout.flush()
    else:
        print("\n".join(detail_lines(letter)))
    return 0


def detail_lines(letter: DeadLetter) -> list[str]:
    lines = [
        f"Dead letter {letter.id}",
        f"  message     {letter.message_id}",
        f"  from        {letter.payload.get('sender', '')}",
        f"  failed at   {when(letter.failed_at)} on {letter.hostname or '?'}, after {letter.attempts} attempt(s)",
        f"  enqueued at {when(letter.enqueued_at)}",
        f"  task        {letter.task_id}",
        f"  last error  {server_answer(letter.error.get('code'), letter.error.get('reply', ''))}",
        "  failed recipients:",
    ]
    for address, detail in letter.failures.items():
        kind = "permanent" if detail.get("permanent") else "transient"
        lines.append(f"    {address}  {server_answer(detail.get('code'), detail.get('reply', ''))} ({kind})")
    if letter.error.get("traceback"):
        lines += ["  traceback:", *("    " + line for line in str(letter.error["traceback"]).splitlines())]
    return lines


def chosen_ids(args: argparse.Namespace, letters: DeadLetters) -> list[str]:
    """The ids given, every id with --all; an unknown id is an error, not a silent no-op."""
    if args.all == bool(args.letter_ids):
        args.command_parser.error("give dead-letter ids or --all (not both)")
    if args.all:
        return [letter.id for letter in letters.list(limit=max(letters.count(), 1))]
    for letter_id in args.letter_ids:
        letters.get(letter_id)  # raises UnknownDelivery naming the id
    return list(args.letter_ids)


def requeue_letters(args: argparse.Namespace) -> int:
    from workers.app import app

    letters = store()
    ids = chosen_ids(args, letters)
    for letter_id in ids:
        task_id = letters.requeue(letter_id, app=app)
        print(f"{letter_id} requeued as task {task_id}")
    print(f"Requeued {len(ids)} dead letter(s).")
    return 0


def purge_letters(args: argparse.Namespace) -> int:
    letters = store()
    ids = chosen_ids(args, letters)
    removed = letters.purge(None if args.all else ids)
    print(f"Purged {removed} dead letter(s).")
    return 0
