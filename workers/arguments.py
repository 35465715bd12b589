"""The arguments of a delivery task, read as untrusted input.

``mailqueue.deliver(payloads, attempt=0, report=None)`` is what producers and the deferral
poller send. Anyone who can write to the broker can send it with other arguments. With a
fixed Python signature, a wrong shape (an extra argument, an unknown keyword) is a TypeError
that Celery raises before our code runs; with late acks that failure is acknowledged, and
whatever mail the task carried is gone, without a dead letter. So the task takes any
arguments, and this module binds them the way that signature would:

- ``payloads``: a list, read one payload at a time by the round; one payload alone (a dict)
  is a batch of one; anything else is ``Unreadable``, dead-lettered with the reason;
- ``attempt``: a non-negative int, else 0 (logged); it only counts rounds;
- ``report``: a report of the shape rounds write (``workers.report.shape_problem``), else a
  new one (logged); the ledger still keeps accepted recipients from being sent again;
- anything left over is dead-lettered, unsent: the signature does not cover it, and no
  producer sends it.

Pure: no settings, no I/O; the caller logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workers.report import Report, shape_problem

NAMES = ("payloads", "attempt", "report")  # the signature producers send, in order
DEFAULTS: dict[str, Any] = {"payloads": None, "attempt": 0, "report": None}


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Something a task carried that no round can read: it is dead-lettered with ``reason``."""

    value: Any
    reason: str


@dataclass(frozen=True, slots=True)
class TaskArguments:
    """The arguments as received (what a signature covers), and what did not bind."""

    payloads: Any
    attempt: Any
    report: Any
    strays: tuple[Unreadable, ...] = ()
    unreadable: str | None = None  # why ``payloads`` cannot be read at all, if it cannot

    @classmethod
    def bind(cls, args: tuple[Any, ...], kwargs: dict[str, Any], *, received: Any = None) -> TaskArguments:
        """Bind like ``deliver(payloads=None, attempt=0, report=None)``, keeping what is left over.

        ``received`` is the arguments as the message held them (``task.request.args``): when
        they are a dict, Celery passed its keys as the arguments, and the dict is what it carries.
        """
        if isinstance(received, dict):
            return cls(received, 0, None, unreadable="the task's arguments must be a list, got a dict")
        bound = dict(zip(NAMES, args, strict=False))
        strays = [Unreadable(value, f"unexpected positional argument #{position}")
                  for position, value in enumerate(args[len(NAMES):], start=len(NAMES))]
        for name, value in kwargs.items():
            if name not in NAMES:
                strays.append(Unreadable(value, f"unexpected keyword argument {name!r}"))
            elif name in bound:
                strays.append(Unreadable(value, f"argument {name!r} given twice (positionally and by keyword)"))
            else:
                bound[name] = value
        bound = {**DEFAULTS, **bound}
        carried = tuple(stray for stray in strays if stray.value is not None)  # None carries nothing
        return cls(bound["payloads"], bound["attempt"], bound["report"], carried)

    def batch(self) -> list[Any]:
        """What the round reads, one item at a time: the payloads, then the strays."""
        payloads = self.payloads
        if self.unreadable is not None:
            items: list[Any] = [Unreadable(payloads, self.unreadable)]
        elif payloads is None:
            items = []
        elif isinstance(payloads, list):
            items = list(payloads)
        elif isinstance(payloads, dict):
            items = [payloads]  # one payload alone: validated like any other
        else:
            reason = f"payloads must be a list of payloads, got {type(payloads).__name__}"
            items = [Unreadable(payloads, reason)]
        return items + list(self.strays)

    def problems(self) -> list[str]:
        """What is wrong with the shape of this task, for the log (strays are dead-lettered)."""
        found = [f"{stray.reason}: {type(stray.value).__name__}" for stray in self.strays]
        if self.unreadable is not None:
            found.append(self.unreadable)
        if isinstance(self.payloads, dict):
            found.append("payloads is one payload, not a list: delivered as a batch of one")
        if attempt_number(self.attempt) is None:
            found.append(f"attempt {self.attempt!r} is not a non-negative int: counted as 0")
        if self.report is not None and shape_problem(self.report):
            found.append(f"report ignored, a new one started: {shape_problem(self.report)}")
        return found

    def signed_part(self) -> TaskArguments:
        """Without the strays: what a signature covers, once they went to the quarantine."""
        return TaskArguments(self.payloads, self.attempt, self.report, unreadable=self.unreadable)

    def rounds_done(self) -> int:
        """``attempt``: how many rounds ran before this one (0 when unreadable)."""
        return attempt_number(self.attempt) or 0

    def carried_report(self) -> Report | None:
        """The report to continue, or None to start a new one."""
        if self.report is None or shape_problem(self.report) is not None:
            return None
        report: Report = self.report
        return report


def attempt_number(value: Any) -> int | None:
    """``value`` if it is a non-negative int (not a bool), else None."""
    return value if type(value) is int and value >= 0 else None
