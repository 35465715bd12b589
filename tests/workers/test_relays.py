"""MAILQUEUE_RELAYS as the workers read it: complete relays, errors naming the culprit."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from celery import Celery

from mailqueue.conf import override_settings, settings
from mailqueue.exceptions import ImproperlyConfigured
from tests.fixtures.celery import final_report, make_payload, send_batch
from tests.fixtures.smtp import SMTP_PASSWORD, SMTP_USERNAME, SMTPTestServer
from workers import fanout
from workers.app import check_configuration
from workers.deadletters import DeadLetters
from workers.ratelimit import Rate
from workers.relays import UnknownRelay, relay, relays

BULK = {"EMAIL_HOST": "bulk.example.net", "EMAIL_PORT": 2587, "EMAIL_HOST_USER": "bulk-user",
        "EMAIL_HOST_PASSWORD": "bulk-s3cret", "EMAIL_USE_TLS": True, "RATE_LIMIT": "50/s"}


def test_without_relays_there_is_the_default_relay_with_the_fleet_rate() -> None:
    with override_settings(MAILQUEUE_RATE_LIMIT="20/s"):
        (only,) = relays().values()
    assert (only.name, only.is_default, only.rate) == ("default", True, Rate(20, 1.0))


def test_a_relay_maps_its_keys_to_the_smtp_backend_arguments() -> None:
    with override_settings(MAILQUEUE_RELAYS={"bulk": BULK}):
        bulk = relay("bulk")
    assert dict(bulk.arguments) == {"host": "bulk.example.net", "port": 2587, "username": "bulk-user",
                                    "password": "bulk-s3cret", "use_tls": True}
    assert bulk.rate == Rate(50, 1.0)
    assert "bulk-s3cret" not in repr(bulk) and "bulk-s3cret" not in bulk.describe()


def test_relays_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILQUEUE_RELAYS", json.dumps({"bulk": BULK}))
    assert relay("bulk").arguments["host"] == "bulk.example.net"
    assert "bulk-s3cret" not in json.dumps(settings.as_dict())


def test_an_unknown_relay_names_it_and_the_known_ones() -> None:
    with override_settings(MAILQUEUE_RELAYS={"bulk": BULK}), pytest.raises(UnknownRelay) as caught:
        relay("transactional")
    assert str(caught.value).startswith("unknown relay 'transactional'")
    assert "'default', 'bulk'" in str(caught.value)


@pytest.mark.parametrize(("value", "message"), [
    ([], "must be a dict"),
    ({"default": BULK}, "the relay 'default' is the EMAIL_\\* settings"),
    ({"bad name": BULK}, "not a relay name"),
    ({"bulk": "smtp://x"}, r"MAILQUEUE_RELAYS\['bulk'\] must be a dict"),
    ({"bulk": {**BULK, "EMAIL_PASSWORD": "x"}}, "unknown key\\(s\\) 'EMAIL_PASSWORD'"),
    ({"bulk": {**BULK, "EMAIL_PORT": "2587"}}, r"\['EMAIL_PORT'\] must be int"),
    ({"bulk": {**BULK, "EMAIL_USE_TLS": 1}}, r"\['EMAIL_USE_TLS'\] must be bool"),
    ({"bulk": {**BULK, "EMAIL_HOST_PASSWORD": 7}}, r"must be str, got <hidden>"),
    ({"bulk": {"EMAIL_PORT": 25}}, "must give EMAIL_HOST"),
    ({"bulk": {**BULK, "EMAIL_USE_SSL": True}}, "mutually exclusive"),
    ({"bulk": {**BULK, "RATE_LIMIT": "fast"}}, r"\['RATE_LIMIT'\]='fast' is not a rate"),
    ({"bulk": {**BULK, "CONNECTIONS_PER_PROCESS": 0}}, r"\['CONNECTIONS_PER_PROCESS'\] must be at least 1"),
    ({"bulk": {**BULK, "CONNECTIONS_PER_PROCESS": "2"}}, r"\['CONNECTIONS_PER_PROCESS'\] must be int"),
    ({"bulk": {**BULK, "MAX_CONNECTIONS": 0}}, r"\['MAX_CONNECTIONS'\] must be at least 1"),
    ({"bulk": {**BULK, "MAX_CONNECTIONS": 2.5}}, r"\['MAX_CONNECTIONS'\] must be int"),
])
def test_a_bad_relay_is_an_error_naming_it(value: Any, message: str) -> None:
    with override_settings(MAILQUEUE_RELAYS=value), pytest.raises(ImproperlyConfigured, match=message):
        relays()


def test_a_bad_fleet_rate_is_an_error_naming_the_setting() -> None:
    with override_settings(MAILQUEUE_RATE_LIMIT="20 per second"), pytest.raises(
            ImproperlyConfigured, match="MAILQUEUE_RATE_LIMIT='20 per second' is not a rate"):
        relays()


@pytest.mark.parametrize("value", [0, -3, True])
def test_a_bad_fleet_connection_limit_is_an_error_naming_the_setting(value: Any) -> None:
    with override_settings(MAILQUEUE_MAX_CONNECTIONS=value), pytest.raises(
            ImproperlyConfigured, match="MAILQUEUE_MAX_CONNECTIONS must be at least 1"):
        relays()


def test_a_process_never_opens_more_connections_than_the_fleet_may() -> None:
    """The relay's fleet-wide limit also caps each process's threads for it (workers.fanout)."""
    with override_settings(MAILQUEUE_RELAYS={"bulk": {**BULK, "MAX_CONNECTIONS": 3}}, MAILQUEUE_MAX_CONNECTIONS=5,
                           MAILQUEUE_CONNECTIONS_PER_PROCESS=8):
        assert (relay("default").max_connections, relay("bulk").max_connections) == (5, 3)
        assert (fanout.width(relay("default")), fanout.width(relay("bulk")), fanout.width()) == (5, 3, 8)


def test_a_change_of_settings_is_seen_by_the_next_round() -> None:
    with override_settings(MAILQUEUE_RELAYS={"bulk": BULK}):
        assert "bulk" in relays()
    with override_settings(MAILQUEUE_RELAYS={"bulk": {**BULK, "EMAIL_HOST": "other.example.net"}}):
        assert relay("bulk").arguments["host"] == "other.example.net"
    assert list(relays()) == ["default"]


# --- Delivery: a real worker, real servers ---------------------------------------------------------


def relay_payload(relay: str, to: str) -> dict[str, Any]:
    payload = make_payload(to=[to])
    payload.update(v=2, relay=relay)
    return payload


@pytest.mark.usefixtures("celery_worker")
def test_a_relay_the_worker_does_not_know_is_dead_lettered_naming_it_and_never_sent(
    celery_app: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    unknown, known = relay_payload("bulk", "a@example.com"), make_payload(to=["b@example.com"])

    report = final_report(send_batch(celery_app, [unknown, known]), timeout=20)

    entry = report["messages"][unknown["message_id"]]
    assert (entry["status"], report["sent"], report["failed"]) == ("failed", 1, 1)
    letter = DeadLetters(redis_client).get(entry["dead_letter"])
    assert letter.error["reply"].startswith("unknown relay 'bulk'")
    assert letter.payload == unknown  # kept whole: configure the relay, then requeue
    assert [m.rcpt_tos for m in smtp_server.messages] == [["b@example.com"]]


@pytest.mark.usefixtures("celery_worker")
def test_each_relay_delivers_over_its_own_connection_with_its_own_credentials(
    celery_app: Celery, smtp_server: SMTPTestServer, smtp_auth_server: SMTPTestServer
) -> None:
    bulk = {"EMAIL_HOST": smtp_auth_server.host, "EMAIL_PORT": smtp_auth_server.port,
            "EMAIL_HOST_USER": SMTP_USERNAME, "EMAIL_HOST_PASSWORD": SMTP_PASSWORD, "EMAIL_TIMEOUT": 5.0}
    payloads = [relay_payload("bulk", "b1@example.com"), make_payload(to=["d1@example.com"]),
                relay_payload("bulk", "b2@example.com"), make_payload(to=["d2@example.com"])]
    with override_settings(MAILQUEUE_RELAYS={"bulk": bulk}, MAILQUEUE_CONNECTIONS_PER_PROCESS=1):
        report = final_report(send_batch(celery_app, payloads), timeout=20)

    assert report["sent"] == 4
    assert [m.rcpt_tos for m in smtp_auth_server.messages] == [["b1@example.com"], ["b2@example.com"]]
    assert all(m.authenticated for m in smtp_auth_server.messages)
    assert [m.rcpt_tos for m in smtp_server.messages] == [["d1@example.com"], ["d2@example.com"]]
    assert not any(m.authenticated for m in smtp_server.messages)
    assert (smtp_auth_server.connections, smtp_server.connections) == (1, 1)  # kept open across messages


@pytest.mark.usefixtures("celery_worker")
def test_a_relay_with_its_own_connection_cap_gets_no_more_connections_than_that(
    celery_app: Celery, smtp_server: SMTPTestServer, smtp_auth_server: SMTPTestServer
) -> None:
    bulk = {"EMAIL_HOST": smtp_auth_server.host, "EMAIL_PORT": smtp_auth_server.port, "EMAIL_TIMEOUT": 5.0,
            "EMAIL_HOST_USER": SMTP_USERNAME, "EMAIL_HOST_PASSWORD": SMTP_PASSWORD, "CONNECTIONS_PER_PROCESS": 1}
    smtp_server.delay_at("data", 0.01)
    smtp_auth_server.delay_at("data", 0.01)
    capped = [relay_payload("bulk", f"b{i}@example.com") for i in range(40)]
    free = [make_payload(to=[f"d{i}@example.com"]) for i in range(40)]
    with override_settings(MAILQUEUE_RELAYS={"bulk": bulk}, MAILQUEUE_CONNECTIONS_PER_PROCESS=4):
        reports = [final_report(send_batch(celery_app, batch), timeout=30) for batch in (capped, free)]

    assert [report["sent"] for report in reports] == [40, 40]
    assert smtp_auth_server.connections == 1  # the relay's own cap
    assert 2 <= smtp_server.connections <= 4  # the default relay: the process's


@pytest.mark.usefixtures("celery_worker")
def test_a_relay_refusing_its_login_fails_the_message_which_never_goes_through_another_relay(
    celery_app: Celery, smtp_server: SMTPTestServer, smtp_auth_server: SMTPTestServer
) -> None:
    bulk = {"EMAIL_HOST": smtp_auth_server.host, "EMAIL_PORT": smtp_auth_server.port,
            "EMAIL_HOST_USER": SMTP_USERNAME, "EMAIL_HOST_PASSWORD": "wrong", "EMAIL_TIMEOUT": 5.0}
    payload = relay_payload("bulk", "b1@example.com")
    with override_settings(MAILQUEUE_RELAYS={"bulk": bulk}, MAILQUEUE_MAX_RETRIES=1):
        report = final_report(send_batch(celery_app, [payload]), timeout=20)

    assert (report["sent"], report["failed"]) == (0, 1)
    assert smtp_auth_server.messages == [] and smtp_server.messages == []


def test_a_worker_with_a_bad_relay_refuses_to_start_naming_it(celery_app: Celery) -> None:
    with override_settings(MAILQUEUE_RELAYS={"bulk": {"EMAIL_PORT": 25}}), pytest.raises(
            ImproperlyConfigured, match=r"will not start: MAILQUEUE_RELAYS\['bulk'\] must give EMAIL_HOST"):
        check_configuration(celery_app)
    slow = {"bulk": {"EMAIL_HOST": "bulk.example.net", "EMAIL_TIMEOUT": 1000.0}}
    with override_settings(MAILQUEUE_RELAYS=slow), pytest.raises(
            ImproperlyConfigured, match=r"\['bulk'\]\['EMAIL_TIMEOUT'\] \(1000s\) must be at most half"):
        check_configuration(celery_app)
