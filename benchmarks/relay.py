"""(e) relay: issue 12's side-by-side run, near and far relays, mailqueue against its peer.

For each relay distance (RTT 0: the sink itself; RTT 20 ms: the sink behind
``benchmarks.latency``), in one run: the smtplib loop and the pipelined loop over one
connection (the limits), mailqueue's fleet and django-celery-email's, each as prefork 2 and
threads 16, against the same Redis and the same sink. Fleets are timed end to end, from the
first enqueue until the sink accepted the last message, after a warm-up; their CPU per
message is the worker process tree's (``benchmarks.cputime``), the loops' their own. The
enqueue latency of both producers is measured first, beside a Redis PING, in blocks.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

import mailqueue.message
from benchmarks import cputime, fleet, loops
from benchmarks.enqueue import timed
from benchmarks.latency import latency
from benchmarks.mixes import RECIPIENT, SENDER, SUBJECT, TEXT
from benchmarks.peer.fleet import PeerDriver, peer_env, peer_worker
from benchmarks.report import percentile, rate, ratio, table
from benchmarks.servers import Sink
from mailqueue.conf import override_settings
from mailqueue.mail import send_mail
from mailqueue.queue.envelope import Envelope
from mailqueue.queue.producer import close_publishers

POOLS = (("prefork", 2), ("threads", 16))
WARM_UP = 100  # messages through a fresh fleet before the clock starts
LABELS = {"smtplib": "smtplib loop, 1 connection", "pipelined": "raw RFC 2920 pipelined loop, 1 connection",
          **{f"{who}-{pool}": f"{name}, {pool} {size}" for who, name in (("mailqueue", "mailqueue"),
                                                                        ("peer", "django-celery-email"))
             for pool, size in POOLS}}


@dataclass
class RelayOptions:
    messages: int = 3000  # per contender at RTT 0
    # Per fleet behind the proxy: a task of 100 (the default batch) per thread of a 16-thread
    # pool, and a minute per lock-step prefork 2 fleet. The loops send an eighth: a steady rate.
    remote_messages: int = 1600
    rtts_ms: list[float] = field(default_factory=lambda: [0.0, 20.0])
    peer_python: Path | None = None  # None: the peer is left out
    peer_chunk_size: int = 10  # django-celery-email's default CELERY_EMAIL_CHUNK_SIZE
    worker_settings: dict[str, str] = field(default_factory=dict)
    enqueue_blocks: int = 10
    enqueue_per_block: int = 100
    idle_seconds: float = 2.0  # how long a warm, idle fleet is watched for the CPU it uses doing nothing


def source() -> dict[str, Any]:
    """The commit measured, and whether mailqueue/ or workers/ differed from it (outside a
    checkout, say a ``git archive`` export, BENCH_SOURCE_COMMIT names it)."""
    root = fleet.ROOT

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "mailqueue", "workers")
    exported = os.environ.get("BENCH_SOURCE_COMMIT", "unknown")
    return {"commit": git("rev-parse", "--short", "HEAD") or f"{exported} (exported, not a git checkout)",
            "uncommitted": changed.splitlines()}


def envelopes_for(count: int) -> list[Envelope]:
    return [Envelope.from_email_message(fleet.TEXT_MIX.build(mailqueue.message), max_size=10**7)
            for _ in range(count)]


def loop_row(result: loops.LoopResult) -> dict[str, Any]:
    return {"messages": result.messages, "per_second": result.per_second,
            "cpu_per_message": result.cpu_per_message, "cpu_busy": None, "idle_cpu_per_second": None}


def idle_cpu(pid: int, seconds: float) -> float:
    """CPU seconds per second the warm worker tree uses with nothing to do (broker polling,
    timers): part of its CPU per message, the larger the longer a run takes."""
    cpu = cputime.tree_seconds(pid)
    time.sleep(seconds)
    return (cputime.tree_seconds(pid) - cpu) / seconds


def fleet_row(count: int, seconds: float, cpu_seconds: float, busy: float, idle: float) -> dict[str, Any]:
    return {"messages": count, "per_second": count / seconds, "cpu_per_message": cpu_seconds / count,
            "cpu_busy": busy, "idle_cpu_per_second": idle}


def mailqueue_row(redis_url: str, sink: Sink, port: int, pool: str, size: int, count: int,
                  options: RelayOptions) -> dict[str, Any]:
    with fleet.fleet(redis_url=redis_url, sink=sink, processes=size, pool=pool, port=port,
                     extra=options.worker_settings) as team:
        fleet.deliver(team, sink, min(WARM_UP, count))
        idle = idle_cpu(team.process.pid, options.idle_seconds)
        cpu = cputime.tree_seconds(team.process.pid)
        seconds, busy = fleet.deliver(team, sink, count)
        cpu = cputime.tree_seconds(team.process.pid) - cpu
    close_publishers()
    return fleet_row(count, seconds, cpu, busy, idle)


def peer_deliver(driver: PeerDriver, sink: Sink, count: int, log: Path) -> float:
    """The peer's send_messages of ``count`` prepared messages until the sink has them all."""
    driver.ask(f"prepare {count}")
    before = sink.accepted
    started = time.perf_counter()
    driver.ask("send")
    if not sink.wait_for(before + count, timeout=fleet.DELIVERY_TIMEOUT):
        raise RuntimeError(f"the sink accepted {sink.accepted - before} of {count} peer messages within "
                           f"{fleet.DELIVERY_TIMEOUT} s; peer worker log:\n{log.read_text()[-3000:]}")
    return time.perf_counter() - started


