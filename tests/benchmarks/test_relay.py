"""The relay section: it runs end to end (quick), and its target table reads the numbers right.

The peer's venv is made by the benchmark's setup, never here: the peer's run is skipped,
saying how to make it, when ``benchmarks/.peer-venv`` is not there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from benchmarks.peer import venv
from benchmarks.relay import targets

ROOT = Path(__file__).resolve().parents[2]


def relay_run(tmp_path: Path, *options: str) -> tuple[str, dict[str, Any]]:
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--only", "relay", "--json", str(output), *options],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout, json.loads(output.read_text())["relay"]


@pytest.mark.faults
def test_quick_relay_run_measures_loops_and_both_pools_near_and_far(tmp_path: Path) -> None:
    stdout, result = relay_run(tmp_path, "--no-peer", "--rtt-ms", "0", "10", "--messages", "60",
                               "--remote-messages", "20")
    assert [distance["rtt_ms"] for distance in result["distances"]] == [0.0, 10.0]
    for distance in result["distances"]:
        rows = distance["rows"]
        assert set(rows) == {"smtplib", "pipelined", "mailqueue-prefork", "mailqueue-threads"}
        assert rows["smtplib"]["vs_smtplib"] == 1.0
        for name, row in rows.items():
            assert row["per_second"] > 0 and row["vs_peer"] is None
            # A fleet's CPU is read from /proc in clock ticks (10 ms): a smoke run's few
            # messages may cost less than one. The loops' own process_time is finer.
            assert row["cpu_per_message"] > 0 if name in ("smtplib", "pipelined") else row["cpu_per_message"] >= 0
        assert rows["mailqueue-prefork"]["idle_cpu_per_second"] >= 0 and rows["smtplib"]["idle_cpu_per_second"] is None
    assert result["enqueue"]["mailqueue"]["count"] == 60 and "peer" not in result["enqueue"]
    assert "(e) relay at RTT 10 ms" in stdout and "issue 12's targets" in stdout


@pytest.mark.faults
@pytest.mark.skipif(venv.ready() is None, reason="no peer venv: make it with .venv/bin/python benchmarks/run.py "
                    "--setup-peer --only relay (or python -m benchmarks.peer.venv)")
def test_quick_relay_run_measures_the_peer_side_by_side(tmp_path: Path) -> None:
    _, result = relay_run(tmp_path, "--rtt-ms", "0", "--messages", "60")
    rows = result["distances"][0]["rows"]
    assert {"peer-prefork", "peer-threads"} <= set(rows)
    assert max(rows["peer-prefork"]["vs_peer"], rows["peer-threads"]["vs_peer"]) == 1.0
    assert rows["peer-prefork"]["cpu_per_message"] > 0
    assert result["enqueue"]["peer"]["count"] == 60


def test_the_peer_venv_pins_the_celery_stack_mailqueue_runs() -> None:
    wanted = venv.requirements()
    assert "django-celery-email==3.0.0" in wanted and "django>=5.2,<6" in wanted
    for name in ("celery", "kombu", "redis"):
        assert f"{name}=={metadata.version(name)}" in wanted


def row(per_second: float, cpu: float, vs_smtplib: float, vs_peer: float | None) -> dict[str, Any]:
    return {"per_second": per_second, "cpu_per_message": cpu, "vs_smtplib": vs_smtplib, "vs_peer": vs_peer}


def test_targets_take_mailqueue_s_best_pool_and_compare_each_the_right_way() -> None:
    result = {
        "distances": [
            {"rtt_ms": 0.0, "rows": {"mailqueue-prefork": row(5000, 140e-6, 1.1, 2.5),
                                     "mailqueue-threads": row(3000, 120e-6, 0.6, 1.5)}},
            {"rtt_ms": 20.0, "rows": {"mailqueue-prefork": row(100, 300e-6, 8.0, 0.6),
                                      "mailqueue-threads": row(700, 200e-6, 60.0, 4.2)}},
        ],
        "enqueue": {"ping": {"p50_seconds": 1e-4}, "mailqueue": {"p50_seconds": 4e-4},
                    "peer": {"p50_seconds": 1e-3}},
    }
    found = {what: (value, goal, higher) for what, value, goal, higher in targets(result)}
    assert found["RTT 0: x the smtplib loop"] == (1.1, 1.0, True)  # prefork: the faster pool
    assert found["RTT 0: worker CPU per message (µs, mailqueue's lowest)"][0] == pytest.approx(120)
    assert found["RTT 20 ms: mailqueue's best, messages/s"] == (700, 600.0, True)  # threads there
    assert found["RTT 20 ms: x the peer's best"][0] == 4.2
    assert found["enqueue p50 / PING p50"] == (pytest.approx(4.0), 3.0, False)
    assert found["enqueue p50 / the peer's p50"] == (pytest.approx(0.4), 0.5, False)
