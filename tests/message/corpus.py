"""A corpus of message inputs that can be built with mailqueue or with Django.

Each ``Case`` describes the inputs once; ``build(library, case)`` makes the message with the
given library's classes, so both outputs come from exactly the same calls.
"""

from __future__ import annotations

import email
import email.policy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from email import encoders
from email.message import MIMEPart
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.image import MIMEImage
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any, NamedTuple

import mailqueue.message


class Library(NamedTuple):
    name: str
    EmailMessage: type
    EmailMultiAlternatives: type


MAILQUEUE = Library("mailqueue", mailqueue.message.EmailMessage, mailqueue.message.EmailMultiAlternatives)


@dataclass(frozen=True)
class Attach:
    """``msg.attach(filename, content, mimetype)``."""

    filename: str | None
    content: Any
    mimetype: str | None = None


@dataclass(frozen=True)
class AttachFile:
    """``msg.attach_file(path, mimetype)`` of a file written with ``content``."""

    filename: str
    content: bytes
    mimetype: str | None = None


@dataclass(frozen=True)
class AttachPart:
    """``msg.attach(part)`` of a fresh MIMEPart (or legacy ``email.mime`` MIMEBase) made by ``factory``."""

    factory: Callable[[], MIMEPart | MIMEBase]


@dataclass(frozen=True)
class AttachMessage:
    """A message/rfc822 attachment of ``inner`` built with the same library."""

    inner: Case
    filename: str | None = "forwarded.eml"


@dataclass(frozen=True)
class Case:
    id: str
    subject: str = "Subject"
    body: str = "Body text.\n"
    from_email: str | None = "from@example.com"
    to: tuple[str, ...] = ("to@example.com",)
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    headers: dict[str, Any] | None = None
    attachments: tuple[Any, ...] = ()
    init_attachments: tuple[Any, ...] = ()  # given to the constructor
    alternatives: tuple[tuple[Any, str], ...] = ()
    multi: bool = False  # EmailMultiAlternatives even without alternatives
    content_subtype: str | None = None
    encoding: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def build(library: Library, case: Case) -> Any:
    """The library's EmailMessage (or EmailMultiAlternatives) for ``case``."""
    kwargs: dict[str, Any] = {"cc": list(case.cc), "bcc": list(case.bcc), "reply_to": list(case.reply_to)}
    if case.headers is not None:
        kwargs["headers"] = dict(case.headers)
    if case.init_attachments:  # an AttachPart makes a fresh part for each message
        kwargs["attachments"] = [a.factory() if isinstance(a, AttachPart) else a for a in case.init_attachments]
    if case.alternatives or case.multi:
        cls = library.EmailMultiAlternatives
        kwargs["alternatives"] = list(case.alternatives)
    else:
        cls = library.EmailMessage
    msg = cls(case.subject, case.body, case.from_email, list(case.to), **kwargs)
    if case.content_subtype:
        msg.content_subtype = case.content_subtype
    if case.encoding:
        msg.encoding = case.encoding
    for attachment in case.attachments:
        _attach(library, msg, attachment)
    return msg


def _attach(library: Library, msg: Any, attachment: Any) -> None:
    if isinstance(attachment, Attach):
        msg.attach(attachment.filename, attachment.content, attachment.mimetype)
    elif isinstance(attachment, AttachPart):
        msg.attach(attachment.factory())
    elif isinstance(attachment, AttachMessage):
        msg.attach(attachment.filename, build(library, attachment.inner), "message/rfc822")
    elif isinstance(attachment, AttachFile):
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory, attachment.filename)
            path.write_bytes(attachment.content)
            msg.attach_file(path, attachment.mimetype)
    else:
        raise TypeError(f"Unknown attachment spec {attachment!r}")


# --- Inputs ------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
LATIN = "Ça va? Déjà vu, naïve façade, smörgåsbord.\n"
CYRILLIC = "Съешь же ещё этих мягких французских булок, да выпей чаю.\n" * 3
LONG_ASCII = "word " * 250 + "\n"
LONG_UNICODE = "mot accentué é " * 80 + "\n"
RAW_MESSAGE = "From: inner@example.com\nTo: x@example.com\nSubject: Inner\n\nInner body.\n"


def inline_image() -> MIMEPart:
    part = MIMEPart()
    part.set_content(PNG, maintype="image", subtype="png", disposition="inline", cid="<logo@example.com>")
    return part


