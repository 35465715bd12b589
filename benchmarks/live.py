"""The sections that need real servers: one Redis and one SMTP sink shared by all of them."""

from __future__ import annotations

from typing import Any

from benchmarks import enqueue, fleet, memory, servers
from benchmarks import relay as relay_section


def run(results: dict[str, Any], sections: list[str], *, quick: bool, redis_url: str | None,
        relay: relay_section.RelayOptions | None = None) -> None:
    with servers.redis_server(redis_url) as url, servers.smtp_sink() as sink:
        print(f"servers: Redis at {url}, SMTP sink: {sink.kind} on port {sink.port}\n", flush=True)
        results["servers"] = {"redis": "private redis-server" if redis_url is None else "given", "sink": sink.kind}
        if "enqueue" in sections:
            results["enqueue"] = enqueue.run(redis_url=url, sink=sink, quick=quick)
            print(enqueue.render(results["enqueue"]), flush=True)
        if "fleet" in sections or "memory" in sections:
            results["fleet"] = fleet.run(redis_url=url, sink=sink, quick=quick or "fleet" not in sections)
            print(fleet.render(results["fleet"]), flush=True)
        if "memory" in sections:
            results["memory"] = {"workers": memory.worker_sizes(results["fleet"]),
                                 "broker": memory.broker_bytes(redis_url=url)}
            print(memory.render(results["memory"]), flush=True)
        if relay is not None:
            results["relay"] = relay_section.run(redis_url=url, sink=sink, options=relay)
            print(relay_section.render(results["relay"]), flush=True)
