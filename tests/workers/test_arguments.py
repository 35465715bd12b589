"""Binding a delivery task's arguments, whatever their shape (pure: no worker, no Redis)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.celery import make_payload
from workers.arguments import TaskArguments, Unreadable
from workers.report import new_report, shape_problem


def test_the_producers_shape_binds_as_is() -> None:
    payloads = [make_payload()]
    report = new_report("t")
    given = TaskArguments.bind((payloads,), {"attempt": 2, "report": report})
    assert (given.payloads, given.attempt, given.report, given.strays) == (payloads, 2, report, ())
    assert (given.batch(), given.rounds_done(), given.carried_report(), given.problems()) == (
        payloads, 2, report, [])


def test_positional_attempt_and_report_bind_as_the_old_signature_did() -> None:
    given = TaskArguments.bind(([], 3, None), {})
    assert (given.attempt, given.rounds_done(), given.strays) == (3, 3, ())


def test_what_is_left_over_is_kept_as_unreadable_with_the_reason() -> None:
    given = TaskArguments.bind(([], 0, None, "extra", None), {"payloads": ["twice"], "other": 1, "gone": None})
    assert given.strays == (Unreadable("extra", "unexpected positional argument #3"),
                            Unreadable(["twice"], "argument 'payloads' given twice (positionally and by keyword)"),
                            Unreadable(1, "unexpected keyword argument 'other'"))
    assert given.batch() == list(given.strays)  # None carries nothing: logged, not dead-lettered
    assert len(given.problems()) == 3


@pytest.mark.parametrize(("payloads", "batch"), [
    (None, []),
    ([1, "x"], [1, "x"]),
    ({"v": 1}, [{"v": 1}]),  # one payload alone: a batch of one
    ("junk", [Unreadable("junk", "payloads must be a list of payloads, got str")]),
    (7, [Unreadable(7, "payloads must be a list of payloads, got int")]),
])
def test_payloads_become_a_batch_read_one_item_at_a_time(payloads: Any, batch: list[Any]) -> None:
    assert TaskArguments.bind((payloads,), {}).batch() == batch


@pytest.mark.parametrize("attempt", ["x", -1, 1.5, True, None, [1]])
def test_an_unreadable_attempt_counts_as_none_done_and_is_logged(attempt: Any) -> None:
    given = TaskArguments.bind(([],), {"attempt": attempt})
    assert given.rounds_done() == 0 and any("attempt" in problem for problem in given.problems())


def test_arguments_received_as_a_dict_are_one_unreadable_item() -> None:
    received = {"payloads": [make_payload()]}
    given = TaskArguments.bind(("payloads",), {}, received=received)
    assert given.batch() == [Unreadable(received, "the task's arguments must be a list, got a dict")]


def good_report() -> dict[str, Any]:
    report = new_report("t")
    report["messages"]["<m@x>"] = {"status": "pending", "attempts": 1, "dead_letter": None, "recipients": {
        "a@example.com": {"status": "accepted", "code": 250, "reply": "OK", "permanent": False}}}
    return report


@pytest.mark.parametrize(("damage", "problem"), [
    (lambda r: "str", "must be a dict"),
    (lambda r: {**r, "messages": []}, "'messages' must be a dict"),
    (lambda r: {**r, "messages": {"<m@x>": 5}}, "entry must be a dict"),
    (lambda r: r["messages"]["<m@x>"].update(attempts="1") or r, "int attempts"),
    (lambda r: r["messages"]["<m@x>"].update(status="lost") or r, "status"),
    (lambda r: r["messages"]["<m@x>"].update(dead_letter=3) or r, "dead_letter"),
    (lambda r: r["messages"]["<m@x>"].update(recipients=[]) or r, "recipients must be a dict"),
    (lambda r: r["messages"]["<m@x>"]["recipients"]["a@example.com"].update(code="250") or r, "'a@example.com'"),
    (lambda r: r["messages"]["<m@x>"]["recipients"]["a@example.com"].pop("reply") and r, "'a@example.com'"),
])
def test_a_carried_report_of_another_shape_is_replaced(damage: Any, problem: str) -> None:
    assert shape_problem(good_report()) is None
    report = damage(good_report())
    assert problem in str(shape_problem(report))
    given = TaskArguments.bind(([],), {"report": report})
    assert given.carried_report() is None and any("report ignored" in p for p in given.problems())


def test_the_signed_part_leaves_the_strays_out() -> None:
    given = TaskArguments.bind(([1], 2, None, "extra"), {})
    assert given.signed_part() == TaskArguments([1], 2, None)
