"""Signing delivery tasks: the canonical form, sign, verify with rotation, and the keys setting."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailqueue.conf import override_settings
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.queue.signing import (
    SIGNATURE_HEADER,
    canonical,
    configured_keys,
    parse_keys,
    sign,
    signature_headers,
    task_canonical,
    verify,
)
from tests.fixtures.celery import make_payload

NEW, OLD, OTHER = b"new-key-0123456789abcdef", b"old-key-0123456789abcdef", b"other-key-0123456789abcd"


def signed(payloads: list[dict[str, Any]], *, task_id: str = "task-1", attempt: int = 0,
           report: Any = None, keys: tuple[bytes, ...] = (NEW,)) -> str:
    return sign(keys, task_canonical(task_id, payloads, attempt=attempt, report=report))


def test_canonical_form_survives_a_json_round_trip() -> None:
    payloads = [make_payload(to=["a@example.com", "b@example.com"])]
    report = {"attempts": 2, "started_at": 1764639000.123456789, "messages": {"<x@y>": {"status": "pending"}}}
    decoded = json.loads(json.dumps([payloads, report]))
    assert task_canonical("t", payloads, attempt=2, report=report) == task_canonical(
        "t", decoded[0], attempt=2, report=decoded[1])


def test_canonical_form_does_not_depend_on_key_order_or_tuples() -> None:
    assert canonical("task", {"a": 1, "b": (1, 2)}) == canonical("task", {"b": [1, 2], "a": 1})


def test_canonical_form_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(ValueError):
        canonical("task", {"x": float("nan")})
    with pytest.raises(TypeError):
        canonical("task", {"x": object()})


def test_a_signature_verifies_for_exactly_what_was_signed() -> None:
    payloads = [make_payload()]
    signature = signed(payloads)
    assert signature.startswith("mq1:")
    assert verify([NEW], task_canonical("task-1", payloads), signature)


@pytest.mark.parametrize("change", ["recipient", "sender", "task_id", "attempt", "report", "extra payload"])
def test_a_signature_cannot_be_moved_to_other_arguments(change: str) -> None:
    payloads = [make_payload(to=["customer@example.com"])]
    signature = signed(payloads)
    task_id, attempt, report = "task-1", 0, None
    tampered = json.loads(json.dumps(payloads))
    if change == "recipient":
        tampered[0]["recipients"] = ["victim@example.com"]
    elif change == "sender":
        tampered[0]["sender"] = "ceo@example.com"
    elif change == "task_id":
        task_id = "task-2"
    elif change == "attempt":
        attempt = 1
    elif change == "report":
        report = {}
    else:
        tampered.append(make_payload(to=["victim@example.com"]))
    assert not verify([NEW], task_canonical(task_id, tampered, attempt=attempt, report=report), signature)


def test_rotation_signs_with_the_first_key_and_accepts_any() -> None:
    payloads = [make_payload()]
    message = task_canonical("task-1", payloads)
    assert sign([NEW, OLD], message) == sign([NEW], message)
    by_old_key = signed(payloads, keys=(OLD,))
    assert verify([NEW, OLD], message, by_old_key)
    assert not verify([NEW], message, by_old_key)
    assert not verify([NEW, OLD], message, signed(payloads, keys=(OTHER,)))


@pytest.mark.parametrize("signature", [None, "", 42, ["mq1:00"], "mq1:", "mq1:zz", "deadbeef", "mq2:" + "0" * 64])
def test_garbage_signatures_do_not_verify(signature: object) -> None:
    assert not verify([NEW], task_canonical("task-1", []), signature)


def test_sign_needs_a_key() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        sign([], b"x")


def test_keys_from_a_string_a_list_or_nothing() -> None:
    assert parse_keys("") == [] and parse_keys([]) == [] and parse_keys(None) == []
    assert parse_keys("new-key-0123456789abcdef") == [NEW]
    assert parse_keys(["new-key-0123456789abcdef", "old-key-0123456789abcdef"]) == [NEW, OLD]


@pytest.mark.parametrize(("value", "message"), [
    ("short", r"MAILQUEUE_SIGNING_KEY\[0\] is 5 characters long; use at least 16"),
    (["new-key-0123456789abcdef", 7], r"MAILQUEUE_SIGNING_KEY\[1\] must be a string, got int"),
    (b"bytes-key-0123456789abcdef", "must be a string or a list of strings, got bytes"),
])
def test_bad_keys_are_refused_naming_the_setting(value: object, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        parse_keys(value)


def test_keys_from_the_environment_comma_separated_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILQUEUE_SIGNING_KEY", "new-key-0123456789abcdef, old-key-0123456789abcdef")
    assert configured_keys() == [NEW, OLD]
    monkeypatch.setenv("MAILQUEUE_SIGNING_KEY", '["with,comma-0123456789abcdef"]')
    assert configured_keys() == [b"with,comma-0123456789abcdef"]


def test_signature_headers_only_with_a_key() -> None:
    payloads = [make_payload()]
    with override_settings(MAILQUEUE_SIGNING_KEY=[]):
        assert signature_headers("task-1", payloads) == {}
    with override_settings(MAILQUEUE_SIGNING_KEY=["new-key-0123456789abcdef"]):
        assert signature_headers("task-1", payloads) == {SIGNATURE_HEADER: signed(payloads)}


def test_the_key_is_masked_in_the_settings_display() -> None:
    from mailqueue.conf import settings

    with override_settings(MAILQUEUE_SIGNING_KEY=["new-key-0123456789abcdef"]):
        assert settings.as_dict()["MAILQUEUE_SIGNING_KEY"] == "********"
