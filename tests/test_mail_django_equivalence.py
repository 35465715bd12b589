"""Mailers and the deprecated send paths: Django 6.1.3 and mailqueue side by side.

Each case runs the same call on both libraries, configured alike (locmem mailers), and
compares what came out: the result or the error (type name and message), and every warning
(class name, its base class and message). Django's "The EMAIL_* setting is deprecated"
warnings are left out: mailqueue keeps the EMAIL_* settings, which its workers read
(README: "Where mailqueue differs from Django 6.1, on purpose").
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from email.mime.application import MIMEApplication
from email.mime.image import MIMEImage
from email.mime.text import MIMEText
from types import ModuleType
from typing import Any

import django.core.mail as django_mail  # noqa: E402 - after the reference configured Django
import pytest
from django.test.utils import override_settings as django_override  # noqa: E402

import mailqueue  # noqa: E402
from mailqueue.conf import override_settings as our_override  # noqa: E402
from tests.message import django_reference  # noqa: F401 - configures Django 6.1, or skips on 3.11
from tests.message.corpus import PNG
from tests.message.structure import normalized_bytes

Outcome = tuple[object, list[tuple[str, str, str]]]
Case = Callable[[ModuleType], object]


def mailers_for(library: str, **options: Any) -> dict[str, Any]:
    backend = f"{library}.backends.locmem.EmailBackend"
    return {alias: {"BACKEND": backend, **options} for alias in ("default", "bulk")}


LIBRARIES: dict[str, tuple[ModuleType, Callable[..., AbstractContextManager[Any]], str]] = {
    "django": (django_mail, django_override, "django.core.mail"),
    "mailqueue": (mailqueue, our_override, "mailqueue"),  # the package: send_mail, mailers, outbox
}


def outcome(library: str, case: Case, **settings: Any) -> Outcome:
    """What ``case(mail_module)`` returns or raises, and the warnings it gives."""
    module, override, _ = LIBRARIES[library]
    django_mail.outbox = []
    mailqueue.outbox = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with override(**{k: (v(library) if callable(v) else v) for k, v in settings.items()}):
            try:
                result: object = case(module)
            except Exception as error:  # the error is part of the behaviour compared
                result = (type(error).__name__, str(error))
    seen = [
        (type(w.message).__name__, type(w.message).__mro__[1].__name__, unprefixed(library, str(w.message)))
        for w in caught
        if not (str(w.message).startswith("The EMAIL_") and "setting is deprecated" in str(w.message))
    ]
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
        result = (result[0], unprefixed(library, result[1]))
    return result, seen


def unprefixed(library: str, text: str) -> str:
    """Class paths in messages name the library's own package: "{mail}.backends.base..." in both."""
    return text.replace(f"{LIBRARIES[library][2]}.", "{mail}.")


def same(case: Case, **settings: Any) -> Outcome:
    ours = outcome("mailqueue", case, **settings)
    djangos = outcome("django", case, **settings)
    assert ours == djangos
    return ours


def with_mailers(library: str) -> dict[str, Any]:
    return mailers_for("mailqueue" if library == "mailqueue" else "django.core.mail")


MAILERS = {"MAILERS": with_mailers}


@pytest.fixture(autouse=True)
def clean_outboxes() -> Iterator[None]:
    yield
    django_mail.outbox = []
    mailqueue.outbox = []


def send(module: ModuleType, *args: Any, **kwargs: Any) -> object:
    return module.send_mail("Subject", "Body", "from@example.com", ["to@example.com"], *args, **kwargs)


# --- Positional options ------------------------------------------------------------------------


@pytest.mark.parametrize("args", [(False,), (False, None, None), (False, None, None, None, "<p>hi</p>")])
def test_send_mail_with_positional_options(args: tuple[Any, ...]) -> None:
    result, seen = same(lambda m: send(m, *args), **MAILERS)
    assert result == 1 and seen and "Passing positional argument(s)" in seen[0][2]


def test_too_many_positional_arguments() -> None:
    result, _ = same(lambda m: send(m, False, None, None, None, None, "extra"), **MAILERS)
    assert isinstance(result, tuple) and result[0] == "TypeError"


