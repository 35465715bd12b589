"""The worker's long-lived SMTP session, against a real aiosmtpd server."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from mailqueue.conf import override_settings
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.outcomes import Status
from mailqueue.queue.envelope import Envelope
from tests.fixtures.celery import make_payload
from tests.fixtures.smtp import SMTPTestServer
from workers import session
from workers.session import Session, build_backend


def envelope(to: str = "a@example.com") -> Envelope:
    return Envelope.from_payload(make_payload(to=[to]))


@pytest.fixture
def smtp_settings(smtp_server: SMTPTestServer) -> Iterator[SMTPTestServer]:
    with override_settings(EMAIL_HOST=smtp_server.host, EMAIL_PORT=smtp_server.port, EMAIL_TIMEOUT=5.0,
                           MAILQUEUE_DELIVERY_BACKEND="mailqueue.backends.smtp.EmailBackend"):
        yield smtp_server


def new_session(**options: object) -> Session:
    settings: dict = {"max_age": 300.0, "max_messages": 1000}
    settings.update(options)
    return Session(**settings)


def test_one_connection_is_reused_across_sends(smtp_settings: SMTPTestServer) -> None:
    smtp_session = new_session()
    outcomes = [smtp_session.send(envelope(f"u{i}@example.com")) for i in range(5)]
    assert all(outcome.status is Status.ACCEPTED for result in outcomes for outcome in result)
    assert smtp_settings.connections == 1 and len(smtp_settings.messages) == 5
    smtp_session.close()


def test_nothing_is_opened_before_the_first_send(smtp_settings: SMTPTestServer) -> None:
    new_session()
    assert smtp_settings.connections == 0


def test_connection_is_reopened_after_the_server_went_away(smtp_settings: SMTPTestServer) -> None:
    smtp_session = new_session()
    smtp_session.send(envelope())
    smtp_settings.stop()
    smtp_settings.start()
    [outcome] = smtp_session.send(envelope("b@example.com"))
    assert outcome.status is Status.ACCEPTED
    assert smtp_settings.connections == 2
    smtp_session.close()


def test_unreachable_server_is_a_transient_outcome_and_the_next_send_reconnects(
    smtp_settings: SMTPTestServer,
) -> None:
    smtp_session = new_session()
    smtp_settings.stop()
    [refused] = smtp_session.send(envelope())
    smtp_settings.start()
    [accepted] = smtp_session.send(envelope())
    assert (refused.status, refused.code) == (Status.TRANSIENT, None)
    assert accepted.status is Status.ACCEPTED
    smtp_session.close()


def test_connection_is_retired_after_max_messages(smtp_settings: SMTPTestServer) -> None:
    smtp_session = new_session(max_messages=2)
    for number in range(5):
        smtp_session.send(envelope(f"u{number}@example.com"))
    assert smtp_settings.connections == 3
    smtp_session.close()


def test_connection_is_retired_after_max_age(smtp_settings: SMTPTestServer) -> None:
    now = [0.0]
    smtp_session = new_session(max_age=60.0, clock=lambda: now[0])
    smtp_session.send(envelope())
    now[0] = 59.0
    smtp_session.send(envelope())
    now[0] = 61.0
    smtp_session.send(envelope())
    assert smtp_settings.connections == 2
    smtp_session.close()


def test_close_all_closes_every_session_of_the_process(smtp_settings: SMTPTestServer) -> None:
    sessions: list[Session] = []

    def use_session() -> None:
        sessions.append(session.current())
        sessions[-1].send(envelope())

    threads = [threading.Thread(target=use_session) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sessions[0] is not sessions[1] and smtp_settings.connections == 2
    backends = [item.backend for item in sessions]
    session.close_all()
    assert all(not backend.is_connected for backend in backends)  # type: ignore[union-attr]


def test_current_is_one_session_per_thread(smtp_settings: SMTPTestServer) -> None:
    assert session.current() is session.current()
    other: list[Session] = []
    thread = threading.Thread(target=lambda: other.append(session.current()))
    thread.start()
    thread.join()
    assert other[0] is not session.current()
    session.close_all()


def test_session_settings_come_from_mailqueue_settings() -> None:
    with override_settings(MAILQUEUE_CONNECTION_MAX_AGE=12.0, MAILQUEUE_CONNECTION_MAX_MESSAGES=34):
        smtp_session = Session.from_settings()
    assert (smtp_session.max_age, smtp_session.max_messages) == (12.0, 34)


def test_backend_without_per_recipient_outcomes_is_refused_naming_the_setting() -> None:
    with override_settings(MAILQUEUE_DELIVERY_BACKEND="mailqueue.backends.locmem.EmailBackend"):
        with pytest.raises(ImproperlyConfigured, match="MAILQUEUE_DELIVERY_BACKEND"):
            build_backend()


def test_unimportable_backend_is_refused_naming_the_setting() -> None:
    with override_settings(MAILQUEUE_DELIVERY_BACKEND="mailqueue.backends.nothing.EmailBackend"):
        with pytest.raises(ImproperlyConfigured, match="MAILQUEUE_DELIVERY_BACKEND"):
            build_backend()


def test_workers_bound_smtp_waits_even_when_email_timeout_is_none() -> None:
    with override_settings(EMAIL_TIMEOUT=None, MAILQUEUE_DELIVERY_BACKEND="mailqueue.backends.smtp.EmailBackend"):
        backend = build_backend()
    assert backend.timeout == session.DEFAULT_SMTP_TIMEOUT == 60.0  # type: ignore[attr-defined]


def test_a_configured_email_timeout_is_kept() -> None:
    with override_settings(EMAIL_TIMEOUT=7.5, MAILQUEUE_DELIVERY_BACKEND="mailqueue.backends.smtp.EmailBackend"):
        assert build_backend().timeout == 7.5  # type: ignore[attr-defined]


@pytest.mark.parametrize(("timeout", "visibility", "culprit"), [
    (200.0, 300, "EMAIL_TIMEOUT"),  # longer than half the visibility timeout
    (None, 100, "default SMTP timeout"),  # the 60 s default does not fit either
    (0.0, 300, "EMAIL_TIMEOUT"),
    (-1.0, 300, "EMAIL_TIMEOUT"),
])
def test_a_timeout_that_does_not_fit_the_visibility_budget_is_refused(
    timeout: float | None, visibility: int, culprit: str
) -> None:
    with override_settings(EMAIL_TIMEOUT=timeout, MAILQUEUE_VISIBILITY_TIMEOUT=visibility,
                           MAILQUEUE_DELIVERY_BACKEND="mailqueue.backends.smtp.EmailBackend"):
        with pytest.raises(ImproperlyConfigured, match=culprit):
            build_backend()


def test_a_silent_server_costs_one_wait_not_the_worker(
    smtp_settings: SMTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EMAIL_TIMEOUT unset: the first MAIL FROM is never answered; the send gives up, the next one works."""
    monkeypatch.setattr(session, "DEFAULT_SMTP_TIMEOUT", 1.0)
    smtp_settings.delay_at("mail", 600.0, times=1)
    with override_settings(EMAIL_TIMEOUT=None):
        smtp_session = new_session()
        done = threading.Event()
        results: list = []

        def send_two() -> None:
            results.append(smtp_session.send(envelope("stalled@example.com")))
            results.append(smtp_session.send(envelope("next@example.com")))
            done.set()

        threading.Thread(target=send_two, daemon=True).start()
        assert done.wait(20), "a silent SMTP server blocked the worker"
    stalled, following = results
    assert [outcome.status for outcome in stalled] == [Status.TRANSIENT]
    assert [outcome.status for outcome in following] == [Status.ACCEPTED]
    assert [message.rcpt_tos for message in smtp_settings.messages] == [["next@example.com"]]
