"""``mailqueue embedded start|status|stop``."""

from __future__ import annotations

from pathlib import Path

import redis

from tests.cli.conftest import Run


def test_start_status_stop(mailqueue: Run, tmp_path: Path) -> None:
    assert mailqueue("embedded", "status").returncode == 3
    started = mailqueue("embedded", "start")
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    assert redis.Redis.from_url(url).ping()
    status = mailqueue("embedded", "status")
    assert status.returncode == 0
    assert f"running: {url}" in status.stdout
    assert str(tmp_path / "var") in status.stdout
    stopped = mailqueue("embedded", "stop")
    assert "stopped" in stopped.stdout
    assert mailqueue("embedded", "status").stdout.strip().endswith("not running")


def test_start_twice_gives_the_same_server(mailqueue: Run) -> None:
    try:
        first = mailqueue("embedded", "start").stdout
        assert mailqueue("embedded", "start").stdout == first
    finally:
        mailqueue("embedded", "stop")


def test_data_dir_option_overrides_the_setting(mailqueue: Run, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    try:
        mailqueue("embedded", "start", "--data-dir", str(other))
        assert (other / "appendonly.aof").exists()
        assert mailqueue("embedded", "status").returncode == 3
    finally:
        mailqueue("embedded", "stop", "--data-dir", str(other))


def test_stop_when_not_running(mailqueue: Run) -> None:
    result = mailqueue("embedded", "stop")
    assert (result.returncode, result.stdout.strip()) == (0, "not running")