def test_positional_and_keyword_value_for_the_same_option() -> None:
    same(lambda m: send(m, False, fail_silently=False), **MAILERS)


@pytest.mark.parametrize("call", [
    lambda m: m.send_mass_mail([("S", "B", "f@example.com", ["t@example.com"])], False),
    lambda m: m.mail_admins("S", "B", False),
    lambda m: m.mail_managers("S", "B", False, None, "<p>x</p>"),
    lambda m: m.get_connection(None, False).__class__.__name__,
])
def test_other_functions_with_positional_options(call: Case) -> None:
    _, seen = same(call, ADMINS=["a@example.com"], MANAGERS=["m@example.com"], **MAILERS)
    assert any("Passing positional argument(s)" in message for *_, message in seen)


# --- Options replaced by mailers ------------------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda m: send(m, fail_silently=True),
    lambda m: send(m, connection=m.mailers["bulk"]),
    lambda m: m.send_mass_mail([], fail_silently=True),
    lambda m: m.send_mass_mail([], connection=m.mailers["bulk"]),
    lambda m: m.mail_admins("S", "B", fail_silently=True),
    lambda m: m.mail_managers("S", "B", connection=m.mailers["bulk"]),
    lambda m: m.EmailMessage("S", "B", "f@example.com", ["t@example.com"]).send(fail_silently=True),
    lambda m: m.get_connection().alias,
    lambda m: send(m, connection=m.mailers["bulk"], fail_silently=True),
])
def test_deprecated_options_warn_alike(call: Case) -> None:
    _, seen = same(call, ADMINS=["a@example.com"], MANAGERS=["m@example.com"], **MAILERS)
    assert seen


def test_auth_options_without_mailers() -> None:
    def call(m: ModuleType) -> object:
        return send(m, auth_user="u", auth_password="p")

    same(call, EMAIL_BACKEND=lambda lib: f"{LIBRARIES[lib][2]}.backends.locmem.EmailBackend")


def test_no_default_mailer_warning_without_any_mail_settings() -> None:
    result, seen = same(lambda m: type(m.get_connection()).__module__.rsplit(".", 1)[-1])
    assert result == "smtp" and any("will not have a default mailer" in message for *_, message in seen)


# --- using= and the mailers ------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda m: send(m, using="bulk"),
    lambda m: send(m, using="nope"),
    lambda m: send(m, using="bulk", fail_silently=True),
    lambda m: send(m, using="bulk", connection=m.mailers["default"]),
    lambda m: send(m, using="bulk", auth_user="u"),
    lambda m: m.send_mass_mail([("S", "B", "f@example.com", ["t@example.com"])], using="bulk"),
    lambda m: m.mail_admins("S", "B", using="bulk", fail_silently=True),
    lambda m: m.EmailMessage("S", "B", "f@example.com", ["t@example.com"]).send(using="bulk"),
    lambda m: [m.mailers.get("nope"), "bulk" in m.mailers, list(m.mailers), m.mailers.default.alias],
    lambda m: m.get_connection("x.y.Z"),
])
def test_using_and_mailers_behave_alike(call: Case) -> None:
    same(call, ADMINS=["a@example.com"], **MAILERS)


def test_sent_messages_record_their_mailer() -> None:
    same(lambda m: send(m, using="bulk") and [mail.sent_using for mail in m.outbox], **MAILERS)


