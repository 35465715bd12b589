"""The small helpers that turn samples into the printed table."""

from __future__ import annotations

import pytest

from benchmarks.report import percentile, table


def test_median_and_p99_are_nearest_rank() -> None:
    samples = [float(value) for value in range(1, 101)]
    assert percentile(samples, 0.5) == 50.0
    assert percentile(samples, 0.99) == 99.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 0.5)


def test_table_aligns_columns_under_the_title() -> None:
    text = table("title", ["name", "value"], [["a", "1"], ["longer", "22"]])
    lines = text.splitlines()
    assert lines[0] == "title"
    assert lines[2] == "name    value"
    assert lines[4] == "a           1"
    assert lines[5] == "longer     22"
