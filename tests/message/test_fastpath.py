"""The fast path (``mailqueue.message.fastpath``) writes what the standard build writes.

Every message is built both ways from the same inputs: ``serialize()`` (fast path or its
fallback) and ``message(policy=SMTP).as_bytes()``. Both are parsed and compared with
``describe()``: decoded headers, MIME tree, parameters, transfer encodings, payloads. When
the fast path wrote the message, the raw bytes must match too (Date, Message-ID and
boundaries masked).

The tests also pin down which messages take the fast path, so it cannot silently stop
being used, and that validation raises the same errors either way.
"""

from __future__ import annotations

import email.policy
import os
import string
from email.headerregistry import Address
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from mailqueue.conf import override_settings
from mailqueue.message import EmailMessage, EmailMultiAlternatives, make_msgid
from mailqueue.message.addresses import envelope_address
from mailqueue.message.fastpath import encode_base64, fast_serialize, serialize
from mailqueue.queue.envelope import Envelope
from tests.message.corpus import CASES, MAILQUEUE, Attach, Case, build
from tests.message.structure import describe, normalized_bytes, tree

SMTP = email.policy.SMTP

# The corpus cases the fast path writes itself; every other case must fall back.
FAST_CASES = {
    "plain", "empty-body", "no-recipients", "default-from", "unicode-subject", "long-unicode-subject",
    "long-ascii-subject", "display-names", "idna-domains", "idna-in-extra-address-header", "cc-bcc-reply-to",
    "bcc-only", "empty-entries-in-lists", "long-ascii-lines", "very-long-line-over-998", "mostly-non-ascii-body",
    "long-non-ascii-lines", "latin-body", "more-than-ten-lines", "from-and-dot-lines", "crlf-body",
    "trailing-whitespace", "html-content-subtype", "custom-headers", "header-overrides",
    "to-header-without-to-argument", "date-and-message-id-overrides", "lowercase-date-and-message-id",
    "alternative-html", "alternative-only", "multi-without-alternatives", "attachment-only", "attach-file",
    "constructor-attachments", "alternative-only-and-attachment",
}


def standard_bytes(message: Any) -> bytes:
    return bytes(message.message(policy=SMTP).as_bytes())


def outcome(produce: Any) -> object:
    """The described message, or the error raised while building it."""
    try:
        return describe(produce())
    except Exception as error:  # noqa: BLE001 - any error, as long as both builds raise it
        return f"{type(error).__name__}: {error}"


def assert_same_message(case: Case) -> None:
    """Same parsed structure (or the same error); byte-identical when the fast path wrote it."""
    fast = outcome(lambda: serialize(build(MAILQUEUE, case)).message)
    standard = outcome(lambda: standard_bytes(build(MAILQUEUE, case)))
    if not isinstance(fast, str) and not isinstance(standard, str):
        assert tree(fast) == tree(standard)  # type: ignore[arg-type]
    assert fast == standard
    if isinstance(standard, str):
        return  # both raised the same error
    written = fast_serialize(build(MAILQUEUE, case), policy=SMTP)
    if written is not None:
        assert normalized_bytes(written.message) == normalized_bytes(standard_bytes(build(MAILQUEUE, case)))


# --- The corpus ---------------------------------------------------------------------------


