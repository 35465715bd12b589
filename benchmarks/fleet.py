"""(c) fleet: end-to-end messages per second, from enqueue until the SMTP sink accepted them.

Workers are real ``celery -A workers worker`` subprocesses (prefork pool, one pool process
per "worker process"), warmed up before the clock starts. The limit they are compared with
is a bare smtplib loop sending the same pre-built bytes over one persistent connection to
the same sink, measured just before and just after each fleet run (see ``run``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import psutil

import mailqueue.message
from benchmarks.loops import smtplib_loop
from benchmarks.mixes import MIXES
from benchmarks.report import rate, ratio, table
from benchmarks.servers import Sink
from mailqueue.backends.queue import EmailBackend
from mailqueue.conf import override_settings, parse_env_value
from mailqueue.defaults import SETTINGS
from mailqueue.queue.envelope import Envelope
from mailqueue.queue.producer import close_publishers

ROOT = Path(__file__).resolve().parents[1]
TEXT_MIX = MIXES[0]
DELIVERY_TIMEOUT = 300.0


def smtplib_rate(sink: Sink, envelopes: list[Envelope]) -> float:
    """Messages per second of one smtplib connection sending pre-built bytes in a loop."""
    return smtplib_loop(sink.port, envelopes).per_second


@dataclass
class Fleet:
    """One ``celery worker`` with ``processes`` pool processes, and how to reach it."""

    processes: int
    process: subprocess.Popen[bytes]
    settings: dict[str, Any]
    log: Path

    def memory(self) -> dict[str, Any]:
        """RSS (and USS: pages not shared with the parent) of the main and pool processes."""
        main = psutil.Process(self.process.pid)
        celery = [p for p in [main, *main.children(recursive=True)] if "celery" in " ".join(p.cmdline())]
        parent, pool = celery[0], celery[1:]

        def sizes(process: psutil.Process) -> dict[str, int]:
            info = process.memory_full_info()
            return {"rss": info.rss, "uss": info.uss}

        return {"main": sizes(parent), "pool": [sizes(child) for child in pool]}


def worker_settings(*, redis_url: str, port: int, processes: int, pool: str = "prefork") -> dict[str, Any]:
    tag = f"{os.getpid()}-{pool}-{processes}"
    return {
        "MAILQUEUE_BROKER_URL": redis_url, "MAILQUEUE_RESULT_BACKEND": redis_url,
        "MAILQUEUE_QUEUE": f"mailqueue-bench-{tag}", "MAILQUEUE_KEY_PREFIX": f"mailqueue-bench-{tag}",
        "MAILQUEUE_DELIVERY_BACKEND": "mailqueue.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": port, "EMAIL_TIMEOUT": 10.0,
    }


def celery_command(python: str, app: str, *, pool: str, concurrency: int, name: str) -> list[str]:
    """``celery worker`` as every fleet section starts it (no gossip, mingle nor heartbeat)."""
    return [python, "-m", "celery", "-A", app, "worker", "--pool", pool, "--concurrency", str(concurrency),
            "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--hostname", f"{name}-{pool}-{concurrency}-{os.getpid()}@%h"]


@contextlib.contextmanager
def worker_process(command: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A worker in a session of its own, its output in a log file; the whole group stopped after."""
    env = dict(env, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    with tempfile.TemporaryDirectory(prefix="mailqueue-bench-fleet-") as directory:
        log = Path(directory, "worker.log")
        with log.open("wb") as output:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        try:
            yield process, log
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextlib.contextmanager
def fleet(*, redis_url: str, sink: Sink, processes: int, pool: str = "prefork", port: int | None = None,
          extra: dict[str, str] | None = None) -> Iterator[Fleet]:
    """``celery -A workers worker`` with ``processes`` pool processes (threads with ``pool``
    "threads"), delivering to ``port`` (default: the sink's), ``extra`` settings on top."""
    values = worker_settings(redis_url=redis_url, port=sink.port if port is None else port, processes=processes,
                             pool=pool)
    # ``--worker-setting NAME=VALUE`` gives text: typed as the environment is, for the producer too.
    values.update({name: parse_env_value(name, raw, SETTINGS[name]) if name in SETTINGS and isinstance(raw, str)
                   else raw for name, raw in (extra or {}).items()})
    env = dict(os.environ, **{name: str(value) for name, value in values.items()})
    command = celery_command(sys.executable, "workers", pool=pool, concurrency=processes, name="bench")
    with worker_process(command, env) as (process, log):
        yield Fleet(processes, process, values, log)


def deliver(team: Fleet, sink: Sink, count: int) -> tuple[float, float]:
    """Enqueue ``count`` messages (batches of MAILQUEUE_BATCH_SIZE); return the seconds until
    the sink accepted all of them, and how busy the machine's CPUs were meanwhile (0 to 1)."""
    messages = [TEXT_MIX.build(mailqueue.message) for _ in range(count)]
    before = sink.accepted
    cpu_before = psutil.cpu_times()
    with override_settings(**team.settings):
        started = time.perf_counter()
        EmailBackend().send_messages(messages)
        if not sink.wait_for(before + count, timeout=DELIVERY_TIMEOUT):
            raise RuntimeError(f"the sink accepted {sink.accepted - before} of {count} messages within "
                               f"{DELIVERY_TIMEOUT} s; worker log:\n{team.log.read_text()[-3000:]}")
        seconds = time.perf_counter() - started
    return seconds, busy_fraction(cpu_before, psutil.cpu_times())


def busy_fraction(before: Any, after: Any) -> float:
    total = sum(after) - sum(before)
    idle = (after.idle + getattr(after, "iowait", 0.0)) - (before.idle + getattr(before, "iowait", 0.0))
    return (total - idle) / total if total > 0 else 0.0


def run(*, redis_url: str, sink: Sink, quick: bool) -> dict[str, Any]:
    """For each fleet size, alternate smtplib and fleet runs; each fleet run's ratio is to
    the better of the smtplib runs just before and just after it, and the median ratio is
    reported, so that drift on a shared machine neither flatters nor hurts the fleet."""
    counts, total, repeats = ([1], 200, 1) if quick else ([1, 2, 4], 3000, 5)
    envelopes = [Envelope.from_email_message(TEXT_MIX.build(mailqueue.message), max_size=10**7)
                 for _ in range(total)]
    runs: dict[str, Any] = {}
    for processes in counts:
        with fleet(redis_url=redis_url, sink=sink, processes=processes) as team:
            deliver(team, sink, 50 * processes)  # warm up: every pool process connects to Redis and SMTP
            limits = [smtplib_rate(sink, envelopes)]
            rounds = []
            for _ in range(repeats):
                seconds, busy = deliver(team, sink, total)
                limits.append(smtplib_rate(sink, envelopes))
                rounds.append({"per_second": total / seconds, "smtplib_per_second": max(limits[-2:]),
                               "cpu_busy": busy})
            memory = team.memory()
        close_publishers()
        for entry in rounds:
            entry["ratio"] = entry["per_second"] / entry["smtplib_per_second"]
        runs[str(processes)] = {
            "processes": processes, "messages": total, "rounds": rounds, "memory": memory,
            **{key: median(entry[key] for entry in rounds)
               for key in ("per_second", "smtplib_per_second", "ratio", "cpu_busy")},
        }
    return {"sink": sink.kind, "runs": runs}


def render(result: dict[str, Any]) -> str:
    rows = [[f"{entry['processes']} worker process(es), {entry['messages']} messages", rate(entry["per_second"]),
             rate(entry["smtplib_per_second"]), ratio(entry["ratio"]), f"{entry['cpu_busy']:.0%}"]
            for entry in result["runs"].values()]
    return table(f"(c) fleet: enqueue to accepted by the sink ({result['sink']}; target: 2 processes >= 0.70x)",
                 ["fleet (medians of rounds)", "messages/s", "smtplib loop, one connection", "ratio",
                  "CPUs busy"], rows)
