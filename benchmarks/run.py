"""Run mailqueue's benchmarks: print a table and write the numbers as JSON.

    python benchmarks/run.py                 # every section (a few minutes)
    python benchmarks/run.py --quick         # a smoke run (seconds)
    python benchmarks/run.py --only build    # one section: build, enqueue, fleet, memory, relay
    python benchmarks/run.py --only relay --messages 3000 --rtt-ms 0 20

Sections: (a) build, (b) enqueue latency against a Redis PING and a direct SMTP send,
(c) fleet throughput with 1, 2 and 4 worker processes against a bare smtplib loop,
(d) memory per worker process and payload bytes per message, (e) relay: mailqueue and
django-celery-email side by side, near and far (a latency proxy), against the smtplib and
pipelined loops, with worker CPU per message. The peer's venv (benchmarks/.peer-venv, from
PyPI) is made by the first full run with the relay section, or by --setup-peer; --quick
uses it only if it is there. See BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` and ``mailqueue`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks import machine  # noqa: E402

SECTIONS = ("build", "enqueue", "fleet", "memory", "relay")
RESULTS = ROOT / "benchmarks" / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few iterations: a smoke run, not a measurement")
    parser.add_argument("--only", action="append", choices=SECTIONS, metavar="SECTION",
                        help=f"run only this section (repeatable): {', '.join(SECTIONS)}")
    parser.add_argument("--redis-url", help="an existing Redis to use, on a database of its own "
                        "(default: start a private redis-server)")
    parser.add_argument("--json", type=Path, help="where to write the results "
                        "(default: benchmarks/results/<time>.json)")
    relay = parser.add_argument_group("relay section")
    relay.add_argument("--messages", type=int, help="messages per contender at RTT 0 (default 3000; quick 100)")
    relay.add_argument("--remote-messages", type=int,
                       help="messages per fleet behind the proxy; the loops send an eighth (default 1600; quick 40)")
    relay.add_argument("--rtt-ms", type=float, nargs="+", default=[0.0, 20.0], metavar="MS",
                       help="relay round-trip times to measure at (default: 0 20; 0 is the sink itself)")
    relay.add_argument("--peer-chunk-size", type=int, default=10,
                       help="django-celery-email's CELERY_EMAIL_CHUNK_SIZE (default: its own default, 10)")
    relay.add_argument("--worker-setting", action="append", default=[], metavar="NAME=VALUE",
                       help="a setting for mailqueue's workers in this section (repeatable)")
    peer = relay.add_mutually_exclusive_group()
    peer.add_argument("--setup-peer", action="store_true", help="make the peer's venv if missing, even with --quick")
    peer.add_argument("--no-peer", action="store_true", help="leave django-celery-email out")
    return parser.parse_args(argv)


def relay_options(args: argparse.Namespace) -> Any:
    from benchmarks.peer import venv
    from benchmarks.relay import RelayOptions

    if args.no_peer:
        python = None
    elif args.setup_peer or not args.quick:
        if venv.ready() is None:
            print("peer: making benchmarks/.peer-venv (once; needs PyPI)", flush=True)
        python = venv.setup()
    else:
        python = venv.ready()
    settings = dict(item.split("=", 1) for item in args.worker_setting)
    options = RelayOptions(peer_python=python, rtts_ms=args.rtt_ms, peer_chunk_size=args.peer_chunk_size,
                           worker_settings=settings)
    options.messages = args.messages or (100 if args.quick else options.messages)
    options.remote_messages = args.remote_messages or (40 if args.quick else options.remote_messages)
    if args.quick:
        options.enqueue_blocks, options.enqueue_per_block, options.idle_seconds = 3, 20, 0.2
    return options


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sections = args.only or list(SECTIONS)
    results: dict[str, Any] = {"machine": machine.describe(), "quick": args.quick,
                               "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    print(describe_machine(results["machine"]), flush=True)
    if "build" in sections:
        from benchmarks import build

        results["build"] = build.run(quick=args.quick)
        print(build.render(results["build"]), flush=True)
    needs_servers = [section for section in sections if section != "build"]
    if needs_servers:
        from benchmarks import live

        relay = relay_options(args) if "relay" in sections else None
        live.run(results, needs_servers, quick=args.quick, redis_url=args.redis_url, relay=relay)
    path = args.json or RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"results written to {path}")
    return 0


def describe_machine(info: dict[str, Any]) -> str:
    versions = ", ".join(f"{name} {version}" for name, version in info["versions"].items() if version)
    return f"machine: {info['cpu']}, {info['cores']} cores, {info['platform']}\nsoftware: {versions}\n"


if __name__ == "__main__":
    sys.exit(main())
