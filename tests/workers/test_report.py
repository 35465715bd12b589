"""Building and merging the delivery report, round by round."""

from __future__ import annotations

import json

from mailqueue.outcomes import RecipientOutcome, Status
from workers import report as r

MID = "<m@example.com>"


def outcome(recipient: str, status: Status, code: int | None, reply: str = "") -> RecipientOutcome:
    return RecipientOutcome(recipient, status, code, reply)


def test_a_new_report_has_the_documented_fields() -> None:
    report = r.new_report("task-1", hostname="w1@host")
    assert {"task_id", "sent", "failed", "retries", "messages", "hostname", "finished_at"} <= set(report)
    assert (report["task_id"], report["sent"], report["failed"], report["retries"]) == ("task-1", 0, 0, 0)


def test_outcomes_map_to_recipient_statuses() -> None:
    report = r.new_report("t")
    r.record_outcome(report, MID, outcome("a@x.org", Status.ACCEPTED, 250, "OK"))
    r.record_outcome(report, MID, outcome("b@x.org", Status.TRANSIENT, 451, "Busy"))
    r.record_outcome(report, MID, outcome("c@x.org", Status.PERMANENT, 550, "Gone"))
    recipients = report["messages"][MID]["recipients"]
    assert recipients == {
        "a@x.org": {"status": "accepted", "code": 250, "reply": "OK", "permanent": False},
        "b@x.org": {"status": "pending", "code": 451, "reply": "Busy", "permanent": False},
        "c@x.org": {"status": "failed", "code": 550, "reply": "Gone", "permanent": True},
    }


def test_an_acceptance_is_never_overwritten() -> None:
    report = r.new_report("t")
    r.record_outcome(report, MID, outcome("a@x.org", Status.ACCEPTED, 250, "OK"))
    r.record_ledger_hit(report, MID, "a@x.org")
    r.record_outcome(report, MID, outcome("a@x.org", Status.TRANSIENT, 451, "Busy"))
    assert report["messages"][MID]["recipients"]["a@x.org"]["code"] == 250


def test_a_message_settles_only_when_no_recipient_is_pending() -> None:
    report = r.new_report("t")
    r.record_outcome(report, MID, outcome("a@x.org", Status.ACCEPTED, 250))
    r.record_outcome(report, MID, outcome("b@x.org", Status.TRANSIENT, 451))
    assert r.settle(report, MID) is None
    r.record_outcome(report, MID, outcome("b@x.org", Status.ACCEPTED, 250))
    assert r.settle(report, MID) == "sent"


def test_giving_up_keeps_the_last_code_and_reply() -> None:
    report = r.new_report("t")
    r.record_outcome(report, MID, outcome("b@x.org", Status.TRANSIENT, 452, "Full"))
    r.fail_recipient(report, MID, "b@x.org", reply="no reply")
    assert r.settle(report, MID) == "failed"
    assert r.last_error(report, MID) == {"code": 452, "reply": "Full", "permanent": False}


def test_last_error_prefers_a_permanent_failure() -> None:
    report = r.new_report("t")
    r.record_outcome(report, MID, outcome("c@x.org", Status.PERMANENT, 550, "Gone"))
    r.record_outcome(report, MID, outcome("b@x.org", Status.TRANSIENT, 452, "Full"))
    r.fail_recipient(report, MID, "b@x.org", reply="")
    assert r.last_error(report, MID)["code"] == 550


def test_tally_counts_messages_by_status() -> None:
    report = r.new_report("t")
    for number, status in enumerate([Status.ACCEPTED, Status.ACCEPTED, Status.PERMANENT, Status.TRANSIENT]):
        message_id = f"<{number}@x.org>"
        r.record_outcome(report, message_id, outcome("a@x.org", status, None))
        r.settle(report, message_id)
    assert {key: r.tally(report)[key] for key in ("sent", "failed", "pending")} == {"sent": 2, "failed": 1,
                                                                                   "pending": 1}


def test_the_report_survives_a_json_round_trip() -> None:
    report = r.new_report("t")
    r.record_outcome(report, MID, outcome("a@x.org", Status.ACCEPTED, 250, "OK"))
    assert json.loads(json.dumps(report)) == report