def test_fast_cases_are_corpus_cases() -> None:
    assert FAST_CASES <= {case.id for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_fast_path_is_taken_exactly_for_the_expected_cases(case: Case) -> None:
    taken = fast_serialize(build(MAILQUEUE, case), policy=SMTP) is not None
    assert taken == (case.id in FAST_CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_parsed_message_matches_the_standard_build(case: Case) -> None:
    assert_same_message(case)


@pytest.mark.parametrize("case", sorted(FAST_CASES))
def test_fast_path_is_byte_identical_once_ids_and_boundaries_are_masked(case: str) -> None:
    (spec,) = [c for c in CASES if c.id == case]
    fast = fast_serialize(build(MAILQUEUE, spec), policy=SMTP)
    assert fast is not None
    assert normalized_bytes(fast.message) == normalized_bytes(standard_bytes(build(MAILQUEUE, spec)))


def test_message_id_returned_is_the_one_in_the_bytes() -> None:
    fast = fast_serialize(EmailMessage("S", "B", "a@example.com", ["b@example.com"]), policy=SMTP)
    assert fast is not None
    parsed = email.message_from_bytes(fast.message, policy=email.policy.default)
    assert parsed["Message-ID"] == fast.message_id


def test_lines_end_with_crlf_and_fit_in_78_characters() -> None:
    message = EmailMultiAlternatives("Grüße " * 30 + "end", "x" * 300, "Zoë <z@exämple.com>",
                                     [f"Person {i} <p{i}@example.com>" for i in range(12)],
                                     headers={"Message-ID": make_msgid(domain="example.com")})
    message.attach_alternative("<p>" + "é" * 500 + "</p>", "text/html")
    fast = fast_serialize(message, policy=SMTP)
    assert fast is not None
    lines = fast.message.split(b"\r\n")
    assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)
    assert max(len(line) for line in lines) <= 78


def test_base64_lines_hold_57_bytes() -> None:
    encoded = encode_base64(bytes(range(256)) * 4)
    assert {len(line) for line in encoded.split(b"\r\n")[:-2]} == {76}
    assert encoded.endswith(b"\r\n")


# --- Fallbacks ------------------------------------------------------------------------------


def test_other_policies_take_the_standard_build() -> None:
    message = EmailMessage("S", "B", "a@example.com", ["b@example.com"])
    assert fast_serialize(message, policy=email.policy.default) is None
    assert fast_serialize(message, policy=email.policy.SMTPUTF8) is None
    raw, _ = serialize(message, policy=email.policy.default)
    assert b"\r\n" not in raw


def test_a_subclass_that_overrides_message_takes_the_standard_build() -> None:
    class Signed(EmailMessage):
        def message(self, *, policy: Any = email.policy.default) -> Any:
            built = super().message(policy=policy)
            built["X-Signed"] = "yes"
            return built

    message = Signed("S", "B", "a@example.com", ["b@example.com"])
    assert fast_serialize(message, policy=SMTP) is None
    assert b"X-Signed: yes" in serialize(message, policy=SMTP).message


def test_a_subclass_that_only_adds_headers_keeps_the_fast_path() -> None:
    class Tagged(EmailMessage):
        def header_items(self) -> list[tuple[str, Any]]:
            return [*super().header_items(), ("X-Tag", "tagged")]

    fast = fast_serialize(Tagged("S", "B", "a@example.com", ["b@example.com"]), policy=SMTP)
    assert fast is not None and b"\r\nX-Tag: tagged\r\n" in fast.message


def test_another_charset_takes_the_standard_build() -> None:
    message = EmailMessage("S", "Body", "a@example.com", ["b@example.com"])
    message.encoding = "iso-8859-1"
    assert fast_serialize(message, policy=SMTP) is None
    with override_settings(DEFAULT_CHARSET="iso-8859-1"):
        assert fast_serialize(EmailMessage("S", "Body", "a@example.com", ["b@example.com"]), policy=SMTP) is None


def test_a_duplicate_unique_header_is_left_to_the_email_package_which_refuses_it() -> None:
    message = EmailMessage("S", "B", "a@example.com", ["b@example.com"],
                           headers={"Message-ID": "<a@example.com>", "message-id": "<b@example.com>"})
    assert fast_serialize(message, policy=SMTP) is None
    with pytest.raises(ValueError, match="at most 1"):
        serialize(message, policy=SMTP)


# --- Validation -----------------------------------------------------------------------------

INVALID = {
    "subject-injection": {"subject": "Hi\nBcc: victim@example.com"},
    "to-injection": {"to": ["a@example.com\nBcc: evil@example.com"]},
    "header-injection": {"headers": {"X-Evil": "a\r\nBcc: evil@example.com"}},
    "bad-header-name": {"headers": {"Bad Name": "x"}},
    "bcc-header": {"headers": {"Bcc": "x@example.com"}},
    "unparseable-to": {"to": ["not an address"]},
    "two-addresses-in-one": {"to": ["a@example.com, b@example.com"]},
    "bad-idna-domain": {"to": ["a@" + "ü" * 70 + ".com"]},
    "bad-idna-domain-in-reply-to": {"reply_to": ["a@" + "ü" * 70 + ".com"]},
    "bad-from": {"from_email": "nobody@"},
}


def envelope_outcome(kwargs: dict[str, Any], *, fast: bool) -> str:
    arguments = {"subject": "S", "body": "B", "from_email": "a@example.com", "to": ["b@example.com"]} | kwargs
    message = EmailMessage(**arguments)
    try:
        if fast:
            Envelope.from_email_message(message, max_size=10**6)
        else:
            standard_bytes(message)
            envelope_address(message.from_email)
            [envelope_address(address) for address in message.recipients()]
    except Exception as error:  # noqa: BLE001 - any error, as long as both builds raise it
        return f"{type(error).__name__}: {error}"
    return "accepted"


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_input_raises_the_same_error_as_the_standard_build(name: str) -> None:
    fast = envelope_outcome(INVALID[name], fast=True)
    assert fast != "accepted"
    assert fast == envelope_outcome(INVALID[name], fast=False)


# --- Generated inputs -----------------------------------------------------------------------

_NO_SURROGATES = st.characters(exclude_categories=["Cs"])
one_line = st.text(_NO_SURROGATES, max_size=80).filter(lambda s: "".join(s.splitlines()) == s)
ascii_words = st.text(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~.,:;()<>[]\"", min_size=1,
                      max_size=20)
unicode_words = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FFF, exclude_categories=["Cs", "Zs",
                        "Zl", "Zp", "Cc", "Cf"]), min_size=1, max_size=12)
