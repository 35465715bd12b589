"""A TCP proxy that puts a relay "far away": every chunk arrives a fixed delay after it was sent.

    python -m benchmarks.latency UPSTREAM_PORT RTT_MS     # prints "listening PORT"

Each direction forwards what it reads one-way delay (RTT/2) later, in order. Chunks are
stamped when read and written at their stamp: many are in flight at once, so a pipelined
client pays one RTT for a whole group, as over a real network, where a proxy that slept
per chunk would serialise it. The proxy also counts round trips per connection (a client
chunk that follows server data), so tests can show pipelining by counting, not timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

READ_SIZE = 256 * 1024


@dataclass
class Turns:
    """Round trips of one connection: the client speaking again after the server spoke."""

    round_trips: int = 0
    server_spoke: bool = False

    def client_chunk(self) -> None:
        if self.server_spoke:
            self.round_trips += 1
            self.server_spoke = False

    def server_chunk(self) -> None:
        self.server_spoke = True


@dataclass
class LatencyProxy:
    """The proxy, in an asyncio loop of its own: ``start()`` in a thread, or ``serve()``."""

    upstream_port: int
    rtt_seconds: float
    host: str = "127.0.0.1"
    port: int = 0
    connections: list[Turns] = field(default_factory=list)

    async def serve(self, ready: threading.Event | None = None) -> None:
        server = await asyncio.start_server(self._connection, self.host, self.port)
        self.port = server.sockets[0].getsockname()[1]
        if ready is not None:
            ready.set()
        async with server:
            await server.serve_forever()

    def start(self) -> LatencyProxy:
        """Serve from a daemon thread (for tests); returns once it listens."""
        ready = threading.Event()
        threading.Thread(target=asyncio.run, args=(self.serve(ready),), daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("the latency proxy did not start listening within 10 s")
        return self

    @property
    def round_trips(self) -> int:
        return sum(turns.round_trips for turns in self.connections)

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            client_writer.close()
            return
        turns = Turns()
        self.connections.append(turns)
        await asyncio.gather(self._direction(client_reader, server_writer, turns.client_chunk),
                             self._direction(server_reader, client_writer, turns.server_chunk))
        for writer in (server_writer, client_writer):
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()

    async def _direction(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         note: Callable[[], None]) -> None:
        """Read chunks as they come, stamp them, and let a writer task send each at its stamp."""
        loop = asyncio.get_running_loop()
        in_flight: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send_at_stamps(in_flight, writer))
        try:
            while chunk := await reader.read(READ_SIZE):
                note()
                in_flight.put_nowait((loop.time() + self.rtt_seconds / 2, chunk))
        except (ConnectionError, OSError):
            pass
        in_flight.put_nowait((loop.time() + self.rtt_seconds / 2, b""))  # the end, delayed like the rest
        await sender

    @staticmethod
    async def _send_at_stamps(in_flight: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, chunk = await in_flight.get()
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)  # only until this chunk's stamp: later ones are already in flight
                if not chunk:  # the sender is done: pass its half-close on, keep the other way open
                    writer.write_eof()
                    break
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass


@contextlib.contextmanager
def latency(upstream_port: int, rtt_ms: float) -> Iterator[int]:
    """The port to send to for a relay ``rtt_ms`` away: the upstream itself at 0, else a
    proxy in a process of its own (so it takes no GIL from what is measured)."""
    if rtt_ms <= 0:
        yield upstream_port
        return
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.latency", str(upstream_port), str(rtt_ms)],
                               stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1])
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        if not line.startswith("listening "):
            raise RuntimeError(f"the latency proxy did not start (it said {line!r})")
        yield int(line.split()[1])
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    proxy = LatencyProxy(int(sys.argv[1]), float(sys.argv[2]) / 1000)

    async def serve() -> None:
        ready = threading.Event()
        task = asyncio.create_task(proxy.serve(ready))
        while not ready.is_set():
            await asyncio.sleep(0.01)
        print(f"listening {proxy.port}", flush=True)
        await task

    asyncio.run(serve())


if __name__ == "__main__":
    main()
