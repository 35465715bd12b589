"""``mailqueue dead list|show|requeue|purge`` on dead letters the workers really made."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.cli.conftest import MAILQUEUE, CLIWorker, Run, assert_one_line_error
from tests.fixtures.celery import make_payload
from tests.queue_inspection import queued_tasks
from workers.deadletters import DeadLetters


def bounce(mailqueue: Run, *addresses: str) -> list[dict[str, Any]]:
    """Send one message per address (each refused with 550) and return the dead letters."""
    for address in addresses:
        task_id = mailqueue("send", "--to", address, "--subject", f"To {address}", "--body", "hi").stdout.strip()
        assert mailqueue("status", task_id, "--wait", "--timeout", "20").returncode == 0
    letters = json.loads(mailqueue("dead", "list", "--json").stdout)
    assert len(letters) == len(addresses)
    return list(letters)


@pytest.fixture
def bouncing(start_worker: Callable[..., CLIWorker], smtp_server: Any) -> Any:
    for address in ("gone@example.com", "lost@example.com", "nobody@example.com"):
        smtp_server.fail_recipient(address, 550, "5.1.1 No such user")
    start_worker()
    return smtp_server


def test_list_is_empty_at_first(mailqueue: Run, fleet_env: dict[str, str]) -> None:
    result = mailqueue("dead", "list")
    assert (result.returncode, result.stdout.strip()) == (0, "No dead letters.")


def test_list_shows_each_letter_with_its_error(mailqueue: Run, bouncing: Any) -> None:
    [letter] = bounce(mailqueue, "gone@example.com")
    text = mailqueue("dead", "list").stdout
    assert text.splitlines()[0].startswith(letter["id"])
    assert "to gone@example.com" in text
    assert "550 5.1.1 No such user" in text
    assert (letter["code"], letter["attempts"]) == (550, 1)


def test_show_details_raw_and_json(mailqueue: Run, bouncing: Any) -> None:
    [letter] = bounce(mailqueue, "gone@example.com")
    details = mailqueue("dead", "show", letter["id"]).stdout
    assert f"Dead letter {letter['id']}" in details
    assert "gone@example.com  550 5.1.1 No such user (permanent)" in details
    raw = mailqueue("dead", "show", letter["id"], "--raw").stdout
    assert "Subject: To gone@example.com" in raw
    record = json.loads(mailqueue("dead", "show", letter["id"], "--json").stdout)
    assert record["payload"]["recipients"] == ["gone@example.com"]


def test_requeue_sends_again_once_the_cause_is_fixed(mailqueue: Run, bouncing: Any) -> None:
    [letter] = bounce(mailqueue, "gone@example.com")
    bouncing.clear()  # the mailbox exists now
    result = mailqueue("dead", "requeue", letter["id"])
    assert result.returncode == 0, result.stderr
    new_task = result.stdout.splitlines()[0].split("requeued as task ")[1]
    status = json.loads(mailqueue("status", new_task, "--wait", "--timeout", "20", "--json").stdout)
    assert status["report"]["sent"] == 1
    assert [message.rcpt_tos for message in bouncing.messages] == [["gone@example.com"]]
    assert mailqueue("dead", "list").stdout.strip() == "No dead letters."


def test_requeue_all(mailqueue: Run, bouncing: Any) -> None:
    bounce(mailqueue, "gone@example.com", "lost@example.com")
    result = mailqueue("dead", "requeue", "--all")
    assert result.stdout.splitlines()[-1] == "Requeued 2 dead letter(s) in 1 task(s)."


def test_purge_by_id_and_all(mailqueue: Run, bouncing: Any) -> None:
    first, *_rest = bounce(mailqueue, "gone@example.com", "lost@example.com", "nobody@example.com")
    assert mailqueue("dead", "purge", first["id"]).stdout.strip() == "Purged 1 dead letter(s)."
    assert mailqueue("dead", "purge", "--all", "--yes").stdout.strip() == "Purged 2 dead letter(s)."
    assert json.loads(mailqueue("dead", "list", "--json").stdout) == []


def test_unknown_id_is_one_line(mailqueue: Run, fleet_env: dict[str, str]) -> None:
    for action in ("show", "requeue", "purge"):
        line = assert_one_line_error(mailqueue("dead", action, "no-such-letter"))
        assert "No dead letter with id 'no-such-letter'" in line


def test_requeue_and_purge_need_ids_or_all(mailqueue: Run, fleet_env: dict[str, str]) -> None:
    assert_one_line_error(mailqueue("dead", "purge"), status=2)
    assert_one_line_error(mailqueue("dead", "requeue", "some-id", "--all"), status=2)


SIGNING_KEY = "fleet-signing-key-0123456789"


def test_quarantined_tasks_are_shown_and_requeued_only_with_force(
    mailqueue: Run, fleet_env: dict[str, str], start_worker: Callable[..., CLIWorker], smtp_server: Any
) -> None:
    from celery import Celery

    fleet_env["MAILQUEUE_SIGNING_KEY"] = SIGNING_KEY
    start_worker()
    intruder = Celery("intruder", broker=fleet_env["MAILQUEUE_BROKER_URL"], set_as_current=False)
    intruder.send_task("mailqueue.deliver", args=[[make_payload(to=["unsure@example.com"])]], queue="mailqueue")
    intruder.close()
    deadline = time.monotonic() + 20
    while not (entries := json.loads(mailqueue("dead", "list", "--quarantine", "--json").stdout)):
        assert time.monotonic() < deadline, "the unsigned task was not quarantined"
        time.sleep(0.1)
    [entry] = entries
    assert entry["reason"].startswith("unsigned") and entry["recipients"] == ["unsure@example.com"]
    assert "1 task(s) refused (unsigned, forged) or unreadable" in mailqueue("dead", "list").stdout
    assert "Quarantined task" in mailqueue("dead", "show", entry["id"]).stdout

    refused = mailqueue("dead", "requeue", entry["id"])
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert smtp_server.messages == []

    forced = mailqueue("dead", "requeue", "--force", entry["id"])
    assert forced.returncode == 0, forced.stderr
    smtp_server.wait_for_messages(1, timeout=20)
    assert [message.rcpt_tos for message in smtp_server.messages] == [["unsure@example.com"]]
    assert json.loads(mailqueue("dead", "list", "--quarantine", "--json").stdout) == []


# --- dead letters at scale: made directly in the store (real Redis), no worker needed -----------


def make_letters(client: redis.Redis, count: int, *, domain: str = "example.com", code: int = 550,
                 age: float = 0.0) -> list[str]:
    letters = DeadLetters(client)
    ids = []
    for i in range(count):
        payload = make_payload(to=[f"user{i}@{domain}"])
        error = {"code": code, "reply": "5.1.1 No", "permanent": True}
        letter = letters.add(task_id=f"task-{i}", payload=payload, failures={payload["recipients"][0]: error},
                             error=error, attempts=1, now=time.time() - age)
        ids.append(letter.id)
    return ids


def test_list_says_when_more_letters_exist(
    mailqueue: Run, fleet_env: dict[str, str], redis_client: redis.Redis
) -> None:
    make_letters(redis_client, 130)
    lines = mailqueue("dead", "list").stdout.splitlines()
    assert lines[-1] == "Showing 1-100 of 130 dead letters; the next page: --offset 100."
    assert len(mailqueue("dead", "list", "--offset", "100").stdout.splitlines()) == 2 * 30


def test_filters_select_by_code_domain_and_age(
    mailqueue: Run, fleet_env: dict[str, str], redis_client: redis.Redis
) -> None:
    make_letters(redis_client, 3, domain="typo.test", age=7200)
    make_letters(redis_client, 2, domain="example.com", code=554)

    def listed(*filters: str) -> int:
        return len(json.loads(mailqueue("dead", "list", "--json", *filters).stdout))

    assert (listed(), listed("--domain", "TYPO.test"), listed("--code", "554")) == (5, 3, 2)
    assert (listed("--older-than", "1h"), listed("--newer-than", "10m")) == (3, 2)
    assert listed("--recipient", "user1@typo.test") == 1
    assert listed("--domain", "typo.test", "--code", "554") == 0
    bad = mailqueue("dead", "list", "--older-than", "soon")
    assert bad.returncode == 2 and "duration" in bad.stderr


def test_requeue_all_batches_like_the_queue_backend_and_prints_a_summary(
    mailqueue: Run, fleet_env: dict[str, str], redis_client: redis.Redis
) -> None:
    make_letters(redis_client, 120)
    result = mailqueue("dead", "requeue", "--all", "--batch-size", "50")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Requeued 120 dead letter(s) in 3 task(s)."]
    assert "Requeueing" in result.stderr  # progress, on stderr
    tasks = queued_tasks(redis_client)
    assert [len(task.payloads) for task in tasks] == [50, 50, 20]
    assert DeadLetters(redis_client).count() == 0


def test_dry_run_changes_nothing(mailqueue: Run, fleet_env: dict[str, str], redis_client: redis.Redis) -> None:
    make_letters(redis_client, 12)
    requeue = mailqueue("dead", "requeue", "--all", "--dry-run").stdout.splitlines()
    assert requeue[0] == "Would requeue 12 dead letter(s) in 1 task(s):" and requeue[-1] == "  ... and 2 more"
    assert mailqueue("dead", "purge", "--all", "--dry-run").stdout.strip() == "Would purge 12 dead letter(s)."
    assert DeadLetters(redis_client).count() == 12 and queued_tasks(redis_client) == []


def test_purge_of_many_asks_first_and_a_script_must_say_yes(
    mailqueue: Run, fleet_env: dict[str, str], redis_client: redis.Redis
) -> None:
    make_letters(redis_client, 5)
    refused = mailqueue("dead", "purge", "--all")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert DeadLetters(redis_client).count() == 5
    assert mailqueue("dead", "purge", "--domain", "example.com", "--yes").stdout.strip() == "Purged 5 dead letter(s)."


def test_requeue_repairs_a_typo_with_to_or_replace(
    mailqueue: Run, fleet_env: dict[str, str], redis_client: redis.Redis
) -> None:
    one, _two = make_letters(redis_client, 2, domain="exmaple.com")
    assert mailqueue("dead", "requeue", one, "--to", "fixed@example.com").returncode == 0
    replaced = mailqueue("dead", "requeue", "--domain", "exmaple.com",
                         "--replace", "USER1@exmaple.com=user1@example.com")
    assert replaced.returncode == 0, replaced.stderr
    assert [task.payloads[0]["recipients"] for task in queued_tasks(redis_client)] == [
        ["fixed@example.com"], ["user1@example.com"]]
    for bad in (["--to", "ann@"], ["--replace", "no-equals-sign"]):
        result = mailqueue("dead", "requeue", "--all", *bad)
        assert result.returncode == 2, result


def test_a_repaired_letter_is_delivered_to_the_new_address(
    mailqueue: Run, bouncing: Any
) -> None:
    [letter] = bounce(mailqueue, "gone@example.com")
    result = mailqueue("dead", "requeue", letter["id"], "--to", "found@example.com")
    assert result.returncode == 0, result.stderr
    task_id = result.stdout.splitlines()[0].split("requeued as task ")[1]
    assert json.loads(mailqueue("status", task_id, "--wait", "--timeout", "20", "--json").stdout)["report"]["sent"] == 1
    assert [message.rcpt_tos for message in bouncing.messages] == [["found@example.com"]]


def test_an_unreadable_queue_entry_is_shown_raw_and_cannot_be_requeued(
    mailqueue: Run, fleet_env: dict[str, str], start_worker: Callable[..., CLIWorker], redis_client: redis.Redis
) -> None:
    start_worker()
    redis_client.lpush("mailqueue", b"\x00not json at all\xff")
    deadline = time.monotonic() + 20
    while not (entries := json.loads(mailqueue("dead", "list", "--quarantine", "--json").stdout)):
        assert time.monotonic() < deadline, "the garbage was not moved aside"
        time.sleep(0.1)
    [entry] = entries
    assert entry["reason"].startswith("undecodable")
    assert "cannot be requeued" in mailqueue("dead", "show", entry["id"]).stdout
    raw = subprocess.run([MAILQUEUE, "dead", "show", entry["id"], "--raw"], env=fleet_env, capture_output=True,
                         timeout=30)
    assert raw.stdout == b"\x00not json at all\xff"
    refused = mailqueue("dead", "requeue", "--force", entry["id"])
    assert refused.returncode == 2 and "cannot be requeued" in refused.stderr
