"""The plain address shapes (``mailqueue.message.addresses``) and the shortcut they give
``envelope_address()``: the same answer as the email package's parser, or no answer."""

from __future__ import annotations

from email.headerregistry import Address
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailqueue.message import addresses
from mailqueue.message.addresses import MESSAGE_ID, Mailbox, envelope_address, parse_mailbox, parse_mailboxes


@pytest.mark.parametrize(("address", "expected"), [
    ("a@example.com", Mailbox(None, "a", "example.com")),
    ("first.last+tag@mail.example.org", Mailbox(None, "first.last+tag", "mail.example.org")),
    ("webmaster@localhost", Mailbox(None, "webmaster", "localhost")),
    ("Name <a@example.com>", Mailbox("Name", "a", "example.com")),
    ("Zoë Müller <z@exämple.com>", Mailbox("Zoë Müller", "z", "exämple.com")),
    ('"Doe, John" <j@example.com>', Mailbox('"Doe, John"', "j", "example.com")),
    ("<a@example.com>", Mailbox(None, "a", "example.com")),
])
def test_plain_shapes_are_recognised(address: str, expected: Mailbox) -> None:
    assert parse_mailbox(address) == expected


@pytest.mark.parametrize("address", [
    "webmaster", "a@", "@example.com", "a b@example.com", "a..b@example.com", '"quoted local"@example.com',
    "jörg@example.com", "a@-example.com", "Name (comment) <a@example.com>", "=?utf-8?q?x?= <a@example.com>",
    "a@example.com, b@example.com", "Name <a@example.com> trailing", "tab\t<a@example.com>", 'a"b <a@example.com>',
])
def test_anything_else_is_left_to_the_parser(address: str) -> None:
    assert parse_mailbox(address) is None


def test_lists_need_every_entry_plain() -> None:
    assert parse_mailboxes("a@example.com, B <b@example.com>,c@example.com") == [
        Mailbox(None, "a", "example.com"), Mailbox("B", "b", "example.com"), Mailbox(None, "c", "example.com")]
    assert parse_mailboxes("a@example.com, ") is None
    assert parse_mailboxes("a@example.com, , b@example.com") is None
    assert parse_mailboxes("a@example.com, bad") is None


def test_message_id_shape_is_make_msgids() -> None:
    assert MESSAGE_ID.fullmatch("<179548404523.7193.13195739273639221030@host.example.com>")
    assert not MESSAGE_ID.fullmatch("179548404523@host")
    assert not MESSAGE_ID.fullmatch("<a@bücher.example>")


# --- envelope_address(): the shortcut agrees with the parser ---------------------------------

_NO_SURROGATES = st.characters(exclude_categories=["Cs"])
names = st.text(_NO_SURROGATES, max_size=30)
local_parts = st.one_of(st.from_regex(r"[a-zA-Z0-9._+=!#-]{1,20}", fullmatch=True), st.text(_NO_SURROGATES,
                                                                                                max_size=10))
domains = st.one_of(
    st.sampled_from(["example.com", "exämple.com", "пример.рф", "localhost", "xn--bcher-kva.example", "a_b.example",
                     "ü" * 70 + ".com", "-bad.example", "x.", "EXAMPLE.ORG"]),
    st.from_regex(r"[a-zäöüñé0-9-]{1,12}(\.[a-z0-9-]{1,8}){0,3}", fullmatch=True),
)


@st.composite
def candidates(draw: st.DrawFn) -> str:
    local, domain, name = draw(local_parts), draw(domains), draw(names)
    shapes = [f"{local}@{domain}", f"{name} <{local}@{domain}>", f'"{name}" <{local}@{domain}>']
    try:
        shapes.append(str(Address(display_name=name, username=local, domain=domain)))
    except (ValueError, IndexError):
        pass
    return draw(st.sampled_from(shapes))


def outcome(address: str, *, force_ascii: bool) -> str:
    try:
        return envelope_address(address, force_ascii=force_ascii)
    except Exception as error:  # noqa: BLE001 - compared, whatever it is
        return f"{type(error).__name__}: {error}"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(address=candidates(), force_ascii=st.booleans())
def test_envelope_address_gives_the_parsers_answer(address: str, force_ascii: bool) -> None:
    fast = outcome(address, force_ascii=force_ascii)
    with mock.patch.object(addresses, "parse_mailbox", lambda _address: None):  # the parser only
        parsed = outcome(address, force_ascii=force_ascii)
    assert fast == parsed


def test_envelope_address_skips_the_parser_for_plain_addresses() -> None:
    with mock.patch.object(addresses.AddressHeader, "value_parser", side_effect=AssertionError("parsed")):
        assert envelope_address("Zoë <zoe@bücher.example>") == "zoe@xn--bcher-kva.example"
        assert envelope_address("a@bücher.example", force_ascii=False) == "a@bücher.example"
