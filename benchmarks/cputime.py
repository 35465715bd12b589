"""CPU time of a process tree, read from /proc: the steadiest figure on a shared machine.

A worker's cost per message is the CPU its whole tree (the Celery main process, its pool
processes, their threads) spent between two readings, divided by the messages delivered
in between. Wall-clock rates move with the neighbours; CPU seconds barely do.
"""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def own_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), plus what its reaped children used."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def children(pid: int) -> list[int]:
    found: list[int] = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        found.extend(int(child) for child in listing.read_text().split())
    return found


def tree_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and every live descendant (a child that exited meanwhile counts
    once it is reaped, through its parent's cutime/cstime)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            total += own_seconds(current)
            pending.extend(children(current))
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited between the listing and the reading
    return total