sentences = st.lists(st.one_of(ascii_words, unicode_words), min_size=1, max_size=25).map(" ".join)
texts = st.one_of(one_line, sentences)
local_parts = st.from_regex(r"[a-z0-9][a-z0-9._+=-]{0,15}[a-z0-9]", fullmatch=True)
domains = st.one_of(
    st.sampled_from(["example.com", "exämple.com", "пример.рф", "münchen.de", "localhost", "bücher.example",
                     "EXAMPLE.org", "xn--bcher-kva.example", "a-b.c-d.example"]),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-zäöüñé0-9]{1,8}){1,3}", fullmatch=True),
)
body_lines = st.one_of(
    st.sampled_from(["", ".", "..", "From the start", "From me", ". leading dot", "trailing space ", "tab\t",
                     "x" * 77, "x" * 78, "x" * 79, "é" * 39, "é" * 40, "=", "=20", "line with = sign"]),
    st.text(_NO_SURROGATES, max_size=120),
)
bodies = st.tuples(st.lists(body_lines, max_size=25), st.sampled_from(["\n", "\r\n", "\r", "\n\r"]),
                   st.booleans()).map(lambda t: t[1].join(t[0]) + (t[1] if t[2] else ""))
filenames = st.one_of(st.sampled_from(["report.pdf", "a.txt", "My Report 2024.pdf", "x" * 40 + ".bin",
                                       "naïve résumé.pdf", "data", "page.html"]), one_line.filter(bool))
contents = st.one_of(st.binary(max_size=300), st.text(_NO_SURROGATES, max_size=300), bodies)
mimetypes = st.sampled_from([None, "text/plain", "text/csv", "text/html", "application/pdf", "image/png",
                             "application/octet-stream", "Application/PDF", "message/rfc822"])


@st.composite
def addresses(draw: st.DrawFn) -> str:
    address = Address(display_name=draw(st.one_of(st.just(""), texts)), username=draw(local_parts),
                      domain=draw(domains))
    return str(address)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    alternatives = draw(st.lists(st.tuples(bodies, st.sampled_from(["text/html", "text/plain",
                                                                     "application/json"])), max_size=2))
    return Case(
        "generated",
        subject=draw(texts),
        body=draw(bodies),
        from_email=draw(addresses()),
        to=tuple(draw(st.lists(addresses(), max_size=3))),
        cc=tuple(draw(st.lists(addresses(), max_size=2))),
        reply_to=tuple(draw(st.lists(addresses(), max_size=1))),
        headers=draw(st.dictionaries(st.sampled_from(["X-Custom", "X-Mailer", "List-Id", "Sender"]), texts,
                                     max_size=2)),
        attachments=tuple(draw(st.lists(st.builds(Attach, filenames, contents, mimetypes), max_size=2))),
        alternatives=tuple(alternatives),
        multi=draw(st.booleans()),
        content_subtype=draw(st.sampled_from([None, "html", "plain", "x-custom"])),
    )


