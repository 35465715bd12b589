"""Stopping a worker as systemd does: signals to the whole process group.

systemd's default ``KillMode=control-group`` sends SIGTERM to the main process and every pool
process at once, then SIGKILL to whatever is left after ``TimeoutStopSec``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import pytest
from celery import Celery

from tests.fixtures.celery import delivered_pairs, make_payload, send_batch
from tests.fixtures.smtp import SMTPTestServer


@pytest.mark.faults
@pytest.mark.timeout(60)
def test_sigterm_to_the_whole_group_finishes_the_messages_in_hand_and_sends_none_twice(
    worker_process: Any, celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    smtp_server.delay_at("data", 2.0)  # every message is in hand for 2 s
    batches = [[make_payload(to=[f"t{b}-{i}@example.com", f"u{b}-{i}@example.com"]) for i in range(3)]
               for b in range(3)]
    worker = worker_process(name="stopped", concurrency=2, MAILQUEUE_VISIBILITY_TIMEOUT=20)
    results = [send_batch(celery_app, batch) for batch in batches]
    time.sleep(1.0)  # both pool processes are waiting for a 250

    os.killpg(worker.process.pid, signal.SIGTERM)
    try:
        worker.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker did not stop after SIGTERM; its log:\n{worker.log}")

    worker_process(name="successor", concurrency=2, MAILQUEUE_VISIBILITY_TIMEOUT=20)
    reports = [result.get(timeout=30) for result in results]

    pairs = delivered_pairs(smtp_server)
    assert set(pairs) == {(p["message_id"], r) for batch in batches for p in batch for r in p["recipients"]}
    assert {pair for pair, count in pairs.items() if count > 1} == set(), "sent twice"
    assert [report["sent"] for report in reports] == [3] * 3
    assert "WorkerLostError" not in worker.log, "a pool process died mid-message"


@pytest.mark.faults
@pytest.mark.timeout(60)
def test_a_cold_shutdown_still_ends_every_pool_process_after_its_message(
    worker_process: Any, celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    """SIGQUIT to the main process: billiard terminates its pool with SIGTERM, which the pool
    processes defer until the task in hand ends; then they exit, and so does the worker."""
    smtp_server.delay_at("data", 1.0)
    batch = [make_payload(to=[f"cold-{i}@example.com"]) for i in range(2)]
    worker = worker_process(name="cold", concurrency=2, MAILQUEUE_VISIBILITY_TIMEOUT=20)
    result = send_batch(celery_app, batch)
    time.sleep(0.5)

    os.kill(worker.process.pid, signal.SIGQUIT)
    try:
        worker.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker hung in its cold shutdown; its log:\n{worker.log}")
    children = subprocess.run(["pgrep", "-g", str(worker.process.pid)], capture_output=True, text=True).stdout
    assert children.strip() == "", "a pool process outlived its worker"

    worker_process(name="after-cold", concurrency=2, MAILQUEUE_VISIBILITY_TIMEOUT=3, EMAIL_TIMEOUT=1.5)
    assert result.get(timeout=30)["sent"] == 2
    assert {pair for pair, count in delivered_pairs(smtp_server).items() if count > 1} == set(), "sent twice"


@pytest.mark.faults
@pytest.mark.timeout(60)
def test_sigkill_of_the_whole_group_then_a_new_worker_loses_nothing(
    worker_process: Any, celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    """The crash window: a process killed between a 250 and its ledger write may send that one
    recipient again (README, "Delivery guarantees"). Nothing is lost."""
    smtp_server.delay_at("data", 0.5)
    batches = [[make_payload(to=[f"k{b}-{i}@example.com"]) for i in range(4)] for b in range(3)]
    fleet = {"concurrency": 2, "MAILQUEUE_VISIBILITY_TIMEOUT": 3, "EMAIL_TIMEOUT": 1.5}
    worker = worker_process(name="killed", **fleet)
    results = [send_batch(celery_app, batch) for batch in batches]
    smtp_server.wait_for_messages(2, timeout=15)

    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait(timeout=10)
    worker_process(name="heir", **fleet)
    reports = [result.get(timeout=30) for result in results]

    pairs = delivered_pairs(smtp_server)
    assert set(pairs) == {(p["message_id"], r) for batch in batches for p in batch for r in p["recipients"]}
    assert sum(count - 1 for count in pairs.values()) <= 2, "more duplicates than pool processes killed"
    assert [report["sent"] for report in reports] == [4] * 3
