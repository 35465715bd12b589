"""What every command shares: --help, one-line usage errors, --settings, --version."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import MAILQUEUE, Run, assert_one_line_error, clean_environment

COMMANDS = ["worker", "send", "status", "stats", "dead", "devserver", "demo", "embedded", "settings"]


def test_top_level_help_lists_every_command(mailqueue: Run) -> None:
    result = mailqueue("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert f"    {command} " in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(mailqueue: Run, command: str) -> None:
    result = mailqueue(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: mailqueue {command}")


@pytest.mark.parametrize("action", ["list", "show", "requeue", "purge"])
def test_every_dead_letter_action_has_help(mailqueue: Run, action: str) -> None:
    result = mailqueue("dead", action, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: mailqueue dead {action}")


def test_version(mailqueue: Run) -> None:
    result = mailqueue("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("mailqueue ")


def test_unknown_command_is_a_one_line_usage_error(mailqueue: Run) -> None:
    line = assert_one_line_error(mailqueue("frobnicate"), status=2)
    assert "invalid choice: 'frobnicate'" in line


def test_unknown_option_names_the_command(mailqueue: Run) -> None:
    line = assert_one_line_error(mailqueue("stats", "--bogus"), status=2)
    assert line.startswith("mailqueue stats: error: unrecognized arguments: --bogus")


def test_missing_command_is_a_usage_error(mailqueue: Run) -> None:
    assert_one_line_error(mailqueue(), status=2)


def test_unimportable_settings_module_is_one_line(mailqueue: Run) -> None:
    line = assert_one_line_error(mailqueue("--settings", "no.such.settings", "settings"))
    assert "MAILQUEUE_SETTINGS='no.such.settings' cannot be imported" in line


def test_malformed_environment_setting_is_one_line(mailqueue: Run) -> None:
    line = assert_one_line_error(mailqueue("send", "--to", "bob@example.com", env={"EMAIL_PORT": "twenty-five"}))
    assert "EMAIL_PORT" in line


def test_a_broken_pipe_is_not_reported(mailqueue: Run, tmp_path: Path) -> None:
    """`mailqueue settings --json | head -1`: the reader leaves early, and that is not an error."""
    command = f"{shlex.quote(MAILQUEUE)} settings --json | head -1; exit ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30,
                            cwd=tmp_path, env=clean_environment())
    assert result.stdout == "{\n"
    assert result.stderr == ""
    assert result.returncode == 141
