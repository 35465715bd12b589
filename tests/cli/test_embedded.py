"""``mailqueue embedded start|status|stop``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis

from tests.cli.conftest import MAILQUEUE, Run


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


def test_with_nothing_configured_every_folder_reaches_the_same_server(cli_env: dict[str, str], tmp_path: Path) -> None:
    """`mailqueue embedded start` from two folders: one per-user server, not one per folder."""
    env = {name: value for name, value in cli_env.items() if name not in ("MAILQUEUE_DATA_DIR", "XDG_DATA_HOME")}
    env["HOME"] = str(tmp_path / "home")  # never the real user's home
    per_user = tmp_path / "home" / ".local" / "share" / "mailqueue"
    outputs = []
    try:
        for folder in ("app", "elsewhere"):
            (tmp_path / folder).mkdir()
            started = subprocess.run([MAILQUEUE, "embedded", "start"], capture_output=True, text=True, env=env,
                                     cwd=tmp_path / folder, timeout=30)
            assert started.returncode == 0, started.stderr
            outputs.append(started.stdout)
        assert outputs[0] == outputs[1]
        status = subprocess.run([MAILQUEUE, "embedded", "status"], capture_output=True, text=True, env=env,
                                cwd=tmp_path, timeout=30)
        assert f"data folder: {per_user.resolve()}" in status.stdout
        assert status.returncode == 0
        second = subprocess.run([MAILQUEUE, "embedded", "start", "--data-dir", "var/other"], capture_output=True,
                                text=True, env=env, cwd=tmp_path, timeout=30)
        assert second.returncode == 0, second.stderr
        assert "Starting a second embedded Redis" in second.stderr  # said, not silent
        assert str(per_user.resolve()) in second.stderr
    finally:
        for where in ([], ["--data-dir", "var/other"]):
            subprocess.run([MAILQUEUE, "embedded", "stop", *where], env=env, cwd=tmp_path, timeout=30,
                           capture_output=True)