def peer_row(python: Path, redis_url: str, sink: Sink, port: int, pool: str, size: int, count: int,
             options: RelayOptions) -> dict[str, Any]:
    env = peer_env(redis_url=redis_url, port=port, queue=f"peer-bench-{os.getpid()}-{pool}",
                   chunk_size=options.peer_chunk_size)
    with peer_worker(python, env, pool=pool, concurrency=size) as worker:
        driver = PeerDriver(python, env)
        try:
            peer_deliver(driver, sink, min(WARM_UP, count), worker.log)
            idle = idle_cpu(worker.process.pid, options.idle_seconds)
            cpu, times = cputime.tree_seconds(worker.process.pid), psutil.cpu_times()
            seconds = peer_deliver(driver, sink, count, worker.log)
            cpu = cputime.tree_seconds(worker.process.pid) - cpu
            busy = fleet.busy_fraction(times, psutil.cpu_times())
        finally:
            driver.close()
    return fleet_row(count, seconds, cpu, busy, idle)


def contenders(options: RelayOptions) -> Iterator[str]:
    yield from ("smtplib", "pipelined")
    for who in ("mailqueue", "peer"):
        if who == "mailqueue" or options.peer_python is not None:
            yield from (f"{who}-{pool}" for pool, _ in POOLS)


def at_distance(redis_url: str, sink: Sink, rtt_ms: float, envelopes: list[Envelope],
                options: RelayOptions) -> dict[str, Any]:
    count = options.messages if rtt_ms <= 0 else options.remote_messages
    loop_count = count if rtt_ms <= 0 else max(10, count // 8)
    sizes = dict(POOLS)
    rows: dict[str, Any] = {}
    with latency(sink.port, rtt_ms) as port:
        for key in contenders(options):
            who, _, pool = key.partition("-")
            if who == "smtplib":
                rows[key] = loop_row(loops.smtplib_loop(port, envelopes[:loop_count]))
            elif who == "pipelined":
                rows[key] = loop_row(loops.pipelined_loop(port, envelopes[:loop_count]))
            elif who == "mailqueue":
                rows[key] = mailqueue_row(redis_url, sink, port, pool, sizes[pool], count, options)
            else:
                assert options.peer_python is not None
                rows[key] = peer_row(options.peer_python, redis_url, sink, port, pool, sizes[pool], count, options)
            print(f"  RTT {rtt_ms:g} ms, {LABELS[key]}: {rate(rows[key]['per_second'])}", flush=True)
    add_ratios(rows)
    return {"rtt_ms": rtt_ms, "rows": rows}


def add_ratios(rows: dict[str, Any]) -> None:
    peers = [row["per_second"] for key, row in rows.items() if key.startswith("peer-")]
    for row in rows.values():
        row["vs_smtplib"] = row["per_second"] / rows["smtplib"]["per_second"]
        row["vs_peer"] = row["per_second"] / max(peers) if peers else None


def enqueue_latency(redis_url: str, options: RelayOptions) -> dict[str, Any]:
    """send_mail through each producer and a PING, in alternating blocks, to queues no one reads."""
    import redis

    queue = f"mailqueue-bench-relay-enqueue-{os.getpid()}"
    client = redis.Redis.from_url(redis_url)
    driver = None
    if options.peer_python is not None:
        driver = PeerDriver(options.peer_python, peer_env(redis_url=redis_url, port=25, queue=f"{queue}-peer",
                                                          chunk_size=options.peer_chunk_size))
    samples: dict[str, list[float]] = {"ping": [], "mailqueue": [], "peer": [], "peer_ping": []}
    settings = {"EMAIL_BACKEND": "mailqueue.backends.queue.EmailBackend", "MAILQUEUE_BROKER_URL": redis_url,
                "MAILQUEUE_QUEUE": queue}

    def mail() -> None:
        send_mail(SUBJECT, TEXT, SENDER, [RECIPIENT])

    try:
        with override_settings(**settings):
            for block in range(options.enqueue_blocks + 1):  # the first block warms up and is dropped
                into = samples if block else {kind: [] for kind in samples}
                timed(client.ping, options.enqueue_per_block, into["ping"])
                timed(mail, options.enqueue_per_block, into["mailqueue"])
                client.delete(queue)
                if driver is not None:
                    reply = driver.ask(f"latency {options.enqueue_per_block}")
                    into["peer"].extend(reply["enqueue"])
                    into["peer_ping"].extend(reply["ping"])
    finally:
        client.delete(queue)
        client.close()
        close_publishers()
        if driver is not None:
            driver.close()
    return {kind: {"count": len(values), "p50_seconds": percentile(values, 0.5),
                   "p99_seconds": percentile(values, 0.99)} for kind, values in samples.items() if values}


def run(*, redis_url: str, sink: Sink, options: RelayOptions) -> dict[str, Any]:
    result: dict[str, Any] = {"sink": sink.kind, "source": source(), "options": {
        "messages": options.messages, "remote_messages": options.remote_messages, "rtts_ms": options.rtts_ms,
        "peer": options.peer_python is not None, "peer_chunk_size": options.peer_chunk_size,
        "worker_settings": options.worker_settings}}
    result["enqueue"] = enqueue_latency(redis_url, options)
    envelopes = envelopes_for(max(options.messages, options.remote_messages))
    result["distances"] = [at_distance(redis_url, sink, rtt, envelopes, options) for rtt in options.rtts_ms]
    return result


def us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:,.0f} µs"


