"""Settings, read when used, from three sources (lowest priority first):

1. the defaults in ``mailqueue.defaults``;
2. the UPPERCASE names of the module named by ``MAILQUEUE_SETTINGS`` (like DJANGO_SETTINGS_MODULE);
3. environment variables named exactly like the setting, parsed to the setting's type.

``override_settings`` sits on top of all three, for tests.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mailqueue.defaults import SETTINGS, Setting
from mailqueue.exceptions import ImproperlyConfigured

SETTINGS_MODULE_VARIABLE = "MAILQUEUE_SETTINGS"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_env_value(name: str, raw: str, setting: Setting) -> Any:
    """Turn an environment variable into the setting's type, or say which variable is wrong."""
    kind = setting.type
    if raw == "" and setting.default is None:
        return None
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in _TRUE | _FALSE:
                return lowered in _TRUE
            raise ValueError("expected one of true/false, 1/0, yes/no, on/off")
        if kind is dict:
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError("expected a JSON object")
            return value
        if kind is list:
            if raw.lstrip().startswith("["):
                value = json.loads(raw)
                if not isinstance(value, list):
                    raise ValueError("expected a JSON list")
                return value
            return [item.strip() for item in raw.split(",") if item.strip()]
        return kind(raw)
    except ValueError as error:
        raise ImproperlyConfigured(
            f"Environment variable {name}={raw!r} is not a valid {kind.__name__}: {error}"
        ) from None


class Settings:
    """Attribute access to the current value of every setting in ``mailqueue.defaults``."""

    def __init__(self) -> None:
        self._overrides: list[dict[str, Any]] = []
        self._source: Any = None  # an object read in place of the MAILQUEUE_SETTINGS module

    def read_from(self, source: Any) -> None:
        """Read settings from ``source``'s attributes (e.g. ``django.conf.settings``) instead of
        the MAILQUEUE_SETTINGS module; ``None`` goes back to the module."""
        self._source = source

    def __getattr__(self, name: str) -> Any:
        setting = SETTINGS.get(name)
        if setting is None:
            raise AttributeError(f"mailqueue has no setting named {name!r}")
        for layer in reversed(self._overrides):
            if name in layer:
                return layer[name]
        raw = os.environ.get(name)
        if raw is not None:
            return parse_env_value(name, raw, setting)
        source = self._source if self._source is not None else self.settings_module()
        if source is not None and hasattr(source, name):
            return getattr(source, name)
        return setting.default

    def is_set(self, name: str) -> bool:
        """True if ``name`` comes from somewhere other than its default (an override, the
        environment, the settings module or Django's settings): Django's ``is_overridden``."""
        if any(name in layer for layer in self._overrides) or name in os.environ:
            return True
        source = self._source if self._source is not None else self.settings_module()
        if source is None:
            return False
        is_overridden = getattr(source, "is_overridden", None)
        if callable(is_overridden):  # django.conf.settings: its defaults are not "set"
            return hasattr(source, name) and bool(is_overridden(name))
        return hasattr(source, name)

    def settings_module(self) -> ModuleType | None:
        path = os.environ.get(SETTINGS_MODULE_VARIABLE)
        if not path:
            return None
        try:
            return import_from_working_directory(path)
        except ImportError as error:
            raise ImproperlyConfigured(
                f"{SETTINGS_MODULE_VARIABLE}={path!r} cannot be imported: {error}"
            ) from error

    def as_dict(self) -> dict[str, Any]:
        """Every setting's current value, for display: secrets masked, also inside URLs."""
        return {name: masked(name, getattr(self, name)) for name in SETTINGS}


MASK = "********"  # a secret setting
URL_MASK = "****"  # the password inside a URL


def import_from_working_directory(path: str) -> ModuleType:
    """Import ``path``, also from the current folder, as ``celery -A`` and ``python -m`` resolve it.

    ``celery -A workers worker`` puts the current folder on sys.path only while it imports the
    app; our settings are read later, when the app first reads its configuration.
    """
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as error:
        folder = os.getcwd()
        if error.name != path.split(".")[0] or folder in sys.path or "" in sys.path:
            raise
        sys.path.append(folder)
        return importlib.import_module(path)


def _is_secret(name: str) -> bool:
    return "PASSWORD" in name or name == "MAILQUEUE_SIGNING_KEY"


def masked(name: str, value: Any) -> Any:
    """A setting's value as it may be shown: a secret setting masked, a URL's password masked."""
    if _is_secret(name) and value:
        return MASK
    if isinstance(value, str) and "://" in value:
        return redacted(value)
    if isinstance(value, dict):  # MAILERS' OPTIONS, MAILQUEUE_RELAYS: passwords inside
        return {key: masked(str(key).upper(), item) for key, item in value.items()}
    return value


def redacted(url: str) -> str:
    """The URL with its password masked (``user:password@`` and ``?password=``), for display and logs."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{URL_MASK}@{host}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key.lower() == "password" for key, _ in pairs):
        query = urlencode([(key, URL_MASK if key.lower() == "password" else value) for key, value in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


settings = Settings()


class override_settings(contextlib.ContextDecorator):  # noqa: N801 - named like Django's helper
    """Temporarily replace settings; a context manager and a decorator.

    >>> with override_settings(EMAIL_PORT=2525): ...
    """

    def __init__(self, **values: Any) -> None:
        unknown = sorted(set(values) - set(SETTINGS))
        if unknown:
            raise ImproperlyConfigured(f"override_settings() got unknown settings: {', '.join(unknown)}")
        self.values = values

    def __enter__(self) -> override_settings:
        settings._overrides.append(self.values)
        return self

    def __exit__(self, *exc_info: object) -> None:
        settings._overrides.remove(self.values)