# MAILQUEUE_FASTPATH_EXAMPLES=20000 hunts harder (minutes) after a change to the fast path.
GENERATED = settings(max_examples=int(os.environ.get("MAILQUEUE_FASTPATH_EXAMPLES", "300")), deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


@GENERATED
@given(case=cases())
@example(case=Case("from-lines", body="From here\r\n.\r\nFrom there\n..\n"))
@example(case=Case("mixed-ends", body="a\r\nb\nc\rd\n\re \n"))
@example(case=Case("spaced-cc", to=(), cc=("00@example.com", "  <00@example.com>")))
def test_generated_messages_match_the_standard_build(case: Case) -> None:
    assert_same_message(case)


@st.composite
def common_cases(draw: st.DrawFn) -> Case:
    """What applications send: words in the subject, simple names and addresses, text and html."""
    simple_words = st.text(string.ascii_letters + string.digits + "!?'-", min_size=1, max_size=12)
    name = st.lists(st.one_of(simple_words, unicode_words.filter(lambda w: '"' not in w and "\\" not in w)),
                    min_size=1, max_size=4).map(" ".join)

    def address(local: str) -> st.SearchStrategy[str]:
        return st.builds(lambda n, d: str(Address(display_name=n, username=local, domain=d)),
                         st.one_of(st.just(""), name), domains)

    html = draw(st.one_of(st.none(), bodies))
    return Case(
        "common",
        subject=draw(st.lists(st.one_of(simple_words, unicode_words), min_size=1, max_size=12).map(" ".join)),
        body=draw(bodies),
        from_email=draw(address("from")),
        to=tuple(draw(st.lists(address("to"), min_size=1, max_size=3))),
        alternatives=() if html is None else ((html, "text/html"),),
    )


@GENERATED
@given(case=common_cases())
def test_common_messages_take_the_fast_path_and_match(case: Case) -> None:
    message = build(MAILQUEUE, case)
    fast = fast_serialize(message, policy=SMTP)
    assert fast is not None, "the fast path refused a common message"
    assert describe(fast.message) == describe(standard_bytes(build(MAILQUEUE, case)))


@GENERATED
@given(subject=sentences.filter(str.isascii))
def test_ascii_text_headers_fold_like_the_email_package(subject: str) -> None:
    message = EmailMessage(subject, "Body", "a@example.com", ["b@example.com"], headers={"X-Long-Header": subject})
    fast = fast_serialize(message, policy=SMTP)
    assume(fast is not None)
    assert fast is not None
    assert normalized_bytes(fast.message) == normalized_bytes(standard_bytes(message))


@GENERATED
@given(names=st.lists(st.lists(ascii_words.filter(lambda w: not set(w) & set('()<>@,:;."[]\\')), max_size=6)
                      .map(" ".join), min_size=1, max_size=8))
def test_long_address_lists_fold_like_the_email_package(names: list[str]) -> None:
    to = [str(Address(display_name=name, username=f"person{i}", domain="example.com")) for i, name in
          enumerate(names)]
    message = EmailMessage("S", "Body", "a@example.com", to)
    fast = fast_serialize(message, policy=SMTP)
    assert fast is not None
    assert normalized_bytes(fast.message) == normalized_bytes(standard_bytes(message))


def test_a_lone_surrogate_takes_the_standard_build() -> None:
    message = EmailMessage("S", "bad \udcff body", "a@example.com", ["b@example.com"])
    assert fast_serialize(message, policy=SMTP) is None


@pytest.mark.parametrize("length", range(1, 80, 3))
def test_message_ids_of_any_length_are_written_as_the_email_package_writes_them(length: int) -> None:
    message = EmailMessage("S", "B", "a@example.com", ["b@example.com"],
                           headers={"Message-ID": make_msgid(domain="d" * length)})
    fast = fast_serialize(message, policy=SMTP)
    assert fast is not None
    assert normalized_bytes(fast.message) == normalized_bytes(standard_bytes(message))


# The email package keeps an address list's own spelling (spacing, angle brackets) unless
# IDNA domains make it rewrite the header; found by the generated cases above.
@pytest.mark.parametrize("cc", [
    ["a@example.com", "<b@example.com>"], ["a@example.com", "  b@example.com"],
    ["a@example.com", " Ann <b@example.com>"],
    ["a@example.com", "Ann  <b@example.com>"], ["Ann<b@example.com>"], ["<b@example.com>"],
    ["a@example.com,b@example.com"], ["a@example.com,  b@example.com"], ['"Ann"  <b@example.com>'],
    ["Änn  <a@example.com>", "b@example.com"], ["a@bücher.de", "  Ann <b@example.com>"],
])
def test_address_lists_keep_their_spelling(cc: list[str]) -> None:
    assert_same_message(Case("spelling", to=(), cc=tuple(cc)))

