"""Priorities: "high", "normal" and "low", and where each waits on the broker.

They are kombu's Redis priorities, not a queue per priority: a task's priority is a property
of its message, and kombu keeps one list per priority step for each queue (the bare queue
name for step 0, ``queue + SEP + step`` for the others). What moves a task back to a list
(kombu's restore of a dead worker's tasks, a ``Reject(requeue=True)``) reads the same
property, so a task keeps its priority through every redelivery.

Normal is step 0, the bare list: what every producer has always written there (and kombu
gives a message without a priority) stays normal. High is step 9 and low step 3, and the
workers' BRPOP names the lists in ``POP_ORDER`` (high, normal, low; ``workers.transport``),
so Redis pops from the first non-empty one: a worker slot that comes free takes high before
normal before low, and nothing polls. (kombu's own order is by step, 0 first; a worker of an
earlier release takes normal first, then low, then high.)

Strict order: low waits while high or normal work is queued, and is taken as soon as a slot
has nothing better to do.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailqueue.conf import settings

__all__ = ["DEFAULT_PRIORITY", "POP_ORDER", "PRIORITIES", "check_priorities", "check_priority", "list_name",
           "priority_of", "step_of", "taken_steps"]

# kombu's default steps (0, 3, 6, 9), so producers and workers of any release name the same lists.
PRIORITIES: dict[str, int] = {"high": 9, "normal": 0, "low": 3}
KOMBU_STEPS = (0, 3, 6, 9)
POP_ORDER = (9, 0, 3, 6)  # high, normal, low; then step 6, which no mailqueue sends (a stray's)
KOMBU_SEPARATOR = "\x06\x16"
DEFAULT_PRIORITY = "normal"


def check_priority(value: object, *, what: str = "priority") -> str:
    """``value`` if it names a priority; TypeError or ValueError naming ``what`` otherwise."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, one of {', '.join(map(repr, PRIORITIES))}; "
                        f"got {type(value).__name__}")
    if value not in PRIORITIES:
        raise ValueError(f"{what}={value!r} is not a priority: use {', '.join(map(repr, PRIORITIES))}.")
    return value


def check_priorities(values: Iterable[object], *, what: str) -> tuple[str, ...]:
    """A non-empty selection of priorities (a worker's), highest first, without repeats."""
    chosen = {check_priority(value, what=what) for value in values}
    if not chosen:
        raise ValueError(f"{what} names no priority: give one or more of {', '.join(PRIORITIES)}.")
    return tuple(name for name in PRIORITIES if name in chosen)


def step_of(priority: str) -> int:
    """The kombu priority step a message of ``priority`` carries."""
    return PRIORITIES[check_priority(priority)]


def priority_of(step: object) -> str | None:
    """The name of a message's kombu priority (None: a step mailqueue never sends, or none)."""
    for name, number in PRIORITIES.items():
        if step == number:
            return name
    return None


def list_name(queue: str, priority: str) -> str:
    """The Redis list where tasks of ``priority`` wait in ``queue`` (kombu's naming)."""
    step = step_of(priority)
    return f"{queue}{KOMBU_SEPARATOR}{step}" if step else queue


def taken_steps() -> tuple[int, ...]:
    """The kombu steps a worker pops, in ``POP_ORDER``: MAILQUEUE_WORKER_PRIORITIES (default: all).

    A worker that takes low also takes the stray step, so that no task waits where nobody looks.
    """
    names = check_priorities(settings.MAILQUEUE_WORKER_PRIORITIES, what="MAILQUEUE_WORKER_PRIORITIES")
    steps = {PRIORITIES[name] for name in names} | ({6} if "low" in names else set())
    return tuple(step for step in POP_ORDER if step in steps)
