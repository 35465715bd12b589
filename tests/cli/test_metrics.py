"""``mailqueue metrics``: a real Prometheus scrape of real deliveries, parsed with prometheus_client."""

from __future__ import annotations

import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from mailqueue.devserver import free_port
from mailqueue.queue import keys
from tests.cli.conftest import MAILQUEUE, CLIWorker, Run, assert_one_line_error
from workers.connection_slots import ConnectionSlots

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str, *, deadline: float = 15.0) -> Samples:
    """Every sample of one scrape, keyed by (sample name, sorted labels); waits for the server."""
    give_up = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
            break
        except OSError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.1)
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def metrics(fleet_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``metrics(env=None)``: start ``mailqueue metrics`` on a free port; returns its /metrics URL."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str] | None = None) -> str:
        port = free_port()
        process = subprocess.Popen([MAILQUEUE, "metrics", "--port", str(port)], env=env or fleet_env, cwd=tmp_path,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(process)
        return f"http://127.0.0.1:{port}/metrics"

    try:
        yield start
    finally:
        for process in started:
            process.kill()
            process.wait(timeout=10)


def send(mailqueue: Run, address: str) -> str:
    result = mailqueue("send", "--to", address, "--subject", f"To {address}", "--body", "hi")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.timeout(60)
def test_counters_replies_latency_and_gauges_after_real_deliveries(
    mailqueue: Run, start_worker: Callable[..., CLIWorker], smtp_server: Any, metrics: Callable[..., str]
) -> None:
    smtp_server.fail_recipient("gone@example.com", 550, "5.1.1 No such user")
    smtp_server.fail_recipient("later@example.com", 451, "4.2.0 Busy", times=1)
    url = metrics()
    before = scrape(url)
    assert value(before, "mailqueue_broker_up") == 1
    assert value(before, "mailqueue_delivery_latency_seconds_count") == 0
    start_worker()
    started = time.time()
    tasks = [send(mailqueue, address) for address in ("bob@example.com", "gone@example.com", "later@example.com")]
    for task_id in tasks:
        assert mailqueue("status", task_id, "--wait", "--timeout", "20").returncode == 0
    elapsed = time.time() - started
    samples = scrape(url)

    # What the SMTP server saw: bob and later accepted (later on its second try), gone refused.
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == ["bob@example.com", "later@example.com"]
    assert value(samples, "mailqueue_delivered_total") == 2
    assert value(samples, "mailqueue_failed_total") == 1
    assert value(samples, "mailqueue_dead_lettered_total") == 1
    assert value(samples, "mailqueue_retries_total") == 1
    assert value(samples, "mailqueue_deferred_total") == 1
    replies = {c: value(samples, "mailqueue_smtp_replies_total", **{"class": c}) for c in ("2xx", "4xx", "5xx", "none")}
    assert replies == {"2xx": 2, "4xx": 1, "5xx": 1, "none": 0}

    # One latency observation per acceptance, each between 0 and the time the whole test took.
    assert value(samples, "mailqueue_delivery_latency_seconds_count") == replies["2xx"] == 2
    assert value(samples, "mailqueue_delivery_latency_seconds_bucket", le="+Inf") == 2
    assert 0 < value(samples, "mailqueue_delivery_latency_seconds_sum") <= 2 * elapsed
    assert value(samples, "mailqueue_delivery_latency_seconds_bucket", le="0.1") <= 2

    assert value(samples, "mailqueue_queue_depth", queue="mailqueue") == 0
    assert value(samples, "mailqueue_queue_oldest_age_seconds", queue="mailqueue") == 0
    assert value(samples, "mailqueue_in_flight") == 0
    assert value(samples, "mailqueue_deferred_tasks") == value(samples, "mailqueue_deferred_messages") == 0
    assert value(samples, "mailqueue_dead_letters") == 1
    assert value(samples, "mailqueue_quarantined") == 0


@pytest.mark.timeout(30)
def test_queue_depth_and_age_of_waiting_mail(mailqueue: Run, metrics: Callable[..., str]) -> None:
    send(mailqueue, "one@example.com")
    send(mailqueue, "two@example.com")
    time.sleep(1.0)
    samples = scrape(metrics())
    assert value(samples, "mailqueue_queue_depth", queue="mailqueue") == 2
    assert 1.0 <= value(samples, "mailqueue_queue_oldest_age_seconds", queue="mailqueue") < 30
    assert value(samples, "mailqueue_delivered_total") == 0


@pytest.mark.timeout(30)
def test_a_relays_open_connections_and_its_limit(
    metrics: Callable[..., str], fleet_env: dict[str, str], redis_url: str
) -> None:
    assert not any(name == "mailqueue_relay_connections" for name, _ in scrape(metrics()))  # no limit: no series
    fleet_env["MAILQUEUE_MAX_CONNECTIONS"] = "3"
    slots = ConnectionSlots(redis.Redis.from_url(redis_url), "default", 3)
    slots.take("one")
    slots.take("two")
    samples = scrape(metrics())
    assert value(samples, "mailqueue_relay_connections", relay="default") == 2
    assert value(samples, "mailqueue_relay_connections_limit", relay="default") == 3


@pytest.mark.timeout(30)
def test_a_scrape_with_the_broker_down_answers_broker_up_0(
    fleet_env: dict[str, str], metrics: Callable[..., str]
) -> None:
    url = metrics(env={**fleet_env, "MAILQUEUE_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"})
    for _ in range(2):  # and it keeps answering
        samples = scrape(url)
        assert value(samples, "mailqueue_broker_up") == 0
        assert ("mailqueue_delivered_total", ()) not in samples  # missing, not a false zero


@pytest.mark.faults
@pytest.mark.timeout(30)
def test_the_broker_dying_and_coming_back_under_a_running_exporter(
    fleet_env: dict[str, str], metrics: Callable[..., str], own_redis: Any
) -> None:
    broker = own_redis()
    broker.client().hset(keys.stats_key(), mapping={"sent": 7, "smtp_2xx": 7})
    url = metrics(env={**fleet_env, "MAILQUEUE_BROKER_URL": broker.url})
    assert (value(scrape(url), "mailqueue_broker_up"), value(scrape(url), "mailqueue_delivered_total")) == (1, 7)
    broker.kill()
    started = time.monotonic()
    assert value(scrape(url), "mailqueue_broker_up") == 0
    assert time.monotonic() - started < 10  # answered within a scrape_timeout, not hung on Redis
    broker.start()  # the data are gone (no persistence): the counters restart from zero, as Prometheus expects
    samples = scrape(url)
    assert (value(samples, "mailqueue_broker_up"), value(samples, "mailqueue_delivered_total")) == (1, 0)


@pytest.mark.timeout(30)
def test_a_port_in_use_is_one_line_and_a_bad_port_a_usage_error(mailqueue: Run, fleet_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = assert_one_line_error(mailqueue("metrics", "--port", str(port), timeout=20))
    assert f"port {port}" in line and "already in use" in line
    line = assert_one_line_error(mailqueue("metrics", "--port", "70000"), status=2)
    assert "70000 is not a port number" in line


def test_help_says_what_is_served(mailqueue: Run) -> None:
    result = mailqueue("metrics", "--help")
    assert result.returncode == 0
    assert "/metrics" in result.stdout and "--port" in result.stdout and "mailqueue_broker_up" in result.stdout


@pytest.mark.timeout(30)
def test_the_alert_rules_parse_and_use_only_exposed_metrics(
    fleet_env: dict[str, str], metrics: Callable[..., str]
) -> None:
    config = yaml.safe_load((ROOT / "config/prometheus/prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9808"]
    rules = yaml.safe_load((ROOT / "config/prometheus/alerts.yml").read_text())["groups"][0]["rules"]
    assert {"MailqueueDeadLettersGrowing", "MailqueueQueueAge", "MailqueueNoWorkers"} <= {r["alert"] for r in rules}
    exposed = {name for name, _labels in scrape(metrics())}
    used = {name for rule in rules for name in re.findall(r"\bmailqueue_[a-z_]+", rule["expr"])}
    assert used and used <= exposed, used - exposed
    readme = (ROOT / "README.md").read_text()
    assert all(rule["alert"] in readme for rule in rules)
