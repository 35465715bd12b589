"""Numbers for people: percentiles, rates and a plain-text table."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.5 is the median)."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def rate(per_second: float) -> str:
    return f"{per_second:,.0f}/s"


def ratio(value: float) -> str:
    return f"{value:.2f}x"


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A left-aligned first column, right-aligned others, under a title."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        aligned = (str(cell).rjust(width) for cell, width in zip(rest, widths[1:], strict=True))
        return "  ".join([str(first).ljust(widths[0]), *aligned])

    rule = "-" * len(line(header))
    return "\n".join([title, rule, line(header), rule, *(line(row) for row in rows), ""])
