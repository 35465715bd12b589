"""The embedded broker: one real redis-server per data folder (by default one per user), shared by every process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from mailqueue.conf import override_settings
from mailqueue.queue.embedded import (
    PORT_FILE,
    data_dir_path,
    default_data_dir,
    embedded_status,
    ensure_embedded_redis,
    stop_embedded_redis,
)

ENSURE_IN_CHILD = "import sys; from mailqueue.queue.embedded import ensure_embedded_redis as e; print(e(sys.argv[1]))"


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[str]:
    folder = str(tmp_path / "data")
    try:
        yield folder
    finally:
        stop_embedded_redis(folder)


def run_id(url: str) -> str:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return str(client.info("server")["run_id"])
    finally:
        client.close()


def test_starts_a_real_redis_with_aof_and_noeviction(data_dir: str) -> None:
    client = redis.Redis.from_url(ensure_embedded_redis(data_dir), decode_responses=True)
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert client.info("server")["redis_version"].startswith(("6.", "7."))
    client.close()


def test_url_is_localhost_tcp_for_kombu_and_redis_py(data_dir: str) -> None:
    parts = urlsplit(ensure_embedded_redis(data_dir))
    assert (parts.scheme, parts.hostname, parts.path) == ("redis", "127.0.0.1", "/0")


def test_data_is_written_under_the_data_dir(data_dir: str) -> None:
    client = redis.Redis.from_url(ensure_embedded_redis(data_dir))
    client.set("kept", "yes")
    client.close()
    assert (Path(data_dir) / "appendonly.aof").exists()
    assert (Path(data_dir) / PORT_FILE).exists()


def test_another_process_reuses_the_running_server(data_dir: str) -> None:
    url = ensure_embedded_redis(data_dir)
    child = subprocess.run([sys.executable, "-c", ENSURE_IN_CHILD, data_dir], capture_output=True, text=True,
                           check=True)
    assert child.stdout.strip() == url


def test_racing_processes_start_a_single_server(data_dir: str) -> None:
    children = [
        subprocess.Popen([sys.executable, "-c", ENSURE_IN_CHILD, data_dir], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    urls = {child.communicate(timeout=30)[0].strip() for child in children}
    assert len(urls) == 1
    assert urls == {ensure_embedded_redis(data_dir)}


def test_data_survives_stop_and_restart(data_dir: str) -> None:
    client = redis.Redis.from_url(ensure_embedded_redis(data_dir))
    client.set("survivor", "1")
    client.close()
    assert stop_embedded_redis(data_dir) is True
    assert embedded_status(data_dir).url is None
    restarted = redis.Redis.from_url(ensure_embedded_redis(data_dir))
    assert restarted.get("survivor") == b"1"
    restarted.close()


def test_restart_reuses_the_previous_port(data_dir: str) -> None:
    first = ensure_embedded_redis(data_dir)
    old_run = run_id(first)
    stop_embedded_redis(data_dir)
    second = ensure_embedded_redis(data_dir)
    assert second == first
    assert run_id(second) != old_run


def test_stop_when_not_running_returns_false(data_dir: str) -> None:
    assert stop_embedded_redis(data_dir) is False


def test_a_stranger_on_the_recorded_port_is_not_used(data_dir: str, redis_server: str) -> None:
    stranger_port = urlsplit(redis_server).port
    Path(data_dir).mkdir(parents=True)
    (Path(data_dir) / PORT_FILE).write_text(f"{stranger_port}\n")
    url = ensure_embedded_redis(data_dir)
    assert urlsplit(url).port != stranger_port


def test_relative_data_dir_is_resolved_against_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with override_settings(MAILQUEUE_DATA_DIR="var/mq"):
        try:
            ensure_embedded_redis()
            status = embedded_status()
            assert status.data_dir == tmp_path.resolve() / "var" / "mq"
            assert status.url is not None and status.pid is not None
        finally:
            stop_embedded_redis()


ENSURE_DEFAULT_IN_CHILD = "from mailqueue.queue.embedded import ensure_embedded_redis as e; print(e())"


def environment_without_settings(**values: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("MAILQUEUE_", "EMAIL_", "XDG_DATA_HOME"))}
    return env | values


def test_the_default_data_dir_is_one_per_user_whatever_the_current_directory(tmp_path: Path) -> None:
    """Commands run from two folders, with nothing configured, must reach one server (the
    default used to be var/mailqueue under the current directory: two servers, two queues)."""
    env = environment_without_settings(XDG_DATA_HOME=str(tmp_path / "xdg"))
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere").mkdir()
    try:
        urls = [
            subprocess.run([sys.executable, "-c", ENSURE_DEFAULT_IN_CHILD], capture_output=True, text=True,
                           check=True, cwd=tmp_path / folder, env=env, timeout=30).stdout.strip()
            for folder in ("project", "elsewhere")
        ]
        assert urls[0] == urls[1]
        assert (tmp_path / "xdg" / "mailqueue" / PORT_FILE).exists()
        assert not (tmp_path / "project" / "var").exists()
    finally:
        stop_embedded_redis(str(tmp_path / "xdg" / "mailqueue"))


def test_empty_data_dir_setting_means_the_per_user_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with override_settings(MAILQUEUE_DATA_DIR=""):
        assert data_dir_path() == (tmp_path / "xdg" / "mailqueue").resolve()
        assert embedded_status().data_dir == (tmp_path / "xdg" / "mailqueue").resolve()


def test_without_xdg_data_home_the_folder_is_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for xdg in (None, "relative/ignored"):  # a relative XDG_DATA_HOME is invalid: ignored, as the spec says
        if xdg is None:
            monkeypatch.delenv("XDG_DATA_HOME", raising=False)
        else:
            monkeypatch.setenv("XDG_DATA_HOME", xdg)
        assert default_data_dir() == (tmp_path / "home" / ".local" / "share" / "mailqueue").resolve()


def test_the_default_setting_is_empty_and_documented() -> None:
    from mailqueue.defaults import SETTINGS

    setting = SETTINGS["MAILQUEUE_DATA_DIR"]
    assert setting.default == ""
    assert "~/.local/share/mailqueue" in setting.doc and "XDG_DATA_HOME" in setting.doc


def test_broker_url_falls_back_to_the_embedded_server(data_dir: str) -> None:
    from mailqueue.queue.broker import broker_url

    with override_settings(MAILQUEUE_BROKER_URL="", MAILQUEUE_DATA_DIR=data_dir):
        assert broker_url() == ensure_embedded_redis(data_dir)


def test_a_stopped_server_is_restarted_by_the_next_check(data_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import mailqueue.queue.embedded as embedded

    url = ensure_embedded_redis(data_dir)
    redis.Redis.from_url(url).shutdown(nosave=True)  # stopped behind this process's back
    monkeypatch.setattr(embedded, "RECHECK_SECONDS", 0.0)
    restarted = ensure_embedded_redis(data_dir)
    assert redis.Redis.from_url(restarted).ping()


def test_a_server_slow_to_answer_is_waited_for_not_duplicated(
    data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mailqueue.queue.embedded as embedded

    url = ensure_embedded_redis(data_dir)
    first_run = run_id(url)
    pid = int((Path(data_dir) / "redis.pid").read_text())
    monkeypatch.setattr(embedded, "PROBE_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(embedded, "_known_urls", {})  # as a new process would
    os.kill(pid, signal.SIGSTOP)  # alive, listening, but not answering
    resume = threading.Timer(1.0, os.kill, (pid, signal.SIGCONT))
    resume.start()
    try:
        assert ensure_embedded_redis(data_dir) == url
    finally:
        resume.join()
    assert run_id(url) == first_run


def test_a_second_server_beside_the_default_one_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    default = str(tmp_path / "xdg" / "mailqueue")
    other = str(tmp_path / "project" / "var" / "mailqueue")
    try:
        with caplog.at_level("WARNING", logger="mailqueue.queue.embedded"):
            ensure_embedded_redis(default)
            assert not caplog.records  # the first one, and the default: nothing to say
            ensure_embedded_redis(other)
        assert len(caplog.records) == 1
        message = caplog.records[0].getMessage()
        assert "second embedded Redis" in message and other in message and default in message
        caplog.clear()
        with caplog.at_level("WARNING", logger="mailqueue.queue.embedded"):
            ensure_embedded_redis(other)  # already running: reused, no new warning
        assert not caplog.records
    finally:
        stop_embedded_redis(other)
        stop_embedded_redis(default)


def test_no_warning_without_a_default_server(data_dir: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="mailqueue.queue.embedded"):
        ensure_embedded_redis(data_dir)
    assert not caplog.records
