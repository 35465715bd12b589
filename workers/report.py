"""The delivery report: what a task returns, and what ``delivery.get()`` gives the producer.

It is a plain JSON-safe dict, built up round by round (a deferred round carries it along)::

    {"task_id": ..., "sent": 2, "failed": 1, "pending": 0, "retries": 1, "attempts": 2,
     "hostname": "celery@host", "started_at": ..., "finished_at": ..., "next_attempt_at": None,
     "messages": {"<id@host>": {"status": "sent", "attempts": 1, "dead_letter": None,
                                "recipients": {"a@example.com": {"status": "accepted", "code": 250,
                                               "reply": "2.0.0 OK", "permanent": False}}}}}

A message is "sent" once every recipient is accepted, "failed" once every recipient is settled
and one of them failed for good, and "pending" while one waits for a retry. A recipient is
"accepted", "failed" or "pending".
"""

from __future__ import annotations

import time
from typing import Any

from mailqueue.outcomes import RecipientOutcome, Status

Report = dict[str, Any]

SENT, FAILED, PENDING, ACCEPTED = "sent", "failed", "pending", "accepted"
LEDGER_REPLY = "accepted on an earlier attempt (delivery ledger)"


def new_report(task_id: str, *, hostname: str = "") -> Report:
    return {
        "task_id": task_id, "sent": 0, "failed": 0, "pending": 0, "retries": 0, "attempts": 0,
        "hostname": hostname, "started_at": time.time(), "finished_at": None, "next_attempt_at": None,
        "messages": {},
    }


def message_entry(report: Report, message_id: str) -> dict[str, Any]:
    return report["messages"].setdefault(
        message_id, {"status": PENDING, "attempts": 0, "dead_letter": None, "recipients": {}})


def record_outcome(report: Report, message_id: str, outcome: RecipientOutcome) -> None:
    """Note what the server said about one recipient; an acceptance is never overwritten."""
    recipients = message_entry(report, message_id)["recipients"]
    if recipients.get(outcome.recipient, {}).get("status") == ACCEPTED:
        return
    status = {Status.ACCEPTED: ACCEPTED, Status.PERMANENT: FAILED, Status.TRANSIENT: PENDING}[outcome.status]
    recipients[outcome.recipient] = {
        "status": status, "code": outcome.code, "reply": outcome.reply,
        "permanent": outcome.status is Status.PERMANENT,
    }


def record_ledger_hit(report: Report, message_id: str, recipient: str) -> None:
    """A recipient the ledger says was accepted before (by a task that did not report it)."""
    record_outcome(report, message_id, RecipientOutcome(recipient, Status.ACCEPTED, None, LEDGER_REPLY))


def fail_recipient(report: Report, message_id: str, recipient: str, *, reply: str) -> None:
    """Fail one recipient for good, keeping the last code the server gave."""
    entry = message_entry(report, message_id)["recipients"].setdefault(
        recipient, {"status": PENDING, "code": None, "reply": "", "permanent": False})
    if entry["status"] != ACCEPTED:
        entry.update(status=FAILED, reply=entry["reply"] or reply)


def recipients_with(report: Report, message_id: str, status: str) -> list[str]:
    recipients = message_entry(report, message_id)["recipients"]
    return [address for address, detail in recipients.items() if detail["status"] == status]


def settle(report: Report, message_id: str) -> str | None:
    """Decide the message's status once no recipient is pending; returns it (None: still pending)."""
    entry = message_entry(report, message_id)
    if recipients_with(report, message_id, PENDING):
        return None
    entry["status"] = FAILED if recipients_with(report, message_id, FAILED) else SENT
    return str(entry["status"])


def failures(report: Report, message_id: str) -> dict[str, dict[str, Any]]:
    recipients = message_entry(report, message_id)["recipients"]
    return {address: dict(detail) for address, detail in recipients.items() if detail["status"] == FAILED}


def last_error(report: Report, message_id: str) -> dict[str, Any]:
    """The error an operator sees first: a permanent failure if any, otherwise the last one."""
    failed = list(failures(report, message_id).values())
    if not failed:
        return {"code": None, "reply": "", "permanent": False}
    chosen = next((detail for detail in failed if detail["permanent"]), failed[-1])
    return {key: chosen[key] for key in ("code", "reply", "permanent")}


def tally(report: Report) -> Report:
    """Recount the totals from the messages."""
    statuses = [entry["status"] for entry in report["messages"].values()]
    report.update(sent=statuses.count(SENT), failed=statuses.count(FAILED), pending=statuses.count(PENDING))
    return report


def shape_problem(report: object) -> str | None:
    """What keeps a report carried by a task from being continued (None: it can be).

    A re-sent round carries its report, and whatever came off the broker may not be one; a
    round that continued a malformed one would crash halfway (KeyError, AttributeError).
    Only what the round reads is checked; the totals are recounted anyway.
    """
    if not isinstance(report, dict):
        return f"a report must be a dict, got {type(report).__name__}"
    messages = report.get("messages")
    if not isinstance(messages, dict):
        return f"'messages' must be a dict, got {type(messages).__name__}"
    for message_id, entry in messages.items():
        problem = _entry_problem(entry)
        if problem is not None:
            return f"message {message_id!r}: {problem}"
    return None


def _entry_problem(entry: object) -> str | None:
    if not isinstance(entry, dict):
        return f"entry must be a dict, got {type(entry).__name__}"
    if entry.get("status") not in (SENT, FAILED, PENDING) or type(entry.get("attempts")) is not int:
        return "needs a status and an int attempts"
    if not (entry.get("dead_letter") is None or isinstance(entry.get("dead_letter"), str)):
        return "dead_letter must be a str or None"
    recipients = entry.get("recipients")
    if not isinstance(recipients, dict):
        return "recipients must be a dict"
    for address, detail in recipients.items():
        if not (isinstance(detail, dict) and detail.get("status") in (ACCEPTED, FAILED, PENDING)
                and isinstance(detail.get("reply"), str) and isinstance(detail.get("permanent"), bool)
                and (detail.get("code") is None or type(detail.get("code")) is int)):
            return f"recipient {address!r}: needs a status, a code, a reply and permanent"
    return None
