"""docker-compose.yml and the Dockerfile, checked without a container engine.

Each service's command must name something that exists: a console script of this project
(with arguments its parser accepts), or Celery with an importable app; the settings module
the services run with must import; and the broker must be configured not to lose mail.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from mailqueue.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def command_of(service: str) -> list[str]:
    command = SERVICES[service].get("command")
    assert isinstance(command, list), f"{service}: give the command as a list (exec form)"
    return [str(part) for part in command]


def dockerfile_env() -> dict[str, str]:
    """The ENV of the Dockerfile, continuation lines and comments included."""
    joined = re.sub(r"\\\n(\s*#.*\n)*", " ", DOCKERFILE)
    env: dict[str, str] = {}
    for line in joined.splitlines():
        if line.startswith("ENV "):
            env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return env


def settings_module_of(service: str) -> str:
    environment = SERVICES[service].get("environment") or {}
    return str(environment.get("MAILQUEUE_SETTINGS") or dockerfile_env()["MAILQUEUE_SETTINGS"])


def test_the_expected_services_exist() -> None:
    assert {"redis", "worker", "devsmtp", "flower"} <= set(SERVICES)


def test_redis_keeps_an_append_only_file_and_never_evicts() -> None:
    command = " ".join(command_of("redis"))
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert any(volume.endswith(":/data") for volume in SERVICES["redis"]["volumes"])


@pytest.mark.parametrize("service", ["worker", "devsmtp"])
def test_mailqueue_services_run_a_real_console_script_and_command(service: str) -> None:
    command = command_of(service)
    assert PYPROJECT["project"]["scripts"][command[0]] == "mailqueue.cli:main"
    args, _extra = build_parser().parse_known_args(command[1:])
    assert args.command == command[1]


def test_celery_services_load_the_workers_app() -> None:
    for service, spec in SERVICES.items():
        command = spec.get("command") or []
        if command[:1] != ["celery"]:
            continue
        app_module = command[command.index("-A") + 1]
        assert importlib.util.find_spec(f"{app_module}.app") is not None, f"{service}: no {app_module}.app"


def test_flower_is_installed_in_the_image() -> None:
    assert "flower" in command_of("flower")
    assert any(dep.startswith("flower") for dep in PYPROJECT["project"]["optional-dependencies"]["monitoring"])
    assert 'pip install ".[monitoring]"' in DOCKERFILE


@pytest.mark.parametrize("service", ["worker", "devsmtp", "flower"])
def test_services_use_a_real_settings_module(service: str) -> None:
    module_name = settings_module_of(service)
    assert module_name.startswith("config.")
    module = importlib.import_module(module_name)
    assert Path(module.__file__ or "").is_relative_to(ROOT / "config")


def test_the_image_can_import_the_settings_module() -> None:
    env = dockerfile_env()
    assert env["PYTHONPATH"] == "/app"
    assert re.search(r"^WORKDIR /app$", DOCKERFILE, re.M)
    assert re.search(r"^COPY config \./config$", DOCKERFILE, re.M)


def test_docker_settings_name_the_compose_services() -> None:
    docker = importlib.import_module("config.docker")
    assert urlsplit(docker.MAILQUEUE_BROKER_URL).hostname in SERVICES
    assert docker.EMAIL_HOST in SERVICES
    assert str(docker.EMAIL_PORT) in command_of(docker.EMAIL_HOST)


def test_workers_can_scale() -> None:
    worker = SERVICES["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_workers_wait_for_a_healthy_redis() -> None:
    assert SERVICES["worker"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "healthcheck" in SERVICES["redis"]