def ical_part() -> MIMEPart:
    part = MIMEPart()
    part.set_content("BEGIN:VCALENDAR\nEND:VCALENDAR\n", subtype="calendar", params={"method": "REQUEST"})
    return part


def legacy_image() -> MIMEBase:
    """Django 5.x style: a legacy email.mime part (deprecated in 6.1, still attached as it is)."""
    part = MIMEImage(PNG, "png")
    part.add_header("Content-ID", "<logo@example.com>")
    part.add_header("Content-Disposition", "inline", filename="logo.png")
    return part


def legacy_text() -> MIMEBase:
    part = MIMEText("Legacy ünïcode text.\n", "plain", "utf-8")
    part.add_header("Content-Disposition", "attachment", filename="legacy.txt")
    return part


def legacy_application() -> MIMEBase:
    return MIMEApplication(b"%PDF-1.4 legacy", Name="legacy.pdf")


def legacy_base() -> MIMEBase:
    part = MIMEBase("application", "vnd.example")
    part.set_payload(bytes(range(200)))
    encoders.encode_base64(part)
    part.add_header("Content-Disposition", "attachment", filename="data.example")
    return part


def stdlib_message() -> email.message.EmailMessage:
    inner = email.message.EmailMessage()
    inner["Subject"] = "Stdlib inner"
    inner["From"] = "stdlib@example.com"
    inner.set_content("Built with the standard library.\n")
    return inner


INNER = Case("inner", subject="Inner söbject", body="Inner body.\n", to=("in@exämple.com",),
             headers={"Date": "Mon, 01 Jan 2024 00:00:00 +0000", "Message-ID": "<inner@example.com>"})