@pytest.mark.parametrize("config", [
    {"OPTIONS": {"alias": "x"}},
    {"OPTIONS": {"colour": "red"}},
    {"BACKEND": "{smtp}", "OPTIONS": {"port": 25}},
    {"BACKEND": "{smtp}", "OPTIONS": {"host": "h", "use_ssl": True, "use_tls": True}},
    {"BACKEND": "{smtp}", "OPTIONS": {"host": "h", "use_ssl": True}},
    {"BACKEND": "{smtp}", "OPTIONS": {"host": "h", "use_tls": True}},
    {"BACKEND": "{smtp}", "OPTIONS": {"host": "h"}},
    {"BACKEND": "{filebased}"},
])
def test_mailer_configuration_is_checked_alike(config: dict[str, Any]) -> None:
    def mailers(library: str) -> dict[str, Any]:
        base = LIBRARIES[library][2]
        backend = config.get("BACKEND", "{locmem}").strip("{}")
        return {"m": {"BACKEND": f"{base}.backends.{backend}.EmailBackend", "OPTIONS": config.get("OPTIONS", {})}}

    def call(m: ModuleType) -> object:
        backend = m.mailers["m"]
        return [backend.alias, getattr(backend, "port", None), getattr(backend, "use_ssl", None)]

    same(call, MAILERS=mailers)


# --- ADMINS and MANAGERS in the old shapes -------------------------------------------------------


PAIRS = [[("Ann", "ann@example.com")], [["Ann", "ann@example.com"], ["Bo", "bo@example.com"]]]


@pytest.mark.parametrize("value", PAIRS)
@pytest.mark.parametrize("function", ["mail_admins", "mail_managers"])
def test_name_address_pairs_are_accepted_alike(function: str, value: list[Any]) -> None:
    setting = "ADMINS" if function == "mail_admins" else "MANAGERS"

    def call(m: ModuleType) -> object:
        getattr(m, function)("S", "B")
        return [mail.to for mail in m.outbox]

    result, seen = same(call, **{setting: value}, **MAILERS)
    assert seen and result


def test_lazy_addresses_are_accepted_alike() -> None:
    from django.utils.functional import lazy

    address = lazy(lambda: "ann@example.com", str)()

    def call(m: ModuleType) -> object:
        m.mail_admins("S", "B")
        return [mail.message()["To"] for mail in m.outbox]

    result, _ = same(call, ADMINS=[address], **MAILERS)
    assert result == ["ann@example.com"]


def test_creating_the_smtp_backend_directly_warns_alike() -> None:
    def call(m: ModuleType) -> object:
        library = "django" if m is django_mail else "mailqueue"
        module = importlib.import_module(f"{LIBRARIES[library][2]}.backends.smtp")
        return module.EmailBackend(host="h").port

    result, seen = same(call)  # without MAILERS: with it, Django refuses to read EMAIL_PORT (README)
    assert result == 25 and seen


