"""``mailqueue.mailers``: the MAILERS setting's backends by alias, as ``django.core.mail.mailers``
(defined here, as Django defines it in ``django.core.mail.handler``).

``mailers["bulk"]`` builds a new backend each time (backends hold connections, so they are
not shared). Without a MAILERS setting the only mailer is ``default``: EMAIL_BACKEND
configured from the EMAIL_* settings, exactly as ``get_connection()`` builds it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mailqueue.backends.base import BaseEmailBackend
from mailqueue.conf import settings
from mailqueue.deprecation import DEPRECATED_EMAIL_SETTINGS, NO_DEFAULT_MAILER_WARNING, warn
from mailqueue.exceptions import ImproperlyConfigured, InvalidMailer, MailerDoesNotExist
from mailqueue.loading import import_string

__all__ = ["DEFAULT_MAILER_ALIAS", "DEFAULT_MAILER_BACKEND", "MailersHandler", "mailers"]

DEFAULT_MAILER_ALIAS = "default"
DEFAULT_MAILER_BACKEND = "mailqueue.backends.smtp.EmailBackend"  # a MAILERS entry without BACKEND


class MailersHandler:
    """Look mailers up by alias; read the setting on every call, so overrides apply at once."""

    def __getitem__(self, alias: str, /) -> BaseEmailBackend:
        return self.create_connection(alias)

    def __contains__(self, alias: object, /) -> bool:
        return alias in self.settings

    def __iter__(self) -> Iterator[str]:
        return iter(self.settings)

    def get(self, alias: str, /, default: Any = None) -> Any:
        try:
            return self[alias]
        except MailerDoesNotExist:
            return default

    @property
    def default(self) -> BaseEmailBackend:
        return self[DEFAULT_MAILER_ALIAS]

    @property
    def settings(self) -> Mapping[str, Any]:
        configured = settings.MAILERS
        if configured is None:
            return {DEFAULT_MAILER_ALIAS: {}}  # the EMAIL_* settings' mailer
        if not isinstance(configured, Mapping):
            raise ImproperlyConfigured(f"The MAILERS setting must be a dict, not {type(configured).__name__}.")
        return configured

    @property
    def is_configured(self) -> bool:
        """True once MAILERS is set: Django's opt-in to mailers."""
        return settings.MAILERS is not None

    def legacy_default(self, **options: Any) -> BaseEmailBackend:
        """The default mailer without MAILERS: EMAIL_BACKEND, configured from the EMAIL_* settings."""
        warn_about_default_mailer()
        backend_class = import_string(settings.EMAIL_BACKEND, setting="EMAIL_BACKEND")
        backend: BaseEmailBackend = backend_class(**options)
        return backend

    def create_connection(
        self, alias: str, /, *, deprecated_options: dict[str, Any] | None = None
    ) -> BaseEmailBackend:
        """A new backend for ``alias``; ``deprecated_options`` are get_connection()'s keywords."""
        if not self.is_configured and alias == DEFAULT_MAILER_ALIAS:
            return self.legacy_default()
        try:
            config = self.settings[alias]
        except KeyError:
            raise MailerDoesNotExist(alias=alias) from None
        if not isinstance(config, Mapping):
            raise InvalidMailer(f"must be a dict with BACKEND and OPTIONS, not {type(config).__name__}.", alias=alias)
        options = dict(config.get("OPTIONS") or {})
        if "alias" in options:
            raise InvalidMailer("OPTIONS must not define 'alias'.", alias=alias)
        if deprecated_options:
            # get_connection()'s keywords: used where the backend knows them, else ignored (not
            # refused as unknown OPTIONS), as Django 6.1 does.
            options |= deprecated_options | {"_ignore_unknown_kwargs": set(deprecated_options)}
        path = config.get("BACKEND", DEFAULT_MAILER_BACKEND)
        try:
            backend_class = import_string(path)
        except ImproperlyConfigured as error:
            raise InvalidMailer(f"Could not find BACKEND {path!r}: {error}", alias=alias) from error
        backend: BaseEmailBackend = backend_class(alias=alias, **options)
        return backend


def warn_about_default_mailer() -> None:
    """Django 6.1 warns when mail is configured neither by MAILERS nor by EMAIL_* settings."""
    if settings.MAILERS is not None or any(settings.is_set(name) for name in DEPRECATED_EMAIL_SETTINGS):
        return
    warn(NO_DEFAULT_MAILER_WARNING)


mailers = MailersHandler()
