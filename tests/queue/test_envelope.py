"""The wire format: what the producer puts on the broker is all a worker gets."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import time

import pytest

from mailqueue.exceptions import InvalidMessage, MessageTooLarge, UnsupportedPayload
from mailqueue.message import EmailMessage, EmailMultiAlternatives
from mailqueue.queue.envelope import WIRE_VERSION, Envelope

BIG = 25 * 1024 * 1024


def make_envelope(message: EmailMessage, *, max_size: int = BIG) -> Envelope:
    return Envelope.from_email_message(message, max_size=max_size)


def test_payload_survives_a_json_round_trip() -> None:
    message = EmailMultiAlternatives("Subject", "Text", "from@example.com", ["to@example.com"], cc=["cc@example.com"])
    message.attach_alternative("<p>HTML</p>", "text/html")
    envelope = make_envelope(message)
    restored = Envelope.from_payload(json.loads(json.dumps(envelope.to_payload())))
    assert restored == envelope


def test_payload_holds_version_message_id_envelope_and_base64_bytes() -> None:
    envelope = make_envelope(EmailMessage("Subject", "Body", "from@example.com", ["to@example.com"]))
    payload = envelope.to_payload()
    assert set(payload) == {"v", "message_id", "sender", "recipients", "message", "enqueued_at"}
    assert payload["v"] == 1  # the default relay: still readable by workers that know only version 1
    assert base64.b64decode(payload["message"]) == envelope.message


def test_message_id_is_the_one_in_the_bytes() -> None:
    envelope = make_envelope(EmailMessage("Subject", "Body", "from@example.com", ["to@example.com"]))
    parsed = email.message_from_bytes(envelope.message, policy=email.policy.default)
    assert parsed["Message-ID"] == envelope.message_id
    assert envelope.message_id.startswith("<") and envelope.message_id.endswith(">")


def test_given_message_id_header_is_kept() -> None:
    headers = {"Message-ID": "<fixed@example.com>"}
    message = EmailMessage("S", "B", "from@example.com", ["to@example.com"], headers=headers)
    assert make_envelope(message).message_id == "<fixed@example.com>"


def test_recipients_are_to_cc_and_bcc_but_bcc_is_not_a_header() -> None:
    message = EmailMessage("S", "B", "from@example.com", ["to@example.com"], cc=["cc@example.com"],
                           bcc=["hidden@example.com"])
    envelope = make_envelope(message)
    assert envelope.recipients == ("to@example.com", "cc@example.com", "hidden@example.com")
    assert b"hidden@example.com" not in envelope.message


def test_envelope_addresses_are_bare_and_idna_encoded() -> None:
    message = EmailMessage("S", "B", "Sender Name <from@öäü.com>", ["Recipient <to@bücher.example>"])
    envelope = make_envelope(message)
    assert envelope.sender == "from@xn--4ca9at.com"
    assert envelope.recipients == ("to@xn--bcher-kva.example",)


def test_envelope_of_cc_and_bcc_is_bare_and_idna_encoded_without_empty_entries() -> None:
    message = EmailMessage("S", "B", "Sender <from@öäü.com>", ["to@example.com"], cc=["Zoë <z@bücher.example>"],
                           bcc=["hidden@example.com", ""])
    envelope = make_envelope(message)
    assert (envelope.sender, envelope.recipients) == (
        "from@xn--4ca9at.com", ("to@example.com", "z@xn--bcher-kva.example", "hidden@example.com"))


def test_message_is_built_with_crlf_line_endings() -> None:
    envelope = make_envelope(EmailMessage("S", "line one\nline two\n", "from@example.com", ["to@example.com"]))
    assert b"line one\r\nline two\r\n" in envelope.message


def test_enqueued_at_is_now() -> None:
    before = time.time()
    envelope = make_envelope(EmailMessage("S", "B", "from@example.com", ["to@example.com"]))
    assert before <= envelope.enqueued_at <= time.time()


def test_message_larger_than_the_limit_is_refused_naming_the_setting() -> None:
    message = EmailMessage("S", "x" * 5000, "from@example.com", ["to@example.com"])
    with pytest.raises(MessageTooLarge, match="MAILQUEUE_MAX_MESSAGE_SIZE") as caught:
        make_envelope(message, max_size=1000)
    assert isinstance(caught.value, ValueError)


def test_limit_is_inclusive() -> None:
    headers = {"Message-ID": "<same-size@example.com>"}  # keeps the size stable across builds
    message = EmailMessage("S", "x" * 100, "from@example.com", ["to@example.com"], headers=headers)
    size = len(make_envelope(message).message)
    assert len(make_envelope(message, max_size=size).message) == size
    with pytest.raises(MessageTooLarge):
        make_envelope(message, max_size=size - 1)


def test_invalid_recipient_raises_naming_it() -> None:
    message = EmailMessage("S", "B", "from@example.com", ["not an address@@example.com"])
    with pytest.raises(ValueError, match="not an address"):
        make_envelope(message)


def test_two_addresses_in_one_recipient_entry_are_refused() -> None:
    message = EmailMessage("S", "B", "from@example.com", ["one@example.com, two@example.com"])
    with pytest.raises(InvalidMessage, match="single address"):
        make_envelope(message)


def test_header_injection_is_refused() -> None:
    message = EmailMessage("Subject\nBcc: victim@example.com", "B", "from@example.com", ["to@example.com"])
    with pytest.raises(ValueError):
        make_envelope(message)


def test_with_recipients_keeps_everything_else() -> None:
    envelope = make_envelope(EmailMessage("S", "B", "from@example.com", ["a@example.com", "b@example.com"]))
    narrowed = envelope.with_recipients(["b@example.com"])
    assert narrowed.recipients == ("b@example.com",)
    assert (narrowed.message_id, narrowed.message, narrowed.sender) == (
        envelope.message_id, envelope.message, envelope.sender)


def test_a_named_relay_travels_as_version_2_by_name_only() -> None:
    message = EmailMessage("S", "B", "from@example.com", ["to@example.com"])
    envelope = Envelope.from_email_message(message, max_size=10**6, relay="bulk")
    payload = envelope.to_payload()
    assert (payload["v"], payload["relay"]) == (2, "bulk")
    assert Envelope.from_payload(json.loads(json.dumps(payload))) == envelope
    assert envelope.with_recipients(["x@example.com"]).relay == "bulk"


@pytest.mark.parametrize("relay", ["", " bulk", "bulk\r\nX: y", "a" * 65, "../x", 7, None])
def test_a_relay_off_the_broker_is_checked(relay: object) -> None:
    payload = make_envelope(EmailMessage("S", "B", "from@example.com", ["to@example.com"])).to_payload()
    payload.update(v=2, relay=relay)
    with pytest.raises(UnsupportedPayload, match="'relay'"):
        Envelope.from_payload(payload)


def test_version_2_needs_its_relay_and_version_1_may_not_carry_one() -> None:
    payload = make_envelope(EmailMessage("S", "B", "from@example.com", ["to@example.com"])).to_payload()
    with pytest.raises(UnsupportedPayload, match="'relay' is missing"):
        Envelope.from_payload({**payload, "v": 2})
    with pytest.raises(UnsupportedPayload, match="'relay' is not part of a version 1"):
        Envelope.from_payload({**payload, "relay": "bulk"})


@pytest.mark.parametrize("version", [None, 0, WIRE_VERSION + 1, "1"])
def test_payload_of_another_version_is_refused(version: object) -> None:
    payload = make_envelope(EmailMessage("S", "B", "from@example.com", ["to@example.com"])).to_payload()
    if version is None:
        del payload["v"]
    else:
        payload["v"] = version
    with pytest.raises(UnsupportedPayload, match="version"):
        Envelope.from_payload(payload)


def test_payload_that_is_not_a_dict_is_refused() -> None:
    with pytest.raises(UnsupportedPayload):
        Envelope.from_payload(["v", 1])  # type: ignore[arg-type]


@pytest.mark.parametrize("damage", ["missing recipients", "bad base64", "bad timestamp"])
def test_malformed_payload_is_refused(damage: str) -> None:
    payload = make_envelope(EmailMessage("S", "B", "from@example.com", ["to@example.com"])).to_payload()
    if damage == "missing recipients":
        del payload["recipients"]
    elif damage == "bad base64":
        payload["message"] = "not base64!"
    else:
        payload["enqueued_at"] = "yesterday"
    with pytest.raises(UnsupportedPayload, match="Malformed"):
        Envelope.from_payload(payload)


# --- what a worker reads off the broker: the same rules as the producer's ------------------

def valid_payload() -> dict[str, object]:
    return make_envelope(EmailMessage("S", "B", "from@example.com", ["to@example.com"])).to_payload()


@pytest.mark.parametrize(("field", "value"), [
    ("recipients", "victim@example.com"),  # a str would go out as one-letter RCPTs
    ("recipients", []),
    ("recipients", ("to@example.com",)),
    ("recipients", {"to@example.com": 1}),
    ("recipients", [["to@example.com"]]),
    ("recipients", [None]),
    ("recipients", ["victim@example.com\u2028.evil.test"]),
    ("recipients", ["victim@example.com\u2029.evil.test"]),
    ("recipients", ["victim@example.com\x85.evil.test"]),
    ("recipients", ["victim@example.com\r\nRCPT TO:<other@example.com>"]),
    ("recipients", ["victim@example.com\n"]),
    ("recipients", ["victim@example.com\0"]),
    ("recipients", ["Victim <victim@example.com>"]),
    ("recipients", [" victim@example.com"]),
    ("recipients", ["victim@bücher.example"]),  # the producer writes the domain IDNA-encoded
    ("recipients", ["a@example.com, b@example.com"]),
    ("recipients", ["not an address@@example.com"]),
    ("recipients", [""]),
    ("sender", "from@example.com\u2028.evil.test"),
    ("sender", ""),  # the producer never writes a null reverse-path
    ("sender", None),
    ("sender", ["from@example.com"]),
    ("sender", "Boss <boss@example.com>"),
    ("message_id", ["<unhashable@example.com>"]),
    ("message_id", {"id": 1}),
    ("message_id", 42),
    ("message_id", ""),
    ("message_id", "<id@example.com>\r\nBcc: victim@example.com"),
    ("message", 12),
    ("message", ""),
    ("message", "not base64!"),
    ("message", "w6k="[:-1] + "é"),
    ("enqueued_at", "yesterday"),
    ("enqueued_at", "1764639000.5"),
    ("enqueued_at", True),
    ("enqueued_at", None),
    ("enqueued_at", float("nan")),
])
def test_a_bad_field_is_refused_naming_it(field: str, value: object) -> None:
    payload = valid_payload()
    payload[field] = value
    with pytest.raises(UnsupportedPayload, match=f"Malformed payload: field '{field}"):
        Envelope.from_payload(payload)


@pytest.mark.parametrize("field", ["message_id", "sender", "recipients", "message", "enqueued_at"])
def test_a_missing_field_is_refused_naming_it(field: str) -> None:
    payload = valid_payload()
    del payload[field]
    with pytest.raises(UnsupportedPayload, match=f"field '{field}' is missing"):
        Envelope.from_payload(payload)


def test_the_bad_recipient_is_named_by_its_position() -> None:
    payload = valid_payload()
    payload["recipients"] = ["ok@example.com", "victim@example.com\u2028.evil.test"]
    with pytest.raises(UnsupportedPayload, match=r"field 'recipients\[1\]'.*printable ASCII"):
        Envelope.from_payload(payload)


@pytest.mark.parametrize("version", [True, 1.0])
def test_a_version_that_only_equals_one_is_refused(version: object) -> None:
    payload = valid_payload()
    payload["v"] = version
    with pytest.raises(UnsupportedPayload, match="version"):
        Envelope.from_payload(payload)


@pytest.mark.parametrize("address", [
    "plain@example.com", "Name <named@example.com>", "Zoë <z@bücher.example>", '"john doe"@example.com',
    "webmaster", "first.last+tag@sub.example.co.uk", "a@[127.0.0.1]",
])
def test_whatever_the_producer_writes_a_worker_reads(address: str) -> None:
    message = EmailMessage("S", "B", address, [address], cc=[address])
    envelope = make_envelope(message)
    assert Envelope.from_payload(json.loads(json.dumps(envelope.to_payload()))) == envelope


def test_an_integer_timestamp_is_read_as_a_float() -> None:
    payload = valid_payload()
    payload["enqueued_at"] = 1764639000
    assert Envelope.from_payload(payload).enqueued_at == 1764639000.0
