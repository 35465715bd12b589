"""``mailqueue dead list|show|requeue|purge``: inspect and repair messages that failed for good.

The same commands show the quarantine: tasks the workers refused as unsigned or forged
(``workers.quarantine``). Those were never sent and may be forgeries, so they are listed
apart and requeued only with ``--force``.
"""

from __future__ import annotations

import argparse
import base64
import sys
from typing import TYPE_CHECKING, Any

from mailqueue.cli.base import CommandParser, add_command, print_json
from mailqueue.cli.report import server_answer, when

if TYPE_CHECKING:
    from workers.deadletters import DeadLetter, DeadLetters
    from workers.quarantine import Quarantine, QuarantinedTask

DESCRIPTION = """\
A message lands in the dead-letter store when a recipient is refused for good (5xx), when
its retries run out, or when its delivery task crashes. Each dead letter keeps the message,
the recipients that failed and what the server said last.

  mailqueue dead list                  # oldest first
  mailqueue dead show ID [--raw]       # details, or the message itself
  mailqueue dead requeue ID... | --all # send again, to the failed recipients only
  mailqueue dead purge ID... | --all   # delete

Tasks refused as unsigned or forged (MAILQUEUE_SIGNING_KEY) are quarantined, unsent:

  mailqueue dead list --quarantine     # the refused tasks, oldest first
  mailqueue dead show ID               # a dead letter or a quarantined task
  mailqueue dead requeue --force ID    # send a quarantined task, signed with your key
  mailqueue dead purge --quarantine --all"""


def register(subparsers: argparse._SubParsersAction[CommandParser]) -> None:
    parser = add_command(subparsers, "dead", help="list, show, requeue or purge dead letters", description=DESCRIPTION)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=CommandParser)

    listing = add_command(actions, "list", help="list dead letters, oldest first")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default: %(default)s)")
    listing.add_argument("--offset", type=int, default=0, help="skip this many first")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.add_argument("--quarantine", action="store_true",
                         help="list the tasks refused as unsigned or forged instead")
    listing.set_defaults(handler=list_letters)

    show = add_command(actions, "show", help="show one dead letter or quarantined task")
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
        if name == "requeue":
            action.add_argument("--force", action="store_true",
                                help="also requeue quarantined tasks (refused as unsigned or forged)")
        else:
            action.add_argument("--quarantine", action="store_true", help="with --all: the whole quarantine")


def store() -> DeadLetters:
    from mailqueue.cli.brokerstate import broker_client
    from workers.deadletters import DeadLetters

    client, _url = broker_client()
    return DeadLetters(client)


def quarantine() -> Quarantine:
    from mailqueue.cli.brokerstate import broker_client
    from workers.quarantine import Quarantine

    client, _url = broker_client()
    return Quarantine(client)


def letter_summary(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id, "failed_at": letter.failed_at, "message_id": letter.message_id,
        "recipients": letter.recipients, "attempts": letter.attempts, "task_id": letter.task_id,
        "code": letter.error.get("code"), "reply": letter.error.get("reply", ""),
    }


def quarantined_summary(entry: QuarantinedTask) -> dict[str, Any]:
    return {
        "id": entry.id, "refused_at": entry.refused_at, "task_id": entry.task_id, "reason": entry.reason,
        "message_ids": entry.message_ids, "recipients": entry.recipients, "hostname": entry.hostname,
        "origin": entry.origin,
    }


def list_quarantine(args: argparse.Namespace) -> int:
    entries = quarantine().list(limit=args.limit, offset=args.offset)
    if args.json:
        print_json([quarantined_summary(entry) for entry in entries])
        return 0
    if not entries:
        print("No quarantined tasks.")
        return 0
    for entry in entries:
        print(f"{entry.id}  {when(entry.refused_at)}  task {entry.task_id}  to {', '.join(entry.recipients) or '?'}")
        print(f"    {entry.reason}  (refused on {entry.hostname or '?'}, not sent)")
    return 0


