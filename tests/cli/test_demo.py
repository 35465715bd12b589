"""``mailqueue demo``: the first thing a newcomer runs must work, fast, and leave nothing running."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from mailqueue.devserver import free_port
from tests.cli.conftest import Run


def figure(output: str, label: str) -> int:
    match = re.search(rf"^{label}:\s+(\d+)", output, re.M)
    assert match, f"no {label} line in:\n{output}"
    return int(match.group(1))


def worker_pid(stderr: str) -> int:
    match = re.search(r"^Worker: pid (\d+)", stderr, re.M)
    assert match, stderr
    return int(match.group(1))


def test_demo_delivers_hundreds_of_messages_and_cleans_up(mailqueue: Run, tmp_path: Path) -> None:
    started = time.monotonic()
    # Nothing configured: the default data folder, relative to the working directory.
    result = mailqueue("demo", env={"MAILQUEUE_DATA_DIR": "var/mailqueue"}, timeout=90)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 45
    delivered, failed = figure(result.stdout, "Delivered"), figure(result.stdout, "Failed")
    assert figure(result.stdout, "Messages") == delivered + failed == 300
    assert 0 < failed < 30  # the bouncing recipients, and only them
    assert figure(result.stdout, "Retried") > 0  # the greylisted ones
    assert re.search(r"^Throughput: \d+ messages/s end to end", result.stdout, re.M)
    assert "Delivering [##############################]   300/300 100%" in result.stderr
    assert (tmp_path / "var" / "mailqueue" / "appendonly.aof").exists()
    try:
        os.kill(worker_pid(result.stderr), 0)
        raise AssertionError("the demo's worker is still running")
    except ProcessLookupError:
        pass
    assert mailqueue("embedded", "status", env={"MAILQUEUE_DATA_DIR": "var/mailqueue"}).returncode == 3


def test_demo_ignores_configured_settings_and_keeps_a_running_broker(mailqueue: Run) -> None:
    elsewhere = {
        "MAILQUEUE_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        "EMAIL_HOST": "smtp.invalid", "EMAIL_USE_TLS": "true", "MAILQUEUE_SETTINGS": "config.production_example",
    }
    mailqueue("embedded", "start")
    try:
        result = mailqueue("demo", "--messages", "20", env=elsewhere)
        assert result.returncode == 0, result.stderr
        assert figure(result.stdout, "Delivered") + figure(result.stdout, "Failed") == 20
        assert mailqueue("embedded", "status").returncode == 0  # running before, so left running
    finally:
        mailqueue("embedded", "stop")


def test_demo_timeout_is_one_clear_line(mailqueue: Run) -> None:
    result = mailqueue("demo", "--messages", "1000", "--timeout", "2")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("mailqueue: error: the demo")
    assert "Traceback" not in result.stderr
    assert mailqueue("embedded", "status").returncode == 3


def test_demo_says_where_its_dead_letters_are_and_the_command_finds_them(mailqueue: Run) -> None:
    try:
        result = mailqueue("demo", "--keep-broker", timeout=90)
        assert result.returncode == 0, result.stderr
        kept = int(re.search(r"(\d+) dead letter\(s\) kept", result.stdout).group(1))  # type: ignore[union-attr]
        command = re.search(r"`MAILQUEUE_BROKER_URL=(\S+) mailqueue dead list`", result.stdout)
        assert kept > 0 and command is not None, result.stdout
        assert "counts transactions" in result.stdout  # why the server's count is not the messages'
        listed = mailqueue("dead", "list", "--json", env={"MAILQUEUE_BROKER_URL": command.group(1)})
        assert len(json.loads(listed.stdout)) == kept
    finally:
        mailqueue("embedded", "stop")