def times(value: float | None) -> str:
    return "-" if value is None else ratio(value)


def render_distance(distance: dict[str, Any], sink: str) -> str:
    rows = [[LABELS[key], f"{row['messages']:,}", rate(row["per_second"]), times(row["vs_smtplib"]),
             times(row["vs_peer"]), us(row["cpu_per_message"]),
             "-" if row["cpu_busy"] is None else f"{row['cpu_busy']:.0%}",
             "-" if row["idle_cpu_per_second"] is None else f"{row['idle_cpu_per_second']:.1%}"]
            for key, row in distance["rows"].items()]
    return table(f"(e) relay at RTT {distance['rtt_ms']:g} ms ({sink}): enqueue to accepted",
                 ["contender", "messages", "messages/s", "vs smtplib loop", "vs peer's best", "CPU/message",
                  "CPUs busy", "idle worker CPU"], rows)


def render_enqueue(enqueue: dict[str, Any]) -> str:
    labels = {"ping": "redis-py PING", "mailqueue": "send_mail, mailqueue queue backend",
              "peer": "send_mail, django-celery-email", "peer_ping": "redis-py PING (in the peer's process)"}
    floor = enqueue["ping"]["p50_seconds"]
    rows = [[labels[kind], f"{entry['p50_seconds'] * 1000:.3f} ms", f"{entry['p99_seconds'] * 1000:.3f} ms",
             ratio(entry["p50_seconds"] / floor), str(entry["count"])] for kind, entry in enqueue.items()]
    return table("(e) enqueue latency, in alternating blocks", ["call", "p50", "p99", "p50 / PING p50", "samples"],
                 rows)


def targets(result: dict[str, Any]) -> list[tuple[str, float | None, float, bool]]:
    """(what, measured, target, higher is better) for issue 12's targets, where measurable."""
    found: list[tuple[str, float | None, float, bool]] = []
    for distance in result["distances"]:
        rows, rtt = distance["rows"], distance["rtt_ms"]
        ours = max((row for key, row in rows.items() if key.startswith("mailqueue-")), key=lambda r: r["per_second"])
        if rtt > 0:
            found += [(f"RTT {rtt:g} ms: mailqueue's best, messages/s", ours["per_second"], 600.0, True),
                      (f"RTT {rtt:g} ms: x the peer's best", ours["vs_peer"], 4.0, True),
                      (f"RTT {rtt:g} ms: x the smtplib loop", ours["vs_smtplib"], 50.0, True)]
        else:
            cpu = min(row["cpu_per_message"] for key, row in rows.items() if key.startswith("mailqueue-"))
            found += [("RTT 0: x the smtplib loop", ours["vs_smtplib"], 1.0, True),
                      ("RTT 0: x the peer's best", ours["vs_peer"], 2.0, True),
                      ("RTT 0: worker CPU per message (µs, mailqueue's lowest)", cpu * 1e6, 150.0, False)]
    enqueue = result["enqueue"]
    mailqueue_p50 = enqueue["mailqueue"]["p50_seconds"]
    found.append(("enqueue p50 / PING p50", mailqueue_p50 / enqueue["ping"]["p50_seconds"], 3.0, False))
    found.append(("enqueue p50 / the peer's p50",
                  mailqueue_p50 / enqueue["peer"]["p50_seconds"] if "peer" in enqueue else None, 0.5, False))
    return found


def render(result: dict[str, Any]) -> str:
    source = result["source"]
    note = f"commit {source['commit']}" + (", with uncommitted changes in mailqueue/ or workers/"
                                           if source["uncommitted"] else "")
    parts = [render_enqueue(result["enqueue"]), *(render_distance(d, result["sink"]) for d in result["distances"])]
    rows = [[what, "-" if value is None else f"{value:,.2f}", f"{'>=' if higher else '<='} {goal:g}",
             "-" if value is None else ("met" if (value >= goal if higher else value <= goal) else "missed")]
            for what, value, goal, higher in targets(result)]
    parts.append(table(f"(e) issue 12's targets ({note})", ["target", "measured", "goal", ""], rows))
    return "\n".join(parts)
