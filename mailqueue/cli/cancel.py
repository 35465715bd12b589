"""``mailqueue cancel TASK_ID``: cancel a delivery task that is scheduled or still queued."""

from __future__ import annotations

import argparse

from mailqueue.cli.base import CommandParser, add_command, print_json

DESCRIPTION = """\
Cancel a delivery task (the id 'mailqueue send' prints) that no worker has begun: one
scheduled for later (send --at) or still waiting in the queue. Prints True if it was
cancelled, so that it is never sent, and False if delivery had already begun (or is over);
the exit status is 0 either way, and 1 for an unknown task or an unreachable broker.

Every message of the task is cancelled (a task is one batch of a send). Its report says
"cancelled": at once for a scheduled task, and once a worker takes it off the queue for a
queued one ('mailqueue status TASK_ID')."""


def register(subparsers: argparse._SubParsersAction[CommandParser]) -> None:
    parser = add_command(subparsers, "cancel", help="cancel a scheduled or queued delivery task",
                         description=DESCRIPTION)
    parser.add_argument("task_id", metavar="TASK_ID", help="the task id printed by 'mailqueue send'")
    parser.add_argument("--json", action="store_true", help='print {"task_id": ..., "cancelled": true|false}')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mailqueue.cli.status import task_status
    from mailqueue.queue.delivery import Delivery

    task_status(args.task_id)  # UnknownDelivery (exit 1) for a task nobody knows
    cancelled = Delivery(args.task_id).cancel()
    if args.json:
        print_json({"task_id": args.task_id, "cancelled": cancelled})
    else:
        print(cancelled)
    return 0