def test_bad_header_error_is_value_error_and_warns_on_import_alike() -> None:
    seen = {}
    for name, module in (("django", django_mail), ("mailqueue", mailqueue)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            error = module.BadHeaderError
        seen[name] = (error, [(type(w.message).__name__, type(w.message).__mro__[1], str(w.message)) for w in caught])
    assert seen["django"] == seen["mailqueue"]
    assert seen["mailqueue"][0] is ValueError and len(seen["mailqueue"][1]) == 1
    with pytest.raises(mailqueue.deprecation.BadHeaderError, match="Header"):
        mailqueue.EmailMessage("Hi", "Body", "a@example.com", ["b@example.com"],
                               headers={"X-Bad": "one\r\nBcc: c@example.com"}).message()


# --- The message's deprecated paths ---------------------------------------------------------------


def message(m: ModuleType, *args: Any, cls: str = "EmailMessage", **kwargs: Any) -> Any:
    return getattr(m, cls)("S", "B", "f@example.com", ["t@example.com"], *args, **kwargs)


def built(msg: Any) -> bytes:
    """The serialization, Date, Message-ID and boundaries masked: equal across libraries."""
    return normalized_bytes(msg.message().as_bytes())


def backend_module(m: ModuleType, name: str) -> ModuleType:
    library = "django" if m is django_mail else "mailqueue"
    return importlib.import_module(f"{LIBRARIES[library][2]}.backends.{name}")


@pytest.mark.parametrize("call", [
    lambda m: message(m, ["b@example.com"]).bcc,
    lambda m: built(message(m, ["b@example.com"], None, [("a.txt", "x", "text/plain")], {"X-A": "1"},
                            ["c@example.com"], ["r@example.com"])),
    lambda m: built(message(m, None, None, None, None, [("<p>x</p>", "text/html")], cls="EmailMultiAlternatives")),
    lambda m: message(m, *[None] * 7),
    lambda m: message(m, *[None] * 8, cls="EmailMultiAlternatives"),
    lambda m: message(m, ["b@example.com"], bcc=["b@example.com"]),
    lambda m: message(m, None, m.mailers["bulk"]).send(),
    lambda m: message(m, connection=m.mailers["bulk"]).send(),
    lambda m: message(m, connection=m.mailers["bulk"], cls="EmailMultiAlternatives").send(),
    lambda m: message(m, connection=m.mailers["bulk"]).send(fail_silently=True),
    lambda m: message(m, connection=m.mailers["bulk"]).send(using="bulk"),
    lambda m: message(m).connection,
])
def test_message_options_by_position_and_connection_alike(call: Case) -> None:
    same(call, **MAILERS)


def test_the_connection_attribute_alike() -> None:
    def call(m: ModuleType) -> object:
        msg = message(m)
        msg.connection = m.mailers["bulk"]
        return [msg.connection.alias, msg.send(), [sent.sent_using for sent in m.outbox]]

    result, seen = same(call, **MAILERS)
    assert result == ["bulk", 1, ["bulk"]] and len(seen) == 2


def legacy_parts() -> list[Any]:
    image = MIMEImage(PNG, "png")
    image.add_header("Content-ID", "<logo@example.com>")
    return [image, MIMEText("légacy\n", "plain", "utf-8"), MIMEApplication(b"%PDF", Name="a.pdf")]


@pytest.mark.parametrize("call", [
    lambda m: built(message(m, attachments=legacy_parts())),
    lambda m: built(message(m, attachments=[*legacy_parts(), ("a.txt", "x", "text/plain")],
                            alternatives=[("<p>x</p>", "text/html")], cls="EmailMultiAlternatives")),
    lambda m: message(m).attach(MIMEText("x"), "a.txt"),
    lambda m: message(m).attach(MIMEText("x"), mimetype="text/plain"),
    lambda m: [m.send_mail("S", "B", "f@example.com", ["t@example.com"], using="bulk"),
               built(m.outbox[0])],
])
def test_legacy_mime_attachments_alike(call: Case) -> None:
    same(call, **MAILERS)


def test_legacy_mime_attachment_sent_through_the_fast_path_serializer_as_django_builds_it() -> None:
    from mailqueue.message.fastpath import POLICY, serialize

    ours = message(mailqueue, attachments=legacy_parts())
    theirs = message(django_mail, attachments=legacy_parts())
    assert normalized_bytes(serialize(ours).message) == normalized_bytes(theirs.message(policy=POLICY).as_bytes())


def with_attribute(msg: Any, name: str) -> Any:
    setattr(msg, name, "related")
    return msg


@pytest.mark.parametrize("call", [
    lambda m: built(with_attribute(message(m), "mixed_subtype")),
    lambda m: built(with_attribute(message(m, attachments=[("a.txt", "x", "text/plain")]), "mixed_subtype")),
    lambda m: built(with_attribute(message(m, cls="EmailMultiAlternatives"), "alternative_subtype")),
    lambda m: built(with_attribute(message(m, alternatives=[("<p/>", "text/html")], cls="EmailMultiAlternatives"),
                                   "alternative_subtype")),
    lambda m: built(with_attribute(message(m, alternatives=[("<p/>", "text/html")], cls="EmailMultiAlternatives"),
                                   "mixed_subtype")),
    lambda m: hasattr(message(m), "get_connection"),
    lambda m: type("Legacy", (m.EmailMessage,), {"get_connection": lambda self: None})(
        "S", "B", "f@example.com", ["t@example.com"]).send(),
    lambda m: type("Legacy", (m.EmailMessage,), {"get_connection": lambda self: None})(
        "S", "B", "f@example.com", []).send(),
])
def test_removed_attributes_and_methods_are_refused_alike(call: Case) -> None:
    same(call, **MAILERS)


@pytest.mark.parametrize("kwargs", [
    {"headers": {"X-Tag": "a\nBcc: x@example.com"}},
    {"subject": "Hi\r\nBcc: x@example.com"},
    {"cc": ["c@example.com\nBcc: x@example.com"]},
])
def test_header_injection_message_starts_as_djangos(kwargs: dict[str, Any]) -> None:
    errors = []
    for m in (mailqueue, django_mail):
        arguments = {"subject": "S", "body": "B", "from_email": "f@example.com", "to": ["t@example.com"]} | kwargs
        with pytest.raises(ValueError) as raised:
            m.EmailMessage(**arguments).message()
        errors.append(str(raised.value))
    ours, djangos = errors
    assert ours.startswith(djangos + " (") and ours != djangos  # ours adds the header's name and value


# --- Backends: fail_silently on BaseEmailBackend, get_connection()'s extra options -----------------


def base_backend(m: ModuleType) -> type:
    return backend_module(m, "base").BaseEmailBackend  # type: ignore[no-any-return]


def subclass(m: ModuleType) -> type:
    """A third-party backend written for Django 5.x: it passes fail_silently on to the base."""

    def init(self: Any, fail_silently: bool = False, **kwargs: Any) -> None:
        super(cls, self).__init__(fail_silently=fail_silently, **kwargs)

    cls = type("Custom", (base_backend(m),), {"__init__": init, "__module__": "app.mail"})
    return cls


@pytest.mark.parametrize("call", [
    lambda m: base_backend(m)().alias,
    lambda m: base_backend(m)(True)._fail_silently,
    lambda m: base_backend(m)(fail_silently=False)._fail_silently,
    lambda m: base_backend(m)(True).fail_silently,
    lambda m: base_backend(m)().fail_silently,
    lambda m: base_backend(m)(True, alias="a"),
    lambda m: base_backend(m)(fail_silently=False, alias="a"),
    lambda m: base_backend(m)(True, 2),
    lambda m: subclass(m)(True).fail_silently,
    lambda m: subclass(m)(alias="a"),
    lambda m: backend_module(m, "dummy").EmailBackend(True).fail_silently,
    lambda m: backend_module(m, "dummy").EmailBackend().fail_silently,
    lambda m: backend_module(m, "console").EmailBackend(fail_silently=True).fail_silently,
    lambda m: backend_module(m, "smtp").EmailBackend("h", 26, None, None, None, True).fail_silently,
])
def test_fail_silently_on_the_base_backend_alike(call: Case) -> None:
    same(call)


@pytest.mark.parametrize("call", [
    lambda m: type(m.get_connection(colour="red")).__name__,
    lambda m: m.get_connection(fail_silently=True)._fail_silently,
    lambda m: m.get_connection(colour="red", fail_silently=True).alias,
    lambda m: send(m, auth_user="u", auth_password="p"),
    lambda m: [m.mailers["bulk"].alias, m.mailers["bulk"]._fail_silently],
])
def test_get_connection_extra_options_with_mailers_alike(call: Case) -> None:
    same(call, **MAILERS)


def test_get_connection_extra_options_reach_a_mailer_that_knows_them() -> None:
    def mailers(library: str) -> dict[str, Any]:
        return {"default": {"BACKEND": f"{LIBRARIES[library][2]}.backends.smtp.EmailBackend",
                            "OPTIONS": {"host": "h"}}}

    result, _ = same(lambda m: [(c := m.get_connection(port=26, colour="red")).port, c.fail_silently], MAILERS=mailers)
    assert result == [26, False]


@pytest.mark.parametrize("call", [
    lambda m: backend_module(m, "smtp").EmailBackend(host="h", ssl_keyfile="k.pem").ssl_keyfile,
    lambda m: [(b := backend_module(m, "smtp").EmailBackend(host="h")).ssl_keyfile, b.ssl_certfile],
])
def test_a_keyfile_without_a_certfile_is_stored_alike(call: Case) -> None:
    result, _ = same(call, EMAIL_SSL_KEYFILE="k.pem")
    assert "k.pem" in str(result)
