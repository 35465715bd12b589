"""Attachments (issue 2, section 2): attach(), attach_file(), and the MIME parts they make."""

from __future__ import annotations

import email
import email.policy
from email.message import MIMEPart
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any

import pytest

from mailqueue import InvalidMessage
from mailqueue.deprecation import RemovedInDjango2028Warning
from mailqueue.message import EmailMessage
from mailqueue.message.attachments import DEFAULT_ATTACHMENT_MIME_TYPE, EmailAttachment

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def make(**kwargs: object) -> EmailMessage:
    return EmailMessage("Subject", "Body", "from@example.com", ["to@example.com"], **kwargs)  # type: ignore[arg-type]


def attached_parts(message: EmailMessage) -> list[Any]:
    """The attachment parts of the message as a receiver parses it."""
    raw = message.message().as_bytes()
    parsed: Any = email.message_from_bytes(raw, policy=email.policy.default)
    return list(parsed.iter_attachments())


# --- What attach() stores ---------------------------------------------------------------------


def test_attachment_is_stored_as_a_named_tuple() -> None:
    message = make()
    message.attach("notes.txt", "hello", "text/plain")
    assert message.attachments == [EmailAttachment("notes.txt", "hello", "text/plain")]
    assert message.attachments[0].filename == "notes.txt"


def test_mimetype_is_guessed_from_the_filename() -> None:
    message = make()
    message.attach("photo.png", PNG)
    assert message.attachments[0].mimetype == "image/png"


def test_mimetype_defaults_to_octet_stream_when_it_cannot_be_guessed() -> None:
    message = make()
    message.attach("data.unknownext", b"x")
    assert message.attachments[0].mimetype == DEFAULT_ATTACHMENT_MIME_TYPE == "application/octet-stream"


def test_attachment_without_filename_defaults_to_octet_stream() -> None:
    message = make()
    message.attach(content=b"x")
    assert message.attachments[0].mimetype == DEFAULT_ATTACHMENT_MIME_TYPE


def test_text_attachment_given_as_bytes_is_decoded_as_utf8() -> None:
    message = make()
    message.attach("notes.txt", "ünïcode".encode())
    assert message.attachments[0] == EmailAttachment("notes.txt", "ünïcode", "text/plain")


def test_text_attachment_that_is_not_utf8_becomes_octet_stream() -> None:
    message = make()
    message.attach("notes.txt", b"\xff\xfe binary")
    assert message.attachments[0] == EmailAttachment("notes.txt", b"\xff\xfe binary", DEFAULT_ATTACHMENT_MIME_TYPE)


def test_explicit_text_mimetype_with_binary_bytes_becomes_octet_stream() -> None:
    message = make()
    message.attach("data.bin", b"\x80", "text/csv")
    assert message.attachments[0].mimetype == DEFAULT_ATTACHMENT_MIME_TYPE


def test_attach_without_content_raises() -> None:
    with pytest.raises(ValueError, match="content must be provided"):
        make().attach("notes.txt")


def test_attach_with_a_malformed_mimetype_raises_naming_it() -> None:
    with pytest.raises(InvalidMessage, match="'textplain'"):
        make().attach("notes.txt", "x", "textplain")


def test_attachment_filename_with_a_line_break_raises() -> None:
    with pytest.raises(InvalidMessage, match="filename"):
        make().attach("evil.txt\nX-Evil: 1", "x")


def test_attachments_appended_directly_are_still_checked_and_decoded() -> None:
    message = make()
    message.attachments.append(("notes.txt", b"ok", "text/plain"))
    [part] = attached_parts(message)
    assert (part.get_content_type(), part.get_content()) == ("text/plain", "ok\n")


# --- attach_file() -------------------------------------------------------------------------------


