"""The delivery task, run by a real in-process worker against a real aiosmtpd server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from celery import Celery
from celery.result import AsyncResult

from mailqueue.conf import override_settings
from mailqueue.queue import keys
from mailqueue.queue.envelope import Envelope
from tests.fixtures.celery import delivered_pairs, final_report, make_payload, send_batch
from tests.fixtures.smtp import SMTPTestServer
from workers.deadletters import DeadLetters
from workers.report import LEDGER_REPLY
from workers.tasks import DEFERRED

pytestmark = pytest.mark.usefixtures("celery_worker")
TIMEOUT = 20



def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def wait_for_state(result: AsyncResult, state: str, timeout: float = TIMEOUT) -> None:
    wait_until(lambda: result.state == state, timeout)


def message_report(report: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = report["messages"][payload["message_id"]]
    return entry


def test_bulk_send_delivers_each_message_exactly_once_over_the_process_connections(
    celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    batches = [[make_payload(to=[f"user{b}-{i}@example.com"]) for i in range(50)] for b in range(6)]
    with override_settings(MAILQUEUE_CONNECTIONS_PER_PROCESS=3):
        results = [send_batch(celery_app, batch) for batch in batches]
        reports = [final_report(result, timeout=60) for result in results]

    assert [report["sent"] for report in reports] == [50] * 6
    pairs = delivered_pairs(smtp_server)
    expected = {(p["message_id"], p["recipients"][0]) for batch in batches for p in batch}
    assert set(pairs) == expected and set(pairs.values()) == {1}
    assert 2 <= smtp_server.connections <= 3  # the chunks of a round go out at once; every round reuses them


def test_transient_recipient_is_delivered_after_retries_which_are_counted(
    celery_app: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    smtp_server.fail_recipient("later@example.com", 451, "4.2.0 Mailbox busy", times=2)
    payload = make_payload(to=["later@example.com"])

    report = final_report(send_batch(celery_app, [payload]), timeout=TIMEOUT)

    assert (report["sent"], report["failed"], report["retries"]) == (1, 0, 2)
    assert message_report(report, payload)["attempts"] == 3
    assert message_report(report, payload)["recipients"]["later@example.com"]["code"] == 250
    assert delivered_pairs(smtp_server) == {(payload["message_id"], "later@example.com"): 1}
    wait_until(lambda: redis_client.hlen(keys.unacked_key()) == 0)  # every round was acknowledged


def test_permanent_failure_fails_at_once_without_retry_and_is_dead_lettered(
    celery_app: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    smtp_server.fail_recipient("nobody@example.com", 550, "5.1.1 No such user")
    payload = make_payload(to=["nobody@example.com"])

    report = final_report(send_batch(celery_app, [payload]), timeout=TIMEOUT)

    assert (report["sent"], report["failed"], report["retries"]) == (0, 1, 0)
    entry = message_report(report, payload)
    assert entry["status"] == "failed" and entry["attempts"] == 1
    assert entry["recipients"]["nobody@example.com"] == {
        "status": "failed", "code": 550, "reply": "5.1.1 No such user", "permanent": True}
    letter = DeadLetters(redis_client).get(entry["dead_letter"])
    assert letter.message_id == payload["message_id"]
    assert letter.error == {"code": 550, "reply": "5.1.1 No such user", "permanent": True}
    assert smtp_server.messages == []


def test_mixed_recipients_accepted_ones_are_not_sent_again_on_retry(
    celery_app: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    smtp_server.fail_recipient("busy@example.com", 451, "4.2.0 Busy", times=1)
    smtp_server.fail_recipient("gone@example.com", 550, "5.1.1 Gone")
    payload = make_payload(to=["ok@example.com", "busy@example.com", "gone@example.com"])

    report = final_report(send_batch(celery_app, [payload]), timeout=TIMEOUT)

    assert [received.rcpt_tos for received in smtp_server.messages] == [["ok@example.com"], ["busy@example.com"]]
    entry = message_report(report, payload)
    assert {address: detail["status"] for address, detail in entry["recipients"].items()} == {
        "ok@example.com": "accepted", "busy@example.com": "accepted", "gone@example.com": "failed"}
    assert (entry["status"], report["retries"]) == ("failed", 1)
    assert DeadLetters(redis_client).get(entry["dead_letter"]).recipients == ["gone@example.com"]


def test_out_of_retries_fails_with_the_last_error_and_is_dead_lettered(
    celery_app: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    smtp_server.fail_recipient("full@example.com", 452, "4.2.2 Mailbox full")
    payload = make_payload(to=["full@example.com"])

    with override_settings(MAILQUEUE_MAX_RETRIES=2):
        report = final_report(send_batch(celery_app, [payload]), timeout=TIMEOUT)

    entry = message_report(report, payload)
    assert (report["failed"], report["retries"], entry["attempts"]) == (1, 2, 3)
    assert entry["recipients"]["full@example.com"] == {
        "status": "failed", "code": 452, "reply": "4.2.2 Mailbox full", "permanent": False}
    letter = DeadLetters(redis_client).get(entry["dead_letter"])
    assert (letter.attempts, letter.error["code"]) == (3, 452)


def test_a_deferred_round_shows_state_deferred_with_the_partial_report(
    celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    smtp_server.fail_recipient("slow@example.com", 421, "4.3.2 Try again", times=1)
    payload = make_payload(to=["fast@example.com", "slow@example.com"])

    with override_settings(MAILQUEUE_RETRY_MIN_DELAY=1.0, MAILQUEUE_RETRY_MAX_DELAY=1.0):
        result = send_batch(celery_app, [payload])
        wait_for_state(result, DEFERRED)
        partial = result.info
        report = final_report(result, timeout=TIMEOUT)

    recipients = message_report(partial, payload)["recipients"]
    assert recipients["fast@example.com"]["status"] == "accepted"
    assert recipients["slow@example.com"] == {"status": "pending", "code": 421, "reply": "4.3.2 Try again",
                                              "permanent": False}
    assert partial["pending"] == 1 and partial["next_attempt_at"] > partial["started_at"]
    assert report["sent"] == 1 and report["next_attempt_at"] is None


def test_mail_is_delivered_when_the_smtp_server_comes_back(
    celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    smtp_server.stop()
    payloads = [make_payload(to=[f"u{i}@example.com"]) for i in range(3)]
    with override_settings(MAILQUEUE_MAX_RETRIES=50):
        result = send_batch(celery_app, payloads)
        wait_for_state(result, DEFERRED)
        time.sleep(0.5)  # a few more failed rounds while the server is down
        smtp_server.start()
        report = final_report(result, timeout=TIMEOUT)

    assert report["sent"] == 3 and report["retries"] >= 1
    assert set(delivered_pairs(smtp_server).values()) == {1} and len(smtp_server.messages) == 3


def test_rest_of_batch_is_not_attempted_once_the_server_is_unreachable(
    celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    smtp_server.stop()
    payloads = [make_payload(to=[f"u{i}@example.com"]) for i in range(4)]
    with override_settings(MAILQUEUE_RETRY_MIN_DELAY=5.0, MAILQUEUE_RETRY_MAX_DELAY=5.0):
        result = send_batch(celery_app, payloads)
        wait_for_state(result, DEFERRED)

    replies = [message_report(result.info, p)["recipients"][p["recipients"][0]]["reply"] for p in payloads]
    assert all("not attempted" not in reply for reply in replies[:2])
    assert all("not attempted" in reply for reply in replies[2:])


def test_a_long_batch_stops_at_half_the_visibility_timeout_and_defers_the_rest(
    celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    smtp_server.delay_at("mail", 0.2)
    payloads = [make_payload(to=[f"u{i}@example.com"]) for i in range(5)]
    with override_settings(MAILQUEUE_VISIBILITY_TIMEOUT=1, EMAIL_TIMEOUT=0.5):  # read by the task: a 0.5 s budget
        result = send_batch(celery_app, payloads)
        wait_for_state(result, DEFERRED)
        partial = result.info
        report = final_report(result, timeout=TIMEOUT)

    postponed = [p for p in payloads if "visibility timeout" in
                 message_report(partial, p)["recipients"][p["recipients"][0]]["reply"]]
    assert 1 <= len(postponed) <= 3
    assert report["sent"] == 5 and report["retries"] >= 1
    assert set(delivered_pairs(smtp_server).values()) == {1} and len(smtp_server.messages) == 5


def test_ledger_stops_a_second_run_from_sending_again(celery_app: Celery, smtp_server: SMTPTestServer) -> None:
    payload = make_payload(to=["once@example.com"])
    final_report(send_batch(celery_app, [payload]), timeout=TIMEOUT)

    again = final_report(send_batch(celery_app, [payload]), timeout=TIMEOUT)

    assert len(smtp_server.messages) == 1
    assert message_report(again, payload)["recipients"]["once@example.com"]["reply"] == LEDGER_REPLY
    assert again["sent"] == 1


def test_one_message_id_twice_in_a_batch_is_one_delivery_to_all_recipients(
    celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    payload = make_payload(to=["a@example.com", "b@example.com"])
    again = {**payload, "recipients": ["b@example.com", "c@example.com"]}

    report = final_report(send_batch(celery_app, [payload, again]), timeout=TIMEOUT)

    assert [received.rcpt_tos for received in smtp_server.messages] == [["a@example.com", "b@example.com",
                                                                         "c@example.com"]]
    assert report["sent"] == 1


def test_unreadable_payload_is_dead_lettered_and_the_rest_delivered(
    celery_app: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    good = make_payload()
    bad = {"v": 99, "message_id": "<bad@example.com>"}

    report = final_report(send_batch(celery_app, [bad, good]), timeout=TIMEOUT)

    assert (report["sent"], report["failed"]) == (1, 1)
    letter = DeadLetters(redis_client).get(report["messages"]["<bad@example.com>"]["dead_letter"])
    assert letter.payload == bad and "version 99" in letter.error["reply"]


def test_a_crashing_task_dead_letters_its_messages_with_the_traceback(
    celery_app: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    payloads = [make_payload(to=["a@example.com"]), make_payload(to=["b@example.com"])]
    # The worker thread builds its backend at its first send, under this setting.
    with override_settings(MAILQUEUE_DELIVERY_BACKEND="tests.workers.backends.ExplodingBackend"):
        report = final_report(send_batch(celery_app, payloads), timeout=TIMEOUT)

    assert report["failed"] == 2
    letters = DeadLetters(redis_client).list()
    assert sorted(letter.message_id for letter in letters) == sorted(p["message_id"] for p in payloads)
    assert all("bug in the delivery backend" in letter.error["traceback"] for letter in letters)


def test_totals_are_counted_for_stats(
    celery_app: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    smtp_server.fail_recipient("gone@example.com", 550, "5.1.1 Gone")
    smtp_server.fail_recipient("busy@example.com", 451, "4.2.0 Busy", times=1)
    payloads = [make_payload(to=["gone@example.com"]), make_payload(to=["busy@example.com"])]

    final_report(send_batch(celery_app, payloads), timeout=TIMEOUT)

    totals = {k.decode(): int(v) for k, v in redis_client.hgetall(keys.stats_key()).items()}
    assert totals == {"sent": 1, "failed": 1, "dead_lettered": 1, "retries": 1, "deferred": 1,
                      "smtp_2xx": 1, "smtp_4xx": 1, "smtp_5xx": 1}  # replies: one per recipient and attempt
    latency = {k.decode(): float(v) for k, v in redis_client.hgetall(keys.latency_key()).items()}
    assert latency["count"] == 1 and latency["sum"] > 0  # the one acceptance, for mailqueue metrics


def test_payload_recipients_are_the_envelope_the_server_sees(
    celery_app: Celery, smtp_server: SMTPTestServer
) -> None:
    payload = make_payload(to=["to@example.com"], from_email="Sender <bounce@example.com>")

    final_report(send_batch(celery_app, [payload]), timeout=TIMEOUT)

    received = smtp_server.messages[0]
    assert received.mail_from == "bounce@example.com"
    assert received.content.replace(b"\r\n", b"\n") == Envelope.from_payload(payload).message.replace(
        b"\r\n", b"\n")


def test_a_deferred_round_remembers_the_queue_it_came_from(
    celery_app: Celery, smtp_server: SMTPTestServer, redis_client: redis.Redis
) -> None:
    from mailqueue.conf import settings
    from workers.deferral import Deferrals

    smtp_server.fail_recipient("busy@example.com", 451, "4.2.0 Busy")
    with override_settings(MAILQUEUE_RETRY_MIN_DELAY=60.0, MAILQUEUE_RETRY_MAX_DELAY=60.0):
        result = send_batch(celery_app, [make_payload(to=["busy@example.com"])])
        deadline = time.monotonic() + TIMEOUT
        while (entry := Deferrals(redis_client).get(result.id)) is None and time.monotonic() < deadline:
            time.sleep(0.05)

    assert entry is not None and entry.queue == settings.MAILQUEUE_QUEUE
