"""Deprecation warnings: what Django 6.1 still accepts with a warning, we accept with the same one.

Every warning mailqueue gives is a ``RemovedInDjango2028Warning`` from this module, with
Django's wording, so a test suite filters them in one place::

    filterwarnings = ["error::mailqueue.deprecation.RemovedInDjango2028Warning"]

It has Django's name and base class (PendingDeprecationWarning) but is our own class:
mailqueue does not need Django installed.
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar


class RemovedInDjango2028Warning(PendingDeprecationWarning):
    """A call Django 6.1 deprecates (and Django 2028 will refuse)."""


# --- The send functions' deprecated paths (mailqueue.mail), with Django 6.1's messages ---------


FAIL_SILENTLY_ARG_WARNING = (
    "The 'fail_silently' argument is deprecated. See 'Migrating email to "
    "mailers' in Django's documentation for recommended replacements."
)
AUTH_ARGS_WARNING = (
    "The 'auth_user' and 'auth_password' arguments are deprecated. Set "
    "'username' and 'password' OPTIONS in MAILERS instead."
)
CONNECTION_ARG_WARNING = (
    "The 'connection' argument is deprecated. Switch to the 'using' argument with a MAILERS alias."
)
GET_CONNECTION_WARNING = (
    "get_connection() is deprecated. See 'Migrating email to mailers' "
    "in Django's documentation for recommended replacements."
)
FAIL_SILENTLY_ATTRIBUTE_WARNING = (
    "BaseEmailBackend.fail_silently is deprecated. A subclass that supports fail_silently must set its own attribute."
)
DIRECT_SMTP_BACKEND_WARNING = "Directly creating EmailBackend instances is deprecated. Use mail.mailers instead."
NO_DEFAULT_MAILER_WARNING = (
    "Django 2028 will not have a default mailer. Configure "
    "settings.MAILERS to avoid errors when sending email."
)
# Django's deprecated email settings: one explicitly set means the user configured mail the old way.
DEPRECATED_EMAIL_SETTINGS = frozenset({
    "EMAIL_BACKEND", "EMAIL_FILE_PATH", "EMAIL_HOST", "EMAIL_HOST_PASSWORD", "EMAIL_HOST_USER",
    "EMAIL_PORT", "EMAIL_SSL_CERTFILE", "EMAIL_SSL_KEYFILE", "EMAIL_TIMEOUT", "EMAIL_USE_SSL",
    "EMAIL_USE_TLS",
})
INTERNAL_MODULES = ("mailqueue.", "workers.")
_PACKAGE_PREFIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")

F = TypeVar("F", bound=Callable[..., Any])


def warn(message: str) -> None:
    """Warn, attributed to the first frame outside mailqueue (the user's call).

    Counted by hand: ``skip_file_prefixes`` needs Python 3.12, and we support 3.11.
    """
    frame, level = inspect.currentframe(), 1
    try:
        while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_PREFIX):
            frame, level = frame.f_back, level + 1
    finally:
        del frame
    warnings.warn(message, RemovedInDjango2028Warning, stacklevel=level)


def warn_about_external_use(message: str, *, skip_frames: int = 0, skip_modules: tuple[str, ...] = ()) -> None:
    """Warn only when the deprecated path is taken by code outside mailqueue and its workers.

    As Django's helper of the same name: the caller of the function that calls this one
    (``skip_frames`` more frames up, past decorators and helpers) decides. mailqueue calling
    its own deprecated paths (send_mail() calling get_connection()) must not warn the user.
    Frames of ``skip_modules`` (a subclass's ``__init__`` chain, say) are passed first.
    """
    frame = inspect.currentframe()
    try:
        for _ in range(2):
            frame = frame.f_back if frame is not None else None
        while skip_modules and frame is not None and frame.f_globals.get("__name__", "").startswith(skip_modules):
            frame = frame.f_back
        for _ in range(skip_frames):
            frame = frame.f_back if frame is not None else None
        module = frame.f_globals.get("__name__", "__main__") if frame is not None else "__main__"
    finally:
        del frame
    if not f"{module}.".startswith(INTERNAL_MODULES):
        warn(message)


def deprecate_posargs(names: Sequence[str]) -> Callable[[F], F]:
    """Accept ``names`` (keyword-only now) by position, with Django's deprecate_posargs warning."""

    def decorate(func: F) -> F:
        positional = sum(
            1 for p in inspect.signature(func).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        )
        name = func.__qualname__.rsplit("<locals>.", 1)[-1].replace(".__init__", "")
        most = positional + len(names)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) > positional:
                if len(args) > most:
                    raise TypeError(
                        f"{name}() takes at most {most} positional argument(s) "
                        f"(including {len(names)} deprecated) but {len(args)} were given."
                    )
                remapped = list(names[: len(args) - positional])
                both = [n for n in remapped if n in kwargs]
                if both:
                    quoted = ", ".join(f"'{n}'" for n in both)
                    raise TypeError(
                        f"{name}() got both deprecated positional and keyword argument values for {quoted}."
                    )
                kwargs |= dict(zip(remapped, args[positional:], strict=True))
                args = args[:positional]
                quoted = ", ".join(f"'{n}'" for n in remapped)
                warn(
                    f"Passing positional argument(s) {quoted} to {name}() is deprecated. "
                    "Use keyword arguments instead."
                )
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def report_using_incompatibility(
    connection: object = None, fail_silently: bool = False, auth_user: object = None, auth_password: object = None
) -> None:
    """Django's TypeErrors for options that cannot go with ``using=``."""
    if connection is not None:
        raise TypeError("'connection' is not compatible with 'using'.")
    if fail_silently:
        raise TypeError("'fail_silently' is not compatible with 'using'.")
    if auth_user is not None or auth_password is not None:
        raise TypeError(
            "'auth_user' and 'auth_password' are not compatible with 'using'. "
            "Set 'username' and 'password' OPTIONS in MAILERS instead."
        )


def warn_about_send_options(
    *, fail_silently: bool, connection: object, auth: bool = False, skip_frames: int = 1
) -> None:
    """The warnings send_mail() and friends give for options replaced by mailers."""
    if fail_silently:
        warn_about_external_use(FAIL_SILENTLY_ARG_WARNING, skip_frames=skip_frames + 1)
    if auth:
        warn_about_external_use(AUTH_ARGS_WARNING, skip_frames=skip_frames + 1)
    if connection is not None:
        warn_about_external_use(CONNECTION_ARG_WARNING, skip_frames=skip_frames + 1)


def unknown_backend_options(backend: object, names: str) -> None:
    """A backend created outside MAILERS ignores unknown keyword arguments, with Django's warning."""
    class_name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    warn_about_external_use(
        f"{class_name}.__init__() does not support {names}. In Django 2028, "
        "BaseEmailBackend will raise a TypeError for unknown keyword arguments.",
        skip_modules=("mailqueue.backends", "mailqueue.deprecation"),
    )


NOT_PROVIDED: Any = object()  # BaseEmailBackend's fail_silently, not passed


def handles_fail_silently(backend_class: type) -> bool:
    """True if one of mailqueue's backends in ``backend_class``'s MRO takes ``fail_silently``
    in its own ``__init__`` (SMTP, console, file, locmem, queue), so passing it on to BaseEmailBackend
    is not the deprecated path. Django 6.1 deprecates fail_silently on BaseEmailBackend: a
    third-party subclass that passes it on, and the backends that do not take it (dummy),
    give Django's "does not support 'fail_silently'" warning."""
    known = _HANDLES_FAIL_SILENTLY.get(backend_class)
    if known is None:
        known = _HANDLES_FAIL_SILENTLY[backend_class] = _takes_fail_silently(backend_class)
    return known


_HANDLES_FAIL_SILENTLY: dict[type, bool] = {}  # per class: the signatures do not change


def _takes_fail_silently(backend_class: type) -> bool:
    for cls in backend_class.__mro__:
        if cls.__module__ == "mailqueue.backends.base":  # BaseEmailBackend: the deprecated path
            return False
        if cls.__module__.startswith("mailqueue.backends.") and "__init__" in cls.__dict__:
            return "fail_silently" in inspect.signature(cls.__dict__["__init__"]).parameters
    return False


def legacy_recipients(setting_name: str, recipients: Any) -> Any:
    """ADMINS/MANAGERS given as (name, address) pairs: the addresses, with Django's warning."""
    if isinstance(recipients, (list, tuple)) and all(
        isinstance(a, (list, tuple)) and len(a) == 2 for a in recipients
    ):
        warn(
            f"Using (name, address) pairs in the {setting_name} setting is deprecated."
            " Replace with a list of email address strings."
        )
        return [a[1] for a in recipients]
    return recipients


# --- The message's deprecated paths (mailqueue.message.model) ---------------------------------------

EMAIL_MESSAGE_POSITIONAL = ("bcc", "connection", "attachments", "headers", "cc", "reply_to")
EMAIL_MULTI_ALTERNATIVES_POSITIONAL = ("bcc", "connection", "attachments", "headers", "alternatives", "cc", "reply_to")
CONNECTION_ATTRIBUTE_WARNING = "The EmailMessage.connection attribute is deprecated."
CONNECTION_ATTRIBUTE_SET_WARNING = (
    "The EmailMessage.connection attribute is deprecated. Switch to "
    "EmailMessage.send(using=...) with a MAILERS alias."
)
MIMEBASE_ATTACHMENT_WARNING = "MIMEBase attachments are deprecated. Use an email.message.MIMEPart instead."
GET_CONNECTION_METHOD_REMOVED = "EmailMessage no longer supports the undocumented get_connection() method."


def refuse_removed_attribute(message: object, attribute: str, class_name: str) -> None:
    """Django 6.1 refuses, when it builds the part they used to change, the attributes it removed
    (``mixed_subtype``, ``alternative_subtype``): set on the instance or on a subclass."""
    if hasattr(message, attribute):
        raise AttributeError(f"{class_name} no longer supports the undocumented `{attribute}` attribute")


def refuse_get_connection_override(message: object) -> None:
    """EmailMessage.get_connection() is gone in Django 6.1; a subclass that still defines it
    (expecting send() to call it) is refused at send(), as Django refuses it."""
    if hasattr(message, "get_connection"):
        raise AttributeError(GET_CONNECTION_METHOD_REMOVED)


# BadHeaderError is ValueError itself (not a subclass), so ``except BadHeaderError`` catches the
# ValueError mailqueue raises for header injection; importing it from ``mailqueue`` warns.
BadHeaderError = ValueError
DEPRECATED_ON_IMPORT = {"BadHeaderError": "BadHeaderError is deprecated. Replace with ValueError."}
