"""mailqueue.mailers and ``using=``: Django 6.1's MAILERS, against the real backends."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import mailqueue
from mailqueue.backends import locmem, queue, smtp
from mailqueue.conf import override_settings, settings
from mailqueue.deprecation import RemovedInDjango2028Warning
from mailqueue.exceptions import ImproperlyConfigured, InvalidMailer, MailerDoesNotExist
from mailqueue.handler import mailers
from mailqueue.mail import get_connection, mail_admins, mail_managers, send_mail, send_mass_mail
from mailqueue.message import EmailMessage
from mailqueue.queue.producer import close_publishers
from tests.fixtures.smtp import SMTPTestServer
from tests.queue_inspection import queued_tasks

LOCMEM = "mailqueue.backends.locmem.EmailBackend"
QUEUE = "mailqueue.backends.queue.EmailBackend"
TWO_LOCMEM = {"default": {"BACKEND": LOCMEM}, "bulk": {"BACKEND": LOCMEM}}


@pytest.fixture(autouse=True)
def outbox() -> Iterator[None]:
    mailqueue.outbox = []
    yield
    mailqueue.outbox = []


# --- The handler -----------------------------------------------------------------------------


def test_without_mailers_the_default_mailer_is_email_backend() -> None:
    with override_settings(EMAIL_BACKEND=LOCMEM):
        assert isinstance(mailers.default, locmem.EmailBackend)
        assert mailers.default.alias is None  # built exactly as get_connection() builds it
        assert "default" in mailers and "bulk" not in mailers
        assert list(mailers) == ["default"]


def test_every_lookup_returns_a_new_backend_knowing_its_alias() -> None:
    with override_settings(MAILERS=TWO_LOCMEM):
        first, second = mailers["bulk"], mailers["bulk"]
        assert isinstance(first, locmem.EmailBackend) and first is not second
        assert first.alias == "bulk" and mailers.default.alias == "default"
        assert list(mailers) == ["default", "bulk"] and "bulk" in mailers


def test_unknown_alias_is_mailer_does_not_exist_carrying_the_alias() -> None:
    with override_settings(MAILERS=TWO_LOCMEM):
        with pytest.raises(MailerDoesNotExist) as raised:
            mailers["nope"]
        assert mailers.get("nope") is None and mailers.get("nope", 42) == 42
    assert raised.value.alias == "nope"
    assert isinstance(raised.value, KeyError) and isinstance(raised.value, InvalidMailer)
    assert raised.value.args == ("The mailer 'nope' is not configured.",)  # as Django's, no prefix


@pytest.mark.parametrize(("config", "message"), [
    ({"BACKEND": "mailqueue.backends.nope.EmailBackend"}, r"MAILERS\['m'\]: Could not find BACKEND"),
    ({"BACKEND": LOCMEM, "OPTIONS": {"alias": "x"}}, r"MAILERS\['m'\]: OPTIONS must not define 'alias'\."),
    ({"BACKEND": LOCMEM, "OPTIONS": {"colour": "red"}}, r"MAILERS\['m'\]: Unknown options 'colour'\."),
    ({"BACKEND": QUEUE, "OPTIONS": {"priority_lane": 1}}, r"MAILERS\['m'\]: Unknown options 'priority_lane'\."),
    ({"OPTIONS": {"port": 25}}, r"MAILERS\['m'\]: OPTIONS must define 'host'\."),
    ({"OPTIONS": {"host": "h", "use_ssl": True, "use_tls": True}}, r"'use_ssl' and 'use_tls' OPTIONS are incompatible"),
    ({"BACKEND": "mailqueue.backends.filebased.EmailBackend"}, r"OPTIONS must define 'file_path'\."),
])
def test_a_bad_mailer_is_invalid_mailer_naming_it(config: dict[str, object], message: str) -> None:
    with override_settings(MAILERS={"m": config}):
        with pytest.raises(InvalidMailer, match=message) as raised:
            mailers["m"]
    assert raised.value.alias == "m"


def test_a_backend_made_directly_ignores_unknown_options_with_djangos_warning() -> None:
    with pytest.warns(RemovedInDjango2028Warning, match=r"mailqueue\.backends\.locmem\.EmailBackend\.__init__\(\) "
                      r"does not support 'colour'\. In Django 2028"):
        locmem.EmailBackend(colour="red")


def test_mailers_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILERS", json.dumps({"default": {"BACKEND": LOCMEM}}))
    assert isinstance(mailers.default, locmem.EmailBackend) and mailers.default.alias == "default"
    monkeypatch.setenv("MAILERS", "[1]")
    with pytest.raises(ImproperlyConfigured, match="MAILERS.*expected a JSON object"):
        assert settings.MAILERS


# --- using= ---------------------------------------------------------------------------------


def test_using_picks_the_mailer_for_every_send_function() -> None:
    with override_settings(MAILERS=TWO_LOCMEM, ADMINS=["a@example.com"], MANAGERS=["m@example.com"]):
        send_mail("S", "B", "f@example.com", ["t@example.com"], using="bulk")
        send_mass_mail([("S", "B", "f@example.com", ["t@example.com"])], using="bulk")
        mail_admins("S", "B", using="bulk")
        mail_managers("S", "B", using="bulk")
        EmailMessage("S", "B", "f@example.com", ["t@example.com"]).send(using="bulk")
        send_mail("S", "B", "f@example.com", ["t@example.com"])
    assert [m.sent_using for m in mailqueue.outbox] == ["bulk"] * 5 + ["default"]


def test_using_an_unknown_mailer_raises_before_anything_is_sent() -> None:
    with override_settings(MAILERS=TWO_LOCMEM), pytest.raises(MailerDoesNotExist):
        send_mail("S", "B", "f@example.com", ["t@example.com"], using="nope")
    assert mailqueue.outbox == []


@pytest.mark.parametrize(("options", "message"), [
    ({"connection": locmem.EmailBackend()}, "'connection' is not compatible with 'using'."),
    ({"fail_silently": True}, "'fail_silently' is not compatible with 'using'."),
    ({"auth_user": "u"}, "'auth_user' and 'auth_password' are not compatible with 'using'. "
                         "Set 'username' and 'password' OPTIONS in MAILERS instead."),
])
def test_using_with_an_old_option_is_djangos_type_error(options: dict[str, object], message: str) -> None:
    with override_settings(MAILERS=TWO_LOCMEM), warnings.catch_warnings():
        warnings.simplefilter("ignore", RemovedInDjango2028Warning)
        with pytest.raises(TypeError) as raised:
            send_mail("S", "B", "f@example.com", ["t@example.com"], using="bulk", **options)  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_message_send_using_with_its_own_connection_is_a_type_error() -> None:
    with override_settings(MAILERS=TWO_LOCMEM), pytest.raises(TypeError, match="'connection' is not compatible"):
        EmailMessage(to=["t@example.com"], connection=locmem.EmailBackend()).send(using="bulk")


# --- Real backends as mailers ----------------------------------------------------------------


def test_an_smtp_mailer_sends_with_its_options_not_the_email_settings(smtp_server: SMTPTestServer) -> None:
    mailer = {"OPTIONS": {"host": smtp_server.host, "port": smtp_server.port}}
    with override_settings(MAILERS={"default": mailer}, EMAIL_HOST="wrong.invalid", EMAIL_PORT=1):
        assert send_mail("S", "B", "f@example.com", ["t@example.com"]) == 1
    assert [m.rcpt_tos for m in smtp_server.messages] == [["t@example.com"]]


@pytest.mark.parametrize(("options", "port"), [({}, 25), ({"use_tls": True}, 587), ({"use_ssl": True}, 465)])
def test_an_smtp_mailer_picks_its_port_from_its_security(options: dict[str, object], port: int) -> None:
    with override_settings(MAILERS={"default": {"OPTIONS": {"host": "mail.example.com", **options}}},
                           EMAIL_TIMEOUT=9.0, EMAIL_HOST_USER="u", EMAIL_HOST_PASSWORD="p"):
        backend = mailers.default
    assert isinstance(backend, smtp.EmailBackend)
    assert (backend.port, backend.timeout, backend.username, backend.password) == (port, None, "", "")


def test_queue_mailers_publish_to_their_own_queues(redis_url: str, redis_client: redis.Redis) -> None:
    newsletter = {"BACKEND": QUEUE, "OPTIONS": {"queue": "newsletter", "batch_size": 2, "broker_url": redis_url}}
    transactional = {"BACKEND": QUEUE, "OPTIONS": {"queue": "transactional", "broker_url": redis_url}}
    try:
        with override_settings(MAILERS={"default": transactional, "newsletter": newsletter}):
            send_mail("Reset", "B", "f@example.com", ["ann@example.com"])
            sent = send_mass_mail([("News", "B", "f@example.com", [f"r{n}@example.com"]) for n in range(3)],
                                  using="newsletter")
            assert isinstance(mailers["newsletter"], queue.EmailBackend)
    finally:
        close_publishers()
    assert sent == 3
    assert [len(task.payloads) for task in queued_tasks(redis_client, "newsletter")] == [2, 1]
    assert [len(task.payloads) for task in queued_tasks(redis_client, "transactional")] == [1]


def test_a_filebased_mailer_writes_to_its_file_path(tmp_path: Path) -> None:
    config = {"BACKEND": "mailqueue.backends.filebased.EmailBackend", "OPTIONS": {"file_path": str(tmp_path)}}
    with override_settings(MAILERS={"default": config}):
        assert send_mail("S", "B", "f@example.com", ["t@example.com"]) == 1
    assert len(list(tmp_path.iterdir())) == 1


def test_get_connection_with_mailers_builds_the_default_mailer_with_extra_options() -> None:
    with override_settings(MAILERS=TWO_LOCMEM), warnings.catch_warnings():
        warnings.simplefilter("ignore", RemovedInDjango2028Warning)
        backend = get_connection(fail_silently=True)
        assert backend.alias == "default" and backend.fail_silently is True
        with pytest.raises(RuntimeError, match=r"get_connection\(backend, \.\.\.\) is not supported with MAILERS"):
            get_connection(LOCMEM)


def test_the_package_exports_the_handler_and_the_errors() -> None:
    assert mailqueue.mailers is mailers
    assert mailqueue.MailerDoesNotExist is MailerDoesNotExist and mailqueue.InvalidMailer is InvalidMailer


def test_creating_the_smtp_backend_directly_warns_as_django_but_not_inside_mailqueue() -> None:
    with pytest.warns(RemovedInDjango2028Warning, match="Directly creating EmailBackend instances is deprecated"):
        smtp.EmailBackend()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RemovedInDjango2028Warning)
        with override_settings(EMAIL_BACKEND="mailqueue.backends.smtp.EmailBackend"):
            assert isinstance(mailers.default, smtp.EmailBackend)  # made by mailqueue: no warning
