"""A plain-text progress bar on stderr: redrawn in place on a terminal, a few lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
REDRAW_SECONDS = 0.1
MILESTONES = (0.25, 0.5, 0.75)  # where a non-terminal stream (a log, a pipe) gets a line


class Progress:
    """``update(done)`` as work advances, ``finish()`` at the end; writes nothing to stdout."""

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty()
        self.started = time.monotonic()
        self.done = 0
        self._drawn_at = 0.0
        self._milestones = list(MILESTONES)

    def update(self, done: int) -> None:
        self.done = min(done, self.total)
        if self.interactive:
            now = time.monotonic()
            if now - self._drawn_at >= REDRAW_SECONDS:
                self._drawn_at = now
                self.stream.write("\r" + self.line())
                self.stream.flush()
            return
        while self._milestones and self.done / self.total >= self._milestones[0]:
            self._milestones.pop(0)
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def finish(self) -> None:
        self.done = self.total if self.done >= self.total else self.done
        self.stream.write(("\r" if self.interactive else "") + self.line() + "\n")
        self.stream.flush()

    def line(self) -> str:
        fraction = self.done / self.total
        filled = int(WIDTH * fraction)
        bar = "#" * filled + "." * (WIDTH - filled)
        elapsed = time.monotonic() - self.started
        return f"{self.label:<11}[{bar}] {self.done:>5}/{self.total} {fraction:>4.0%}  {elapsed:5.1f} s"
