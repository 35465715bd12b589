"""The workers' Celery app: its configuration, and real ``celery -A workers worker`` processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker

from mailqueue.conf import override_settings
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.queue import keys
from tests.fixtures.celery import LoggedProcess, delivered_pairs, make_payload, send_batch
from tests.fixtures.smtp import SMTPTestServer
from tests.queue_inspection import decode_task
from workers.app import DeliveryLifecycle, check_configuration, create_app, make_poller, restore_interval
from workers.deferral import DeferredTask
from workers.ledger import Ledger


def test_app_is_configured_for_at_least_once_delivery(celery_app: Celery) -> None:
    conf = celery_app.conf
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost, conf.worker_prefetch_multiplier) == (True, True, 1)
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"


def test_app_reads_broker_queue_and_visibility_timeout_from_settings(redis_url: str) -> None:
    with override_settings(MAILQUEUE_BROKER_URL=redis_url, MAILQUEUE_QUEUE="mail-eu", MAILQUEUE_VISIBILITY_TIMEOUT=60):
        conf = create_app().conf
        assert (conf.broker_url, conf.result_backend, conf.task_default_queue) == (redis_url, redis_url, "mail-eu")
    transport = conf.broker_transport_options
    assert transport["visibility_timeout"] == 60
    assert (transport["unacked_restore_interval"], transport["unacked_restore_throttle"]) == (10.0, 1)


def test_creating_the_app_reads_no_configuration() -> None:
    assert not create_app().configured


def test_dead_worker_sweep_runs_at_a_fraction_of_the_visibility_timeout() -> None:
    assert [restore_interval(timeout) for timeout in (2, 12, 300)] == [1.0, 3.0, 10.0]


def test_the_delivery_task_is_registered_under_the_producer_s_name(celery_app: Celery) -> None:
    # celery_app, not a bare create_app(): listing tasks reads the configuration, and with no
    # broker configured that would start (and leave running) the embedded Redis.
    assert "mailqueue.deliver" in celery_app.tasks


def test_a_failing_lifecycle_hook_is_logged_not_fatal(celery_app: Celery, caplog: pytest.LogCaptureFixture) -> None:
    worker = SimpleNamespace(app=celery_app)
    step = DeliveryLifecycle(worker)
    with override_settings(MAILQUEUE_DEFERRED_POLL_INTERVAL=0.0):  # the poller refuses this
        step.start(worker)
    step.stop(worker)
    assert step.pollers == []
    assert "Could not start the deferred-retry poller" in caplog.text


def test_threads_pool_keeps_at_most_the_process_connections(celery_app: Celery, smtp_server: SMTPTestServer) -> None:
    batches = [[make_payload(to=[f"u{b}-{i}@example.com"]) for i in range(20)] for b in range(6)]
    with override_settings(MAILQUEUE_CONNECTIONS_PER_PROCESS=3), \
            start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=30):
        reports = [result.get(timeout=30) for result in [send_batch(celery_app, batch) for batch in batches]]

    assert sum(report["sent"] for report in reports) == 120 and len(smtp_server.messages) == 120
    assert 1 <= smtp_server.connections <= 3  # the process's connections, reused by every task


def test_worker_shutdown_closes_its_smtp_connection(celery_app: Celery, smtp_server: SMTPTestServer) -> None:
    assert smtp_server.controller is not None
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        send_batch(celery_app, [make_payload()]).get(timeout=20)
        assert smtp_server.controller.protocols[-1].transport is not None  # kept open between tasks

    deadline = time.monotonic() + 5
    while smtp_server.controller.protocols[-1].transport is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert smtp_server.controller.protocols[-1].transport is None


def test_a_celery_worker_process_delivers_and_reports(
    worker_process: Any, celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    smtp_server.fail_recipient("busy@example.com", 451, "4.2.0 Busy", times=1)
    worker = worker_process()
    payloads = [make_payload(to=["ok@example.com"]), make_payload(to=["busy@example.com"])]

    report = send_batch(celery_app, payloads).get(timeout=30)

    assert (report["sent"], report["retries"]) == (2, 1)
    assert "worker1@" in report["hostname"]
    worker.stop()
    assert worker.process.returncode == 0



@pytest.mark.timeout(120)
def test_sigkill_of_the_whole_worker_loses_nothing_and_sends_nothing_twice(
    worker_process: Any, celery_app: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    smtp_server.delay_at("mail", 0.004)  # slow enough to be killed mid-run, mostly outside the gap
    batches = [[make_payload(to=[f"u{b}-{i}@example.com", f"v{b}-{i}@example.com"]) for i in range(50)]
               for b in range(8)]
    first = worker_process(name="doomed", concurrency=2, MAILQUEUE_VISIBILITY_TIMEOUT=3, EMAIL_TIMEOUT=1.5)
    results = [send_batch(celery_app, batch) for batch in batches]
    smtp_server.wait_for_messages(60, timeout=30)
    time.sleep(0.05)  # not right at an acceptance

    first.kill()
    time.sleep(0.5)  # a body and its dot already on the wire are still accepted by the server: the gap
    received_before = delivered_pairs(smtp_server)
    ledger = Ledger(redis_client, ttl=60)
    recorded = {(p["message_id"], r) for batch in batches for p in batch for r in ledger.accepted(p["message_id"])}
    in_the_gap = set(received_before) - recorded  # accepted by the server, ledger write never made
    in_flight = redis_client.hlen(keys.unacked_key())
    assert in_flight >= 1 and len(received_before) < 800, "the worker finished before it was killed"

    started = time.monotonic()
    worker_process(name="rescuer", concurrency=2, MAILQUEUE_VISIBILITY_TIMEOUT=3, EMAIL_TIMEOUT=1.5)
    reports = [result.get(timeout=60) for result in results]

    assert [report["sent"] for report in reports] == [50] * 8
    pairs = delivered_pairs(smtp_server)
    expected = {(p["message_id"], r) for batch in batches for p in batch for r in p["recipients"]}
    assert set(pairs) == expected
    twice = {pair for pair, count in pairs.items() if count > 1}
    assert twice <= in_the_gap, f"sent twice outside the acceptance/ledger gap: {twice - in_the_gap}"
    assert time.monotonic() - started < 30


def test_retry_round_shows_monitoring_a_summary_not_the_mail_or_report(
    celery_app: Celery, redis_client: redis.Redis
) -> None:
    payloads = [make_payload(to=["a@example.com"]), make_payload(to=["b@example.com"])]
    entry = DeferredTask(task_id="retry-1", payloads=payloads, attempt=2, report={"secret": "report"}, due=0.0)
    poller = make_poller(celery_app)
    poller.deferrals.defer(entry)

    assert poller.run_once() == 1

    [raw] = redis_client.lrange(keys.queue_key(), 0, -1)
    headers = decode_task(raw).headers
    assert headers["id"] == "retry-1"
    assert headers["argsrepr"] == f"[2 message(s): {payloads[0]['message_id']} and 1 more]"
    assert headers["kwargsrepr"] == "{'attempt': 2}"


def test_poller_sends_a_round_back_to_the_queue_it_came_from(celery_app: Celery, redis_client: redis.Redis) -> None:
    # Sent with get_connection(queue="urgent"), retried on "urgent", not on MAILQUEUE_QUEUE.
    entry = DeferredTask(task_id="retry-urgent", payloads=[make_payload(to=["a@example.com"])], attempt=1,
                         report={}, due=0.0, queue="urgent-test")
    poller = make_poller(celery_app)
    poller.deferrals.defer(entry)
    try:
        assert poller.run_once() == 1
        [raw] = redis_client.lrange("urgent-test", 0, -1)
        assert decode_task(raw).headers["id"] == "retry-urgent"
        assert redis_client.llen(keys.queue_key()) == 0
    finally:
        redis_client.delete("urgent-test")


def test_check_configuration_refuses_contradictory_smtp_settings(celery_app: Celery) -> None:
    with override_settings(EMAIL_USE_TLS=True, EMAIL_USE_SSL=True):
        with pytest.raises(ImproperlyConfigured, match="misconfigured.*EMAIL_USE_TLS"):
            check_configuration(celery_app)


def test_check_configuration_refuses_an_impossible_retry_policy(celery_app: Celery) -> None:
    with override_settings(MAILQUEUE_RETRY_MIN_DELAY=10.0, MAILQUEUE_RETRY_MAX_DELAY=1.0):
        with pytest.raises(ImproperlyConfigured, match="misconfigured"):
            check_configuration(celery_app)


@pytest.mark.parametrize(("misconfiguration", "culprit"), [
    ({"MAILQUEUE_LEDGER_TTL": "0"}, "ledger TTL"),
    ({"EMAIL_USE_TLS": "1", "EMAIL_USE_SSL": "1"}, "EMAIL_USE_TLS/EMAIL_USE_SSL"),
    ({"MAILQUEUE_DELIVERY_BACKEND": "no.such.Backend"}, "MAILQUEUE_DELIVERY_BACKEND"),
    ({"MAILQUEUE_MAX_RETRIES": "-3"}, "MAILQUEUE_MAX_RETRIES"),
])
def test_misconfigured_worker_process_refuses_to_start_in_one_line_and_leaves_the_mail_queued(
    worker_settings: Any, celery_app: Celery, redis_client: redis.Redis, misconfiguration: dict[str, str],
    culprit: str,
) -> None:
    send_batch(celery_app, [make_payload()])
    env = {**worker_settings.env(), **misconfiguration}
    completed = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "solo", "-Q",
         worker_settings["MAILQUEUE_QUEUE"]],
        env=env, capture_output=True, text=True, timeout=60,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 78  # EX_CONFIG
    [line] = [line for line in output.splitlines() if "CRITICAL" in line or "ERROR" in line]
    assert "misconfigured and will not start" in line and culprit in line
    assert "Traceback" not in output
    assert redis_client.llen(worker_settings["MAILQUEUE_QUEUE"]) == 1


def test_celery_a_workers_worker_finds_the_settings_module_in_the_current_folder(
    worker_settings: Any, celery_app: Celery, smtp_server: SMTPTestServer, tmp_path: Path
) -> None:
    """The README's `MAILQUEUE_SETTINGS=mysite.mail celery -A workers worker`, run from the project folder."""
    project = tmp_path / "project"
    (project / "mysite").mkdir(parents=True)
    (project / "mysite" / "__init__.py").write_text("")
    (project / "mysite" / "mail.py").write_text(f"EMAIL_HOST = {smtp_server.host!r}\nEMAIL_PORT = {smtp_server.port}\n")
    env = {**worker_settings.env(), "MAILQUEUE_SETTINGS": "mysite.mail"}
    del env["EMAIL_HOST"], env["EMAIL_PORT"]  # only the settings module says where the relay is
    celery = str(Path(sys.executable).with_name("celery"))  # the console script: `python -m` would add the folder
    command = [celery, "-A", "workers", "worker", "--pool", "solo", "--loglevel=INFO",
               "--without-mingle", "--without-gossip"]
    worker = LoggedProcess(command, env=env, cwd=project, log_path=tmp_path / "worker.log").wait_ready()
    try:
        report = send_batch(celery_app, [make_payload(to=["found@example.com"])]).get(timeout=30)
    finally:
        worker.kill()
    assert report["sent"] == 1
    assert [message.rcpt_tos for message in smtp_server.messages] == [["found@example.com"]]
