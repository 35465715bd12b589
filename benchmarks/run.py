"""Run mailqueue's benchmarks: print a table and write the numbers as JSON.

    python benchmarks/run.py                 # every section (a few minutes)
    python benchmarks/run.py --quick         # a smoke run (seconds)
    python benchmarks/run.py --only build    # one section: build, enqueue, fleet, memory

Sections: (a) build, (b) enqueue latency against a Redis PING and a direct SMTP send,
(c) fleet throughput with 1, 2 and 4 worker processes against a bare smtplib loop,
(d) memory per worker process and payload bytes per message. See BENCHMARKS.md.
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

SECTIONS = ("build", "enqueue", "fleet", "memory")
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
    return parser.parse_args(argv)


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

        live.run(results, needs_servers, quick=args.quick, redis_url=args.redis_url)
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