def list_letters(args: argparse.Namespace) -> int:
    if args.quarantine:
        return list_quarantine(args)
    letters = store().list(limit=args.limit, offset=args.offset)
    if args.json:
        print_json([letter_summary(letter) for letter in letters])
        return 0
    if not letters:
        print("No dead letters.")
    for letter in letters:
        print(f"{letter.id}  {when(letter.failed_at)}  {letter.message_id}  to {', '.join(letter.recipients)}")
        print(f"    {server_answer(letter.error.get('code'), letter.error.get('reply', ''))}"
              f"  ({letter.attempts} attempt(s))")
    refused = quarantine().count()
    if refused:
        print(f"{refused} task(s) refused as unsigned or forged are quarantined, unsent: "
              "see `mailqueue dead list --quarantine`.")
    return 0


def show_letter(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    letters = store()
    if not letters.contains(args.letter_id) and quarantine().contains(args.letter_id):
        return show_quarantined(args)
    letter = letters.get(args.letter_id)
    if args.json:
        print_json(asdict(letter))
    elif args.raw:
        sys.stdout.buffer.write(base64.b64decode(letter.payload.get("message", "")))
        sys.stdout.flush()
    else:
        print("\n".join(detail_lines(letter)))
    return 0


def show_quarantined(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    entry = quarantine().get(args.letter_id)
    if args.json:
        print_json(asdict(entry))
        return 0
    if args.raw:
        for payload in entry.readable_payloads():
            sys.stdout.buffer.write(base64.b64decode(str(payload.get("message", "")), validate=False))
        sys.stdout.flush()
        return 0
    print("\n".join([
        f"Quarantined task {entry.id} (not sent)",
        f"  reason      {entry.reason}",
        f"  refused at  {when(entry.refused_at)} on {entry.hostname or '?'}",
        f"  task        {entry.task_id} (claimed origin {entry.origin or '?'})",
        f"  messages    {', '.join(entry.message_ids) or '?'}",
        f"  recipients  {', '.join(entry.recipients) or '?'}",
        "  It may be a forgery. Requeue it only if you trust it: mailqueue dead requeue --force ID",
    ]))
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


def split_quarantined(args: argparse.Namespace, letters: DeadLetters) -> tuple[list[str], list[str]]:
    """The ids given, as (dead letters, quarantined tasks); --all means dead letters only."""
    if args.all == bool(args.letter_ids):
        args.command_parser.error("give dead-letter ids or --all (not both)")
    if args.all:
        return chosen_ids(args, letters), []
    held = quarantine()
    refused = [letter_id for letter_id in args.letter_ids
               if not letters.contains(letter_id) and held.contains(letter_id)]
    for letter_id in args.letter_ids:
        if letter_id not in refused:
            letters.get(letter_id)  # raises UnknownDelivery naming the id
    return [letter_id for letter_id in args.letter_ids if letter_id not in refused], refused


def requeue_letters(args: argparse.Namespace) -> int:
    from workers.app import app

    letters = store()
    ids, refused = split_quarantined(args, letters)
    if refused and not args.force:
        args.command_parser.error(
            f"{', '.join(refused)}: quarantined, refused as unsigned or forged, and never sent. It may be a "
            "forgery; check it with `mailqueue dead show ID`, and requeue it with --force only if you trust it")
    for letter_id in ids:
        task_id = letters.requeue(letter_id, app=app)
        print(f"{letter_id} requeued as task {task_id}")
    for entry_id in refused:
        task_id = quarantine().requeue(entry_id, app=app)
        print(f"{entry_id} (quarantined) requeued as task {task_id}, signed with this machine's key")
    print(f"Requeued {len(ids) + len(refused)} dead letter(s).")
    return 0


def purge_letters(args: argparse.Namespace) -> int:
    if args.quarantine:
        if not args.all or args.letter_ids:
            args.command_parser.error("--quarantine purges the whole quarantine: give --all and no ids")
        print(f"Purged {quarantine().purge()} quarantined task(s).")
        return 0
    letters = store()
    ids, refused = split_quarantined(args, letters)
    removed = letters.purge(None if args.all else ids) if ids or args.all else 0
    removed += quarantine().purge(refused) if refused else 0
    print(f"Purged {removed} dead letter(s).")
    return 0
