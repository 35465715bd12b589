"""``benchmarks/run.py`` keeps running: the build section, quick, as a script from the README."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_build_section_runs_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--only", "build", "--json", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "(a) build" in completed.stdout and "1 KB text" in completed.stdout
    results = json.loads(output.read_text())
    assert results["quick"] is True
    assert results["machine"]["cores"] >= 1 and results["machine"]["versions"]["python"]
    mixes = results["build"]["mixes"]
    assert set(mixes) == {"text", "text+html", "text+attachment"}
    for entry in mixes.values():
        assert entry["per_second"]["mailqueue"] > 0
        assert entry["per_second"]["mailqueue_standard"] > 0
    assert "enqueue" not in results and "fleet" not in results


def test_help_lists_the_sections() -> None:
    completed = subprocess.run([sys.executable, "benchmarks/run.py", "--help"], cwd=ROOT, capture_output=True,
                               text=True, timeout=60, check=False)
    assert completed.returncode == 0
    for section in ("build", "enqueue", "fleet", "memory", "relay", "--quick", "--messages", "--rtt-ms"):
        assert section in completed.stdout
