"""The settings profiles in config/: each imports, and sets only real settings of the right type."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from mailqueue.conf import settings
from mailqueue.defaults import SETTINGS
from mailqueue.loading import import_string

PROFILES = ["config.local", "config.docker", "config.test", "config.production_example"]


def uppercase_names(module: ModuleType) -> dict[str, object]:
    return {name: getattr(module, name) for name in dir(module) if name.isupper()}


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_sets_only_known_settings_of_the_right_type(profile: str) -> None:
    values = uppercase_names(importlib.import_module(profile))
    assert values
    for name, value in values.items():
        assert name in SETTINGS, f"{profile}.{name} is not a mailqueue setting"
        expected = SETTINGS[name].type
        assert value is None or isinstance(value, expected) or (expected is float and isinstance(value, int)), name


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_backends_import(profile: str) -> None:
    values = uppercase_names(importlib.import_module(profile))
    for name in ("EMAIL_BACKEND", "MAILQUEUE_DELIVERY_BACKEND"):
        if name in values:
            import_string(str(values[name]), setting=name)


def test_local_profile_uses_the_embedded_broker_and_the_devserver() -> None:
    from mailqueue.devserver import DEFAULT_PORT

    local = importlib.import_module("config.local")
    assert local.MAILQUEUE_BROKER_URL == ""
    assert (local.EMAIL_HOST, local.EMAIL_PORT) == ("127.0.0.1", DEFAULT_PORT)
    assert local.EMAIL_BACKEND == "mailqueue.backends.queue.EmailBackend"


def test_test_profile_keeps_mail_in_memory() -> None:
    assert importlib.import_module("config.test").EMAIL_BACKEND == "mailqueue.backends.locmem.EmailBackend"


def test_production_example_reads_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_HOST_PASSWORD", "from-the-environment")
    module = importlib.reload(importlib.import_module("config.production_example"))
    assert module.EMAIL_HOST_PASSWORD == "from-the-environment"


def test_profile_is_read_through_mailqueue_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILQUEUE_SETTINGS", "config.docker")
    for name in ("EMAIL_HOST", "MAILQUEUE_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    assert settings.EMAIL_HOST == "devsmtp"
    assert settings.MAILQUEUE_BROKER_URL == "redis://redis:6379/0"