CASES: list[Case] = [
    Case("plain"),
    Case("empty-body", body=""),
    Case("no-recipients", to=()),
    Case("default-from", from_email=None),
    Case("unicode-subject", subject="Grüße aus Köln — ça marche ✓"),
    Case("long-unicode-subject", subject="Ünïcödé " * 20),
    Case("long-ascii-subject", subject="A rather long subject line " * 6),
    Case("display-names", from_email="Jörg Müller <jm@example.com>",
         to=('"Doe, John" <john@example.com>', "Zoë <zoe@example.com>", "plain@example.com"),
         cc=("Åsa <asa@example.com>",), reply_to=("Reply Désk <desk@example.com>",)),
    Case("idna-domains", from_email="Sender <sender@bücher.example>",
         to=("to@exämple.com", "Ünïcode Name <x@münchen.de>"), cc=("cc@ñandú.es",),
         reply_to=("r@пример.рф",)),
    Case("idna-in-extra-address-header", headers={"Sender": "s@bücher.example", "Resent-To": "r@exämple.com"}),
    Case("cc-bcc-reply-to", cc=("cc1@example.com", "cc2@example.com"), bcc=("hidden@example.com",),
         reply_to=("reply@example.com",)),
    Case("bcc-only", to=(), bcc=("hidden@example.com",)),
    Case("empty-entries-in-lists", to=("to@example.com", ""), cc=("",)),
    Case("long-ascii-lines", body=LONG_ASCII),
    Case("very-long-line-over-998", body="x" * 1200 + "\n"),
    Case("mostly-non-ascii-body", body=CYRILLIC),
    Case("long-non-ascii-lines", body=LONG_UNICODE),
    Case("latin-body", body=LATIN),
    Case("more-than-ten-lines", body="".join(f"línea {i}\n" for i in range(30))),
    Case("from-and-dot-lines", body="From the start\n.\n..\nFrom me\n"),
    Case("crlf-body", body="one\r\ntwo\r\nthree"),
    Case("trailing-whitespace", body="tab\t\nspace  \n"),
    Case("html-content-subtype", body="<p>Hello <b>world</b></p>", content_subtype="html"),
    Case("latin1-encoding", body=LATIN, encoding="iso-8859-1",
         attachments=(Attach("notes.txt", "café\n"),)),
    Case("custom-headers", headers={"X-Mailer": "mailqueue", "List-Unsubscribe": "<https://example.com/u>",
                                    "X-Unicode": "Ünïcode välue",
                                    "X-Long": "value " * 40}),
    Case("header-overrides", headers={"From": "Header From <hf@example.com>", "To": "Header To <ht@example.com>",
                                      "Cc": "hc@example.com", "Reply-To": "hr@example.com"}),
    Case("to-header-without-to-argument", to=(), bcc=("b@example.com",), headers={"To": "list@example.com"}),
    Case("date-and-message-id-overrides", headers={"Date": "Tue, 02 Jan 2024 10:00:00 +0100",
                                                   "Message-ID": "<fixed@example.com>"}),
    Case("lowercase-date-and-message-id", headers={"date": "Tue, 02 Jan 2024 10:00:00 +0100",
                                                   "message-id": "<fixed@example.com>"}),
    Case("alternative-html", alternatives=(("<p>Body <i>text</i>.</p>", "text/html"),)),
    Case("alternative-only", body="", alternatives=(("<p>Only HTML</p>", "text/html"),)),
    Case("alternatives-bytes-and-non-text", alternatives=(("<p>é</p>".encode(), "text/html"),
                                                          ('{"a": "é"}', "application/json"))),
    Case("multi-without-alternatives", multi=True),
    Case("attachment-only", body="", attachments=(Attach("data.bin", b"\x00\x01\x02"),)),
    Case("attachments-various", attachments=(
        Attach("report.pdf", b"%PDF-1.4 fake"),
        Attach("photo.png", PNG, "image/png"),
        Attach("table.csv", b"a,b\n1,2\n"),
        Attach("notes.txt", "plain text attachment\n"),
        Attach("utf8.txt", "ünïcode text\n".encode()),
        Attach("binary.txt", b"\xff\xfe\x00binary"),
        Attach("unknown.zzz", b"whatever"),
        Attach(None, b"no filename", "application/octet-stream"),
        Attach("page.html", "<p>attached html</p>"),
        Attach("long-text.txt", LONG_ASCII),
    )),
    Case("non-ascii-filenames", attachments=(
        Attach("naïve résumé.pdf", b"%PDF"),
        Attach("日本語のファイル.txt", "テキスト\n"),
        Attach("with \"quotes\" and spaces.txt", "x\n"),
        Attach("a-very-long-file-name-" * 5 + "ü.bin", b"\x00"),
    )),
    Case("attach-file", attachments=(AttachFile("hello.txt", b"hello\n"), AttachFile("raw.dat", b"\x00\xff"),
                                     AttachFile("bad.txt", b"\xff\xfe"), AttachFile("forced.bin", b"x", "text/plain"))),
    Case("constructor-attachments", init_attachments=(
        ("a.txt", "first\n", "text/plain"),
        mailqueue.message.EmailAttachment("b.bin", b"\x01", "application/x-b"),
    )),
    Case("mimepart-attachments", attachments=(AttachPart(inline_image), AttachPart(ical_part))),
    Case("alternative-and-attachments", alternatives=(("<p>html</p>", "text/html"),),
         attachments=(Attach("a.txt", "text\n"), AttachPart(inline_image))),
    Case("alternative-only-and-attachment", body="", alternatives=(("<p>html</p>", "text/html"),),
         attachments=(Attach("a.pdf", b"%PDF"),)),
    Case("rfc822-from-email-message", attachments=(AttachMessage(INNER),)),
    Case("rfc822-from-stdlib-message", attachments=(Attach("std.eml", stdlib_message(), "message/rfc822"),)),
    Case("rfc822-from-str", attachments=(Attach("raw.eml", RAW_MESSAGE, "message/rfc822"),)),
    Case("rfc822-from-bytes", attachments=(Attach("raw.eml", RAW_MESSAGE.encode(), "message/rfc822"),)),
    Case("rfc822-guessed-from-eml", attachments=(Attach("guess.eml", RAW_MESSAGE.encode()),)),
    Case("legacy-mime-attachments", attachments=(
        AttachPart(legacy_image), AttachPart(legacy_text), AttachPart(legacy_application), AttachPart(legacy_base))),
    Case("legacy-mime-in-constructor", init_attachments=(AttachPart(legacy_text), ("a.txt", "first\n", "text/plain"))),
    Case("legacy-mime-with-alternatives", alternatives=(("<p>html</p>", "text/html"),),
         attachments=(AttachPart(legacy_image),)),
    Case("legacy-mime-attachment-only", body="", attachments=(AttachPart(legacy_application),)),
]

POLICIES = {
    "default": email.policy.default,
    "SMTP": email.policy.SMTP,
    "SMTPUTF8": email.policy.SMTPUTF8,
}
