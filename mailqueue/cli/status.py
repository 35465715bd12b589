"""``mailqueue status TASK_ID``: where a delivery task is, and its report once there is one."""

from __future__ import annotations

import argparse
from typing import Any

from mailqueue.cli.base import CommandParser, add_command, print_json
from mailqueue.cli.report import report_lines, when

DESCRIPTION = """\
Show a delivery task (the id 'mailqueue send' prints, or a message's delivery.task_id):
scheduled (send_at), queued, in flight, deferred until its next retry, cancelled, or
finished, with what the SMTP server
answered for every recipient. --wait waits for the final report (after every retry).

Reports are kept for MAILQUEUE_RESULT_EXPIRES seconds."""

LOCATIONS = {
    "cancelled": "cancelled: never sent (it leaves the queue when a worker reaches it)",
    "scheduled": "scheduled for {due}",
    "queued": "queued, waiting for a worker",
    "in flight": "in flight: a worker is delivering it",
    "deferred": "deferred: waiting for its next retry",
}


def register(subparsers: argparse._SubParsersAction[CommandParser]) -> None:
    parser = add_command(subparsers, "status", help="show a delivery task's state and report", description=DESCRIPTION)
    parser.add_argument("task_id", metavar="TASK_ID", help="the task id printed by 'mailqueue send'")
    parser.add_argument("--wait", action="store_true", help="wait for the final report")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="with --wait: give up after SECONDS")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.set_defaults(handler=run)


def task_status(task_id: str) -> dict[str, Any]:
    """The task's state, its report (final or so far) and, while it has none, where it is."""
    from celery.result import AsyncResult

    from mailqueue.cli.brokerstate import broker_client, locate, scheduled_for
    from mailqueue.exceptions import DeliveryFailed, UnknownDelivery
    from mailqueue.queue.delivery import result_reader

    result = AsyncResult(task_id, app=result_reader())
    state, info = str(result.state), result.info
    status: dict[str, Any] = {"task_id": task_id, "state": state, "location": None, "report": None, "error": None}
    if isinstance(info, dict):
        status["report"] = info
    elif isinstance(info, DeliveryFailed):  # finished, with mail that failed for good
        status["report"] = info.report
    elif isinstance(info, BaseException):
        status["error"] = f"{type(info).__name__}: {info}"
    if state == "PENDING":  # Celery's word for "no result stored": queued, in flight or unknown
        client, _url = broker_client()
        status["location"] = locate(client, task_id)
        if status["location"] == "scheduled":
            status["scheduled_for"] = scheduled_for(client, task_id)
        if status["location"] is None:
            raise UnknownDelivery(
                f"No delivery task {task_id} is known: it is not queued, in flight or deferred, and has no "
                "report (reports expire after MAILQUEUE_RESULT_EXPIRES seconds)."
            )
    return status


def headline(status: dict[str, Any]) -> str:
    task_id, state, report = status["task_id"], status["state"], status["report"]
    if status["location"]:
        due = status.get("scheduled_for")
        where = LOCATIONS[status["location"]].format(due=when(due) if due else "?")
        return f"Task {task_id}: {where}"
    if state in ("SUCCESS", "FAILURE") and report is not None:
        outcome = "delivered" if not report.get("failed") else "finished with failures"
        if report.get("cancelled") and not report.get("sent") and not report.get("failed"):
            outcome = "cancelled, never sent"
        return f"Task {task_id}: {outcome}"
    if state == "DEFERRED":
        return f"Task {task_id}: {LOCATIONS['deferred']}"
    if status["error"]:
        return f"Task {task_id}: {state}: {status['error']}"
    return f"Task {task_id}: {state}"


def wait_for(delivery: Any, *, timeout: float | None) -> None:
    """Wait until the task is over; a task that raised is reported by its status, not here."""
    from mailqueue.exceptions import MailQueueError

    try:
        delivery.get(timeout=timeout)
    except MailQueueError:  # timeout, broker unreachable
        raise
    except Exception:  # the task's own error, re-raised by Celery: the status shows it
        pass


def run(args: argparse.Namespace) -> int:
    from mailqueue.queue.delivery import Delivery

    status = task_status(args.task_id)
    if args.wait and status["state"] not in ("SUCCESS", "FAILURE", "REVOKED"):
        wait_for(Delivery(args.task_id), timeout=args.timeout)
        status = task_status(args.task_id)
    if args.json:
        print_json(status)
        return 0
    print(headline(status))
    if status["report"] is not None:
        print("\n".join(report_lines(status["report"])))
    return 0
