"""``mailqueue dead list|show|requeue|purge``: inspect and repair messages that failed for good.

The same commands show the quarantine: tasks the workers refused as unsigned or forged, and
entries of the queue no worker could read (moved aside as "undecodable")
(``workers.quarantine``). Those were never sent and may be forgeries, so they are listed
apart and requeued only with ``--force``.
"""

from __future__ import annotations

import argparse
import base64
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailqueue.cli.base import CommandError, CommandParser, add_command, print_json
from mailqueue.cli.deadselect import (
    add_filter_options,
    add_repair_options,
    has_filter,
    letter_filter,
    recipient_rewrite,
)
from mailqueue.cli.progress import Progress
from mailqueue.cli.report import server_answer, when

if TYPE_CHECKING:
    from workers.deadletters import DeadLetter, DeadLetters
    from workers.quarantine import Quarantine, QuarantinedTask

DESCRIPTION = """\
A message lands in the dead-letter store when a recipient is refused for good (5xx), when
its retries run out, or when its delivery task crashes. Each dead letter keeps the message,
the recipients that failed and what the server said last.

  mailqueue dead list                  # oldest first, 100 at a time (--offset for more)
  mailqueue dead show ID [--raw]       # details, or the message itself
  mailqueue dead requeue ID... | --all # send again, to the failed recipients only
  mailqueue dead purge ID... | --all   # delete (asks first, or --yes)

Filters select letters for list, requeue and purge: --code 550, --recipient ADDRESS,
--domain example.com, --older-than 2h, --newer-than 15m. --dry-run shows what requeue or
purge would do. A typo'd address is repaired on the way back:

  mailqueue dead requeue ID --to ann@example.com
  mailqueue dead requeue --domain exmaple.com --replace bob@exmaple.com=bob@example.com

Tasks refused as unsigned or forged (MAILQUEUE_SIGNING_KEY), and queue entries no worker
could read (not JSON, pickle, an unknown task), are quarantined, unsent:

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
                         help="list the quarantine instead: refused (unsigned, forged) or unreadable tasks")
    add_filter_options(listing)
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
        action.add_argument("--all", action="store_true", help="every dead letter (or every one the filters match)")
        action.add_argument("--dry-run", action="store_true", help="say what would be done, and do nothing")
        add_filter_options(action)
        action.set_defaults(handler=handler)
        if name == "requeue":
            action.add_argument("--force", action="store_true",
                                help="also requeue quarantined tasks (refused as unsigned or forged)")
            action.add_argument("--batch-size", type=int, metavar="N",
                                help="dead letters per delivery task (default: MAILQUEUE_BATCH_SIZE)")
            add_repair_options(action)
        else:
            action.add_argument("--quarantine", action="store_true", help="with --all: the whole quarantine")
            action.add_argument("--yes", action="store_true", help="do not ask before deleting many")


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
    letters = store()
    if has_filter(args):
        matching = letters.select(letter_filter(args))
        total, page = len(matching), matching[args.offset:args.offset + args.limit]
    else:
        total, page = letters.count(), letters.list(limit=args.limit, offset=args.offset)
    if args.json:
        print_json([letter_summary(letter) for letter in page])
        return 0
    if not page:
        print("No dead letters." if not total else f"No dead letters past --offset {args.offset} (of {total}).")
    for letter in page:
        print(f"{letter.id}  {when(letter.failed_at)}  {letter.message_id}  to {', '.join(letter.recipients)}")
        print(f"    {server_answer(letter.error.get('code'), letter.error.get('reply', ''))}"
              f"  ({letter.attempts} attempt(s))")
    if page and args.offset + len(page) < total:
        print(f"Showing {args.offset + 1}-{args.offset + len(page)} of {total} dead letters; "
              f"the next page: --offset {args.offset + len(page)}.")
    refused = quarantine().count()
    if refused:
        print(f"{refused} task(s) refused (unsigned, forged) or unreadable are quarantined, unsent: "
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
    undecodable = entry.reason.startswith("undecodable")
    if args.raw:
        if undecodable and isinstance(entry.payloads, dict):  # the bytes as they were on the queue
            raw = str(entry.payloads.get("raw", ""))
            encoded = entry.payloads.get("raw_encoding") == "base64"
            sys.stdout.buffer.write(base64.b64decode(raw) if encoded else raw.encode("utf-8", "surrogateescape"))
            sys.stdout.flush()
            return 0
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
        ("  No worker could read it, so it cannot be requeued; --raw prints its bytes." if undecodable else
         "  It may be a forgery. Requeue it only if you trust it: mailqueue dead requeue --force ID"),
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


@dataclass
class Selection:
    """What a requeue or purge acts on: dead letters, and quarantined tasks named by id."""

    letters: list[DeadLetter]
    quarantined: list[str]
    by_filter: bool  # chosen by --all or filters, not one by one


def select(args: argparse.Namespace, letters: DeadLetters) -> Selection:
    """The ids given, or every letter --all and the filters match; an unknown id is an error."""
    chosen_by_filter = args.all or has_filter(args)
    if chosen_by_filter == bool(args.letter_ids):
        args.command_parser.error("give dead-letter ids, or --all and/or filters (--code, --recipient, --domain, "
                                  "--older-than, --newer-than), not both")
    if chosen_by_filter:
        return Selection(letters.select(letter_filter(args)), [], by_filter=True)
    held = quarantine()
    chosen, refused = [], []
    for letter_id in dict.fromkeys(args.letter_ids):
        if not letters.contains(letter_id) and held.contains(letter_id):
            refused.append(letter_id)
        else:
            chosen.append(letters.get(letter_id))  # raises UnknownDelivery naming the id
    return Selection(chosen, refused, by_filter=False)


PER_LETTER_LINES = 10  # beyond this many, a progress bar and a summary instead of one line each


def requeue_letters(args: argparse.Namespace) -> int:
    from mailqueue.conf import settings
    from workers.app import app

    letters = store()
    chosen = select(args, letters)
    held = quarantine()
    unreadable = [entry_id for entry_id in chosen.quarantined if held.get(entry_id).reason.startswith("undecodable")]
    if unreadable:
        args.command_parser.error(f"{', '.join(unreadable)}: no worker could read it, so it cannot be requeued "
                                  "(see `mailqueue dead show ID --raw`)")
    if chosen.quarantined and not args.force:
        args.command_parser.error(
            f"{', '.join(chosen.quarantined)}: quarantined, refused as unsigned or forged, and never sent. It may be "
            "a forgery; check it with `mailqueue dead show ID`, and requeue it with --force only if you trust it")
    rewrite = recipient_rewrite(args)
    if args.to and len(chosen.letters) != 1:
        args.command_parser.error(f"--to replaces one dead letter's recipients; {len(chosen.letters)} are selected "
                                  "(use --replace OLD=NEW for many)")
    batch_size = args.batch_size or int(settings.MAILQUEUE_BATCH_SIZE)
    if batch_size < 1:
        args.command_parser.error(f"--batch-size must be at least 1, got {batch_size}")
    if args.dry_run:
        return describe_requeue(chosen, rewrite, batch_size)
    progress = Progress("Requeueing", len(chosen.letters)) if len(chosen.letters) > PER_LETTER_LINES else None
    try:
        sent = letters.requeue_many(chosen.letters, app=app, batch_size=batch_size, rewrite=rewrite,
                                    progress=progress.update if progress else None)
    except ValueError as error:  # a payload no worker could read, or a repair that leaves no recipient
        raise CommandError(f"nothing was requeued: {error}") from None
    if progress is not None:
        progress.finish()
    else:
        for task_id, ids in sent:
            for letter_id in ids:
                print(f"{letter_id} requeued as task {task_id}")
    for entry_id in chosen.quarantined:
        task_id = quarantine().requeue(entry_id, app=app)
        print(f"{entry_id} (quarantined) requeued as task {task_id}, signed with this machine's key")
    tasks = len(sent) + len(chosen.quarantined)
    print(f"Requeued {len(chosen.letters) + len(chosen.quarantined)} dead letter(s) in {tasks} task(s).")
    return 0


def describe_requeue(chosen: Selection, rewrite: Callable[[list[str]], list[str]] | None, batch_size: int) -> int:
    tasks = -(-len(chosen.letters) // batch_size) + len(chosen.quarantined)
    print(f"Would requeue {len(chosen.letters) + len(chosen.quarantined)} dead letter(s) in {tasks} task(s):")
    for letter in chosen.letters[:PER_LETTER_LINES]:
        recipients = rewrite(letter.recipients) if rewrite else letter.recipients
        print(f"  {letter.id}  {letter.message_id}  to {', '.join(recipients)}")
    if len(chosen.letters) > PER_LETTER_LINES:
        print(f"  ... and {len(chosen.letters) - PER_LETTER_LINES} more")
    for entry_id in chosen.quarantined:
        print(f"  {entry_id}  (quarantined)")
    return 0


def purge_letters(args: argparse.Namespace) -> int:
    if args.quarantine:
        if not args.all or args.letter_ids:
            args.command_parser.error("--quarantine purges the whole quarantine: give --all and no ids")
        if not args.dry_run:
            confirm(args, f"Delete all {quarantine().count()} quarantined task(s)?")
        held = quarantine()
        print(f"Would purge {held.count()} quarantined task(s)." if args.dry_run
              else f"Purged {held.purge()} quarantined task(s).")
        return 0
    letters = store()
    chosen = select(args, letters)
    count = len(chosen.letters) + len(chosen.quarantined)
    if args.dry_run:
        print(f"Would purge {count} dead letter(s).")
        return 0
    if chosen.by_filter:
        confirm(args, f"Delete {count} dead letter(s)? They cannot be recovered.")
    removed = letters.purge([letter.id for letter in chosen.letters]) if chosen.letters else 0
    removed += quarantine().purge(chosen.quarantined) if chosen.quarantined else 0
    print(f"Purged {removed} dead letter(s).")
    return 0


def confirm(args: argparse.Namespace, question: str) -> None:
    """Ask on a terminal; elsewhere (a script, a pipe) --yes must say it. Refusing is exit 1."""
    if args.yes:
        return
    if not sys.stdin.isatty():
        args.command_parser.error(f"{question[:-1]}: there is no terminal to ask on, so add --yes to confirm")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in {"y", "yes"}:
        raise CommandError("nothing was deleted")
