"""mailqueue's messages match Django 6.1's for the same inputs (issue 2, section 2).

Both outputs are parsed and compared: decoded headers (Date and Message-ID values and
boundaries masked), the MIME tree, content types and parameters, transfer encodings and
decoded payloads. The raw serializations must also match byte for byte once masked.
"""

from __future__ import annotations

import email.policy
from email.headerregistry import Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.message.corpus import CASES, MAILQUEUE, POLICIES, Attach, Case, build
from tests.message.django_reference import DJANGO
from tests.message.structure import describe, normalized_bytes, tree


def serializations(case: Case, policy: email.policy.Policy) -> dict[str, list[bytes]]:
    """``as_bytes()`` and ``as_string()`` of the case built by each library."""
    result = {}
    for library in (MAILQUEUE, DJANGO):
        msg = build(library, case).message(policy=policy)
        result[library.name] = [msg.as_bytes(), msg.as_string().encode("utf-8", "surrogateescape")]
    return result


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_parsed_message_matches_django(case: Case, policy_name: str) -> None:
    outputs = serializations(case, POLICIES[policy_name])
    for ours, theirs in zip(outputs["mailqueue"], outputs["django"], strict=True):
        ours_described, theirs_described = describe(ours), describe(theirs)
        assert tree(ours_described) == tree(theirs_described)
        assert ours_described == theirs_described


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_serialized_bytes_match_django_once_ids_and_boundaries_are_masked(case: Case, policy_name: str) -> None:
    outputs = serializations(case, POLICIES[policy_name])
    for ours, theirs in zip(outputs["mailqueue"], outputs["django"], strict=True):
        assert normalized_bytes(ours) == normalized_bytes(theirs)


def test_corpus_covers_every_transfer_encoding() -> None:
    """The corpus is only a good reference if it exercises each encoding choice."""
    seen = set()
    for case in CASES:
        for policy in POLICIES.values():
            for raw in serializations(case, policy)["mailqueue"]:
                seen |= _encodings(describe(raw))
    assert {"7bit", "8bit", "quoted-printable", "base64"} <= seen


def _encodings(part: object) -> set[str]:
    found = {part.cte} if part.cte else set()  # type: ignore[attr-defined]
    for child in part.parts:  # type: ignore[attr-defined]
        found |= _encodings(child)
    return found


# --- Generated inputs --------------------------------------------------------------------

_NO_SURROGATES = st.characters(exclude_categories=["Cs"])
one_line = st.text(_NO_SURROGATES, max_size=60).filter(lambda s: "".join(s.splitlines()) == s)
display_names = one_line
bodies = st.text(_NO_SURROGATES, max_size=400)
filenames = one_line.filter(bool)
contents = st.one_of(st.binary(max_size=200), st.text(_NO_SURROGATES, max_size=200))
mimetypes = st.sampled_from(
    [None, "text/plain", "text/csv", "text/html", "application/pdf", "image/png", "message/rfc822"]
)
domains = st.sampled_from(["example.com", "exämple.com", "пример.рф", "münchen.de"])


@st.composite
def addresses(draw: st.DrawFn, local_part: str) -> str:
    return str(Address(display_name=draw(display_names), username=local_part, domain=draw(domains)))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    attachments = draw(st.lists(st.builds(Attach, filenames, contents, mimetypes), max_size=3))
    alternative = draw(st.one_of(st.none(), bodies))
    return Case(
        "generated",
        subject=draw(one_line),
        body=draw(bodies),
        from_email=draw(addresses("from")),
        to=tuple(draw(st.lists(addresses("to"), max_size=2))),
        cc=tuple(draw(st.lists(addresses("cc"), max_size=1))),
        reply_to=tuple(draw(st.lists(addresses("reply"), max_size=1))),
        headers={"X-Custom": draw(one_line)},
        attachments=tuple(attachments),
        alternatives=() if alternative is None else ((alternative, "text/html"),),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), policy_name=st.sampled_from(sorted(POLICIES)))
def test_generated_messages_match_django(case: Case, policy_name: str) -> None:
    outputs = _outcomes(case, POLICIES[policy_name])
    assert outputs["mailqueue"] == outputs["django"]


def _outcomes(case: Case, policy: email.policy.Policy) -> dict[str, object]:
    """Each library's described output, or the kind of error it raised."""
    result: dict[str, object] = {}
    for library in (MAILQUEUE, DJANGO):
        try:
            msg = build(library, case).message(policy=policy)
            result[library.name] = (describe(msg.as_bytes()), normalized_bytes(msg.as_bytes()))
        except ValueError as error:
            result[library.name] = f"raised ValueError ({type(error).__name__})"
    return result