def test_attach_file_uses_the_files_name_and_guesses_its_type(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(PNG)
    message = make()
    message.attach_file(path)
    assert message.attachments == [EmailAttachment("photo.png", PNG, "image/png")]


def test_attach_file_decodes_a_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes("héllo\n".encode())
    message = make()
    message.attach_file(str(path))
    assert message.attachments == [EmailAttachment("notes.txt", "héllo\n", "text/plain")]


def test_attach_file_of_binary_text_becomes_octet_stream(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"\xff\x00")
    message = make()
    message.attach_file(path)
    assert message.attachments[0].mimetype == DEFAULT_ATTACHMENT_MIME_TYPE


def test_attach_file_takes_an_explicit_mimetype(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"{}")
    message = make()
    message.attach_file(path, "application/json")
    assert message.attachments[0].mimetype == "application/json"


def test_attach_file_of_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        make().attach_file(tmp_path / "missing.txt")


# --- The parts they make ---------------------------------------------------------------------------


def test_binary_attachment_is_base64_with_its_filename() -> None:
    message = make()
    message.attach("photo.png", PNG)
    [part] = attached_parts(message)
    assert part["Content-Transfer-Encoding"] == "base64"
    assert (part.get_filename(), part.get_content()) == ("photo.png", PNG)


def test_str_content_of_a_binary_type_is_encoded_as_utf8() -> None:
    message = make()
    message.attach("data.json", '{"a": "é"}', "application/json")
    [part] = attached_parts(message)
    assert part.get_content() == '{"a": "é"}'.encode()


def test_text_attachment_uses_the_message_charset() -> None:
    message = make()
    message.encoding = "iso-8859-1"
    message.attach("notes.txt", "café\n")
    [part] = attached_parts(message)
    assert (part.get_content_charset(), part.get_content()) == ("iso-8859-1", "café\n")


def test_non_ascii_filename_is_encoded_per_rfc2231() -> None:
    message = make()
    message.attach("naïve résumé.pdf", b"%PDF")
    raw = message.message().as_bytes()
    assert b"filename*=utf-8''na%C3%AFve%20r%C3%A9sum%C3%A9.pdf" in raw
    [part] = attached_parts(message)
    assert part.get_filename() == "naïve résumé.pdf"


def test_long_non_ascii_filename_survives_folding() -> None:
    name = "très-long-nom-de-fichier-" * 6 + ".txt"
    message = make()
    message.attach(name, "x")
    [part] = attached_parts(message)
    assert part.get_filename() == name


def test_rfc822_attachment_from_a_mailqueue_email_message() -> None:
    inner = EmailMessage("Inner", "Inner body", "inner@example.com", ["x@exämple.com"])
    message = make()
    message.attach("inner.eml", inner, "message/rfc822")
    [part] = attached_parts(message)
    forwarded = part.get_content()
    assert part.get_content_type() == "message/rfc822"
    assert (forwarded["Subject"], forwarded["To"]) == ("Inner", "x@xn--exmple-cua.com")
    assert forwarded.get_content() == "Inner body\n"


def test_rfc822_attachment_from_a_mailqueue_message_uses_the_outer_policy() -> None:
    inner = EmailMessage("Inner", "Inner body", "inner@example.com", ["x@example.com"])
    message = make()
    message.attach("inner.eml", inner, "message/rfc822")
    built: Any = message.message(policy=email.policy.SMTP)
    assert built.get_payload()[1].get_payload()[0].policy is email.policy.SMTP


def test_rfc822_attachment_from_a_stdlib_message_is_attached_as_is() -> None:
    inner = email.message.EmailMessage()
    inner["Subject"] = "Stdlib"
    inner.set_content("Stdlib body\n")
    message = make()
    message.attach("std.eml", inner, "message/rfc822")
    built: Any = message.message()
    assert built.get_payload()[1].get_payload()[0] is inner


def test_rfc822_attachment_from_a_str() -> None:
    message = make()
    message.attach("raw.eml", "Subject: From str\n\nStr body\n", "message/rfc822")
    [part] = attached_parts(message)
    assert part.get_content()["Subject"] == "From str"


def test_rfc822_attachment_from_bytes() -> None:
    message = make()
    message.attach("raw.eml", "Subject: Fröm bytes\n\nBytes body\n".encode(), "message/rfc822")
    [part] = attached_parts(message)
    assert part.get_content().get_content() == "Bytes body\n"


def test_mimepart_attachment_is_attached_as_is() -> None:
    part = MIMEPart()
    part.set_content(PNG, maintype="image", subtype="png", disposition="inline", cid="<logo@example.com>")
    message = make()
    message.attach(part)
    assert message.attachments == [part]
    built: Any = message.message()
    assert built.get_payload()[1] is part


def test_mimepart_attachment_with_content_raises() -> None:
    with pytest.raises(ValueError, match="must not be given when a MIMEPart"):
        make().attach(MIMEPart(), "content")


def test_legacy_mimebase_attachment_is_attached_as_is_with_a_warning() -> None:
    part = MIMEText("legacy")
    message = make()
    with pytest.warns(RemovedInDjango2028Warning, match=r"^MIMEBase attachments are deprecated\. Use an "
                                                         r"email\.message\.MIMEPart instead\.$"):
        message.attach(part)
    assert message.attachments == [part]
    built: Any = message.message()
    assert built.get_payload()[1] is part


def test_legacy_mimebase_attachment_with_content_raises() -> None:
    with pytest.warns(RemovedInDjango2028Warning), pytest.raises(ValueError, match="must not be given when a MIMEBase"):
        make().attach(MIMEText("legacy"), mimetype="text/plain")


def test_constructor_accepts_tuples_named_tuples_and_mimeparts() -> None:
    part = MIMEPart()
    part.set_content("part\n")
    message = make(attachments=[("a.txt", b"first", None), EmailAttachment("b.bin", b"\x01", "application/x-b"), part])
    assert message.attachments == [EmailAttachment("a.txt", "first", "text/plain"),
                                   EmailAttachment("b.bin", b"\x01", "application/x-b"), part]
