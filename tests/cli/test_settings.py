"""``mailqueue settings``: the values a process sees, with their sources."""

from __future__ import annotations

import json
from pathlib import Path

from mailqueue.defaults import SETTINGS
from tests.cli.conftest import Run


def test_lists_every_setting_with_its_default(mailqueue: Run) -> None:
    result = mailqueue("settings")
    assert result.returncode == 0, result.stderr
    for name in SETTINGS:
        assert name in result.stdout
    assert "'mailqueue.backends.smtp.EmailBackend'" in result.stdout


def test_environment_overrides_are_marked(mailqueue: Run) -> None:
    result = mailqueue("settings", env={"EMAIL_PORT": "2525"})
    assert any(line.split()[:3] == ["EMAIL_PORT", "2525", "(env)"] for line in result.stdout.splitlines())


def test_json_masks_passwords(mailqueue: Run) -> None:
    result = mailqueue("settings", "--json", env={"EMAIL_HOST_PASSWORD": "hunter2"})
    values = json.loads(result.stdout)
    assert values["EMAIL_HOST_PASSWORD"] == "********"
    assert "hunter2" not in result.stdout


def test_settings_module_is_found_from_the_working_directory(mailqueue: Run, tmp_path: Path) -> None:
    (tmp_path / "mysite_mail.py").write_text("EMAIL_HOST = 'smtp.example.net'\n")
    result = mailqueue("--settings", "mysite_mail", "settings", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["EMAIL_HOST"] == "smtp.example.net"


def test_repository_config_profiles_load(mailqueue: Run) -> None:
    repository = Path(__file__).resolve().parents[2]
    result = mailqueue("settings", "--json", env={"MAILQUEUE_SETTINGS": "config.test", "PYTHONPATH": str(repository)})
    assert result.returncode == 0, result.stderr


def test_table_lists_every_setting_once(mailqueue: Run) -> None:
    result = mailqueue("settings", "--table")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert rows[0] == "| Setting | Default | Meaning |"
    assert [row.split("`")[1] for row in rows[2:]] == list(SETTINGS)


def test_passwords_inside_urls_are_masked_in_text_and_json(mailqueue: Run) -> None:
    env = {"MAILQUEUE_BROKER_URL": "redis://:brokersecret@redis.internal:6379/0",
           "MAILQUEUE_RESULT_BACKEND": "redis://mq:resultsecret@redis.internal:6379/1?password=querysecret"}
    for output in (mailqueue("settings", env=env).stdout, mailqueue("settings", "--json", env=env).stdout):
        assert "redis.internal" in output
        for secret in ("brokersecret", "resultsecret", "querysecret"):
            assert secret not in output
    values = json.loads(mailqueue("settings", "--json", env=env).stdout)
    assert values["MAILQUEUE_BROKER_URL"] == "redis://:****@redis.internal:6379/0"
    assert values["MAILQUEUE_RESULT_BACKEND"] == "redis://mq:****@redis.internal:6379/1?password=****"


def test_one_bad_environment_variable_is_marked_and_the_rest_still_shown(mailqueue: Run) -> None:
    result = mailqueue("settings", env={"EMAIL_PORT": "twenty-five", "EMAIL_HOST": "smtp.example.net"})
    assert result.returncode == 1
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(lines) == set(SETTINGS)
    assert "INVALID" in lines["EMAIL_PORT"] and "twenty-five" in lines["EMAIL_PORT"]
    assert "'smtp.example.net'" in lines["EMAIL_HOST"]
    assert "EMAIL_PORT" in result.stderr
    values = json.loads(mailqueue("settings", "--json", env={"EMAIL_PORT": "twenty-five"}).stdout)
    assert "twenty-five" in values["EMAIL_PORT"]["error"] and values["EMAIL_TIMEOUT"] is None
