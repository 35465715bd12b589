"""Delivery reports (see ``workers/report.py`` for their shape) as text an operator reads."""

from __future__ import annotations

import time
from typing import Any


def when(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    return f"{count} {noun if count == 1 else (plural_form or noun + 's')}"


def server_answer(code: int | None, reply: str) -> str:
    """The code and reply, one format everywhere; "---" when no server code exists (e.g. connection lost)."""
    return f"{code if code is not None else '---'} {reply}".rstrip()


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The totals and timing of a report, two or three lines."""
    messages = report.get("messages", {})
    parts = [f"{report.get('sent', 0)} sent", f"{report.get('failed', 0)} failed"]
    if report.get("pending"):
        parts.append(f"{report['pending']} pending")
    attempts = plural(int(report.get("attempts", 0)), "attempt")
    retries = plural(int(report.get("retries", 0)), "retry", "retries")
    worker = f"; worker {report['hostname']}" if report.get("hostname") else ""
    lines = [f"  {plural(len(messages), 'message')}: {', '.join(parts)}; {attempts}, {retries}{worker}"]
    started, finished = report.get("started_at"), report.get("finished_at")
    if finished and started:
        lines.append(f"  started {when(started)}, finished {when(finished)} ({finished - started:.1f} s)")
    elif started:
        lines.append(f"  started {when(started)}")
    due = report.get("next_attempt_at")
    if due:
        lines.append(f"  next attempt {when(due)} (in {max(0.0, due - time.time()):.0f} s)")
    return lines


def message_lines(message_id: str, entry: dict[str, Any]) -> list[str]:
    """One message: its status, then one line per recipient with the server's answer."""
    status = entry.get("status", "?")
    attempts = int(entry.get("attempts", 0))
    detail = f" after {plural(attempts, 'attempt')}" if attempts > 1 else ""
    letter = f" (dead letter {entry['dead_letter']})" if entry.get("dead_letter") else ""
    lines = [f"  {message_id}  {status}{detail}{letter}"]
    recipients = entry.get("recipients", {})
    width = max((len(address) for address in recipients), default=0)
    for address, outcome in recipients.items():
        answer = server_answer(outcome.get("code"), outcome.get("reply", ""))
        lines.append(f"    {outcome.get('status', '?'):<8}  {address:<{width}}  {answer}")
    return lines


def report_lines(report: dict[str, Any]) -> list[str]:
    lines = summary_lines(report)
    for message_id, entry in report.get("messages", {}).items():
        lines.append("")
        lines.extend(message_lines(message_id, entry))
    return lines
