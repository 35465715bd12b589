"""mailqueue's benchmarks: run ``python benchmarks/run.py`` (see BENCHMARKS.md)."""
