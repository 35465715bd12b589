"""Email messages, as in Django 6.1's ``django.core.mail.message``, without Django.

``EmailMessage.message()`` builds a stdlib ``email.message.EmailMessage`` in three steps,
each overridable and each a place where a faster builder can take over:

1. ``header_items()``: the top-level headers as validated ``(name, value)`` pairs;
2. ``_add_bodies()`` and ``_add_attachments()``: the MIME tree;
3. the headers are set on the tree, then address domains are IDNA-encoded.
"""

from __future__ import annotations

import datetime
import email.errors
import email.message
import email.policy
from collections.abc import Iterable, Mapping, Sequence
from email.message import MIMEPart
from email.mime.base import MIMEBase
from email.policy import Policy
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from mailqueue.conf import settings
from mailqueue.deprecation import (
    CONNECTION_ARG_WARNING,
    CONNECTION_ATTRIBUTE_SET_WARNING,
    CONNECTION_ATTRIBUTE_WARNING,
    EMAIL_MESSAGE_POSITIONAL,
    EMAIL_MULTI_ALTERNATIVES_POSITIONAL,
    FAIL_SILENTLY_ARG_WARNING,
    MIMEBASE_ATTACHMENT_WARNING,
    deprecate_posargs,
    refuse_get_connection_override,
    refuse_removed_attribute,
    report_using_incompatibility,
    warn,
    warn_about_external_use,
)
from mailqueue.exceptions import InvalidMessage
from mailqueue.message.addresses import NOT_AN_ADDRESS
from mailqueue.message.attachments import (
    DEFAULT_ATTACHMENT_MIME_TYPE,
    EmailAttachment,
    add_attachment,
    check_content,
    make_attachment,
    split_mimetype,
    to_bytes,
)
from mailqueue.message.headers import (
    ADDRESS_ARGUMENT_HEADERS,
    BCC_IN_HEADERS,
    check_addresses,
    check_header_name,
    check_header_value,
    date_value,
    header_value,
    make_msgid,
    punycode_address_headers,
    subject_value,
)

if TYPE_CHECKING:
    from mailqueue.backends.base import BaseEmailBackend

__all__ = [
    "DEFAULT_ATTACHMENT_MIME_TYPE",
    "EmailAlternative",
    "EmailAttachment",
    "EmailMessage",
    "EmailMultiAlternatives",
    "make_msgid",
]

CONNECTION_WITH_FAIL_SILENTLY = (
    "fail_silently cannot be used with a connection. Pass fail_silently to get_connection() instead."
)


class EmailAlternative(NamedTuple):
    content: Any
    mimetype: str


def _address_list(argument: str, value: Sequence[str] | None) -> list[str]:
    """Copy a recipient list; a bare str is refused since it would be split into letters."""
    if not value:
        return []
    if isinstance(value, str):
        raise TypeError(f'"{argument}" argument must be a list or tuple')
    return list(value)


def _header_mapping(headers: Any) -> Mapping[str, Any]:
    """``headers`` must be a mapping: Django crashes later with AttributeError on a list."""
    if not isinstance(headers, Mapping):
        raise TypeError(f'"headers" argument must be a dict, not {type(headers).__name__}.')
    return headers


def _alternative(content: Any, mimetype: Any, *, argument: str = "content") -> EmailAlternative:
    if content is None or mimetype is None:
        raise ValueError("Both content and mimetype must be provided.")
    check_content(content, mimetype, argument=argument, alternative=True)
    return EmailAlternative(content, mimetype)


def _set_header(msg: email.message.EmailMessage, name: str, value: Any) -> None:
    """Set a header; the email package's parser crashes (IndexError) on some malformed
    addresses such as ``"nobody@"``, which the caller must see as an invalid message."""
    try:
        msg[name] = value
    except IndexError:  # the email package's own parser error for these: "string index out of range"
        raise InvalidMessage(f"Invalid {name} header value {value!r}: {NOT_AN_ADDRESS}.") from None
    except email.errors.HeaderParseError as error:
        raise InvalidMessage(f"Invalid {name} header value {value!r}: {error}") from None


class EmailMessage:
    """A single email message, which can be sent to several recipients."""

    content_subtype = "plain"
    # Charset of text/* bodies and attachments; None means settings.DEFAULT_CHARSET.
    encoding: str | None = None
    _send_at: datetime.datetime | None = None

    @property
    def send_at(self) -> datetime.datetime | None:
        """When to deliver, no earlier (None: now). The queue backend holds the message until
        then; a backend that cannot hold it refuses it (``SchedulingUnsupported``)."""
        return self._send_at

    @send_at.setter
    def send_at(self, value: datetime.datetime | None) -> None:
        # Refused here, at the assignment: a naive time means a different moment on every host.
        if value is not None and not isinstance(value, datetime.datetime):
            raise TypeError(f"send_at must be a timezone-aware datetime or None, got {type(value).__name__}")
        if value is not None and value.utcoffset() is None:
            raise ValueError(f"send_at must be timezone-aware (a naive datetime is ambiguous): {value!r}; "
                             "use datetime.datetime(..., tzinfo=datetime.UTC) or .astimezone()")
        self._send_at = value

    @deprecate_posargs(EMAIL_MESSAGE_POSITIONAL)
    def __init__(
        self,
        subject: str = "",
        body: str = "",
        from_email: str | None = None,
        to: Sequence[str] | None = None,
        *,
        bcc: Sequence[str] | None = None,
        connection: BaseEmailBackend | None = None,
        attachments: Iterable[Any] | None = None,
        headers: dict[str, Any] | None = None,
        cc: Sequence[str] | None = None,
        reply_to: Sequence[str] | None = None,
    ) -> None:
        self.to = _address_list("to", to)
        self.cc = _address_list("cc", cc)
        self.bcc = _address_list("bcc", bcc)
        self.reply_to = _address_list("reply_to", reply_to)
        self.from_email: str = from_email or settings.DEFAULT_FROM_EMAIL
        self.subject = subject
        self.body = body or ""
        self.attachments: list[Any] = []
        for attachment in attachments or ():
            if isinstance(attachment, (MIMEPart, MIMEBase)):
                self.attach(attachment)
            else:
                self.attach(*attachment)
        self.extra_headers: dict[str, Any] = headers or {}
        if connection is not None:
            # skip_frames=1: past deprecate_posargs' wrapper, to who created the message.
            warn_about_external_use(CONNECTION_ARG_WARNING, skip_frames=1)
        self._connection = connection
        self._check_types()

    @property
    def connection(self) -> BaseEmailBackend | None:
        """The backend send() uses; deprecated in Django 6.1 for ``send(using=...)``."""
        warn_about_external_use(CONNECTION_ATTRIBUTE_WARNING)
        return self._connection

    @connection.setter
    def connection(self, value: BaseEmailBackend | None) -> None:
        warn_about_external_use(CONNECTION_ATTRIBUTE_SET_WARNING)
        self._connection = value

    def _check_types(self) -> None:
        """Refuse, at the call site, the types the build would refuse later (it checks
        again: attributes may be changed after construction)."""
        subject_value(self.subject)
        for name, value in _header_mapping(self.extra_headers).items():
            if isinstance(name, str):  # a bad name is refused by the build, with the other header rules
                header_value(name, value)

    # --- Building ------------------------------------------------------------------------

    def message(self, *, policy: Policy = email.policy.default) -> email.message.EmailMessage:
        """Build the stdlib message; this validates every header and address."""
        headers = self.header_items()
        msg = email.message.EmailMessage(policy=policy)
        self._add_bodies(msg)
        self._add_attachments(msg)
        for name, value in headers:
            _set_header(msg, name, value)
        if not getattr(policy, "utf8", False):
            punycode_address_headers(msg)
        return msg

    def header_items(self) -> list[tuple[str, Any]]:
        """The top-level headers, in Django's order, after refusing header injection.

        Subject, From, To, Cc and Reply-To come first (a header of that name in
        ``extra_headers``, in any case, replaces the argument's value in the header only),
        then a new Date and Message-ID unless given, then the other extra headers.
        """
        subject = subject_value(self.subject)
        check_header_value("Subject", subject)
        self._check_addresses()
        extra = self._checked_extra_headers()
        items: list[tuple[str, Any]] = [("Subject", subject), *self._address_header_items(extra)]
        given = {name.lower() for name, _ in extra}
        if "date" not in given:
            items.append(("Date", date_value(localtime=bool(settings.EMAIL_USE_LOCALTIME))))
        if "message-id" not in given:
            items.append(("Message-ID", make_msgid()))
        items.extend(item for item in extra if item[0].lower() not in ADDRESS_ARGUMENT_HEADERS)
        return items

    def _address_header_items(self, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """From, To, Cc and Reply-To: from the extra headers if given there, else from the
        arguments (empty lists give no header)."""
        replaced = {name.lower(): value for name, value in extra if name.lower() in ADDRESS_ARGUMENT_HEADERS}
        items = [("From", replaced.get("from", str(self.from_email)))]
        for key, values in (("to", self.to), ("cc", self.cc), ("reply-to", self.reply_to)):
            if key in replaced:
                items.append((ADDRESS_ARGUMENT_HEADERS[key], replaced[key]))
            elif values:
                items.append((ADDRESS_ARGUMENT_HEADERS[key], ", ".join(str(v) for v in values)))
        return items

    def _check_addresses(self) -> None:
        check_addresses("from_email", [self.from_email])
        for argument in ("to", "cc", "bcc", "reply_to"):
            check_addresses(argument, getattr(self, argument))

    def _checked_extra_headers(self) -> list[tuple[str, str]]:
        """``extra_headers`` as converted pairs, refusing Bcc and header injection."""
        pairs = []
        for name, value in _header_mapping(self.extra_headers).items():
            check_header_name(name)
            if name.lower() == "bcc":
                raise InvalidMessage(BCC_IN_HEADERS)
            converted = header_value(name, value)
            check_header_value(name, converted)
            pairs.append((name, converted))
        return pairs

    def _charset(self) -> str:
        return self.encoding or settings.DEFAULT_CHARSET

    def _add_bodies(self, msg: email.message.EmailMessage) -> None:
        """Set the body as the main text part (skipped when only attachments carry content)."""
        if self.body or not self.attachments:
            charset = self._charset()
            body = self.body or ""
            if isinstance(body, bytes):
                body = body.decode(charset, errors="surrogateescape")
            msg.set_content(str(body), subtype=self.content_subtype, charset=charset)

    def _add_attachments(self, msg: email.message.EmailMessage) -> None:
        """Turn ``msg`` into multipart/mixed and add each attachment to it."""
        if not self.attachments:
            return
        refuse_removed_attribute(self, "mixed_subtype", "EmailMessage")
        msg.make_mixed()
        charset = self._charset()
        for attachment in self.attachments:
            if isinstance(attachment, (MIMEPart, MIMEBase)):  # MIMEBase: deprecated, attached as it is
                msg.attach(cast(email.message.EmailMessage, attachment))
            else:
                add_attachment(msg, attachment, encoding=charset)

    # --- Recipients and sending ------------------------------------------------------------

    def recipients(self) -> list[str]:
        """Every envelope recipient: to, cc and bcc, with empty entries dropped."""
        return [address for address in (*self.to, *self.cc, *self.bcc) if address]

    def send(self, fail_silently: bool = False, *, using: str | None = None) -> int:
        """Send the message through the mailer ``using``, its connection, or a new default one;
        return 1 if it was sent, 0 otherwise (or with no recipients)."""
        if not self.recipients():
            # Nobody to send to: don't bother opening a connection.
            return 0
        # The one lazy import of the message <-> mail <-> backends circle (Django has the same):
        # mailqueue.mail imports this module for its send functions, and a message needs a
        # mailer only when it is sent.
        from mailqueue.mail import get_connection, mailers

        if fail_silently:
            warn_about_external_use(FAIL_SILENTLY_ARG_WARNING)
        refuse_get_connection_override(self)
        if using is not None:
            report_using_incompatibility(self._connection, fail_silently)
            return mailers[using].send_messages([self])
        if self._connection is not None:
            if fail_silently:
                raise TypeError(CONNECTION_WITH_FAIL_SILENTLY)
            return self._connection.send_messages([self])
        return get_connection(fail_silently=fail_silently).send_messages([self])

    # --- Attachments ---------------------------------------------------------------------

    def attach(
        self,
        filename: str | MIMEPart | MIMEBase | None = None,
        content: Any = None,
        mimetype: str | None = None,
    ) -> None:
        """Attach ``(filename, content, mimetype)``, or a ready ``MIMEPart`` as it is (a legacy
        ``email.mime`` ``MIMEBase`` too, with Django 6.1's deprecation warning).

        The MIME type is guessed from the filename if not given. ``text/*`` content given as
        bytes is decoded as UTF-8; if that fails it is binary and becomes
        application/octet-stream.
        """
        if isinstance(filename, MIMEPart):
            if content is not None or mimetype is not None:
                raise ValueError(
                    "content and mimetype must not be given when a MIMEPart instance is provided."
                )
            self.attachments.append(filename)
        elif isinstance(filename, MIMEBase):
            warn(MIMEBASE_ATTACHMENT_WARNING)
            if content is not None or mimetype is not None:
                raise ValueError(
                    "content and mimetype must not be given when a MIMEBase instance is provided."
                )
            self.attachments.append(filename)
        else:
            self.attachments.append(make_attachment(filename, content, mimetype))

    def attach_file(self, path: str | Path, mimetype: str | None = None) -> None:
        """Attach a file from disk under its own name, guessing the MIME type if not given."""
        path = Path(path)
        self.attach(path.name, path.read_bytes(), mimetype)


class EmailMultiAlternatives(EmailMessage):
    """An EmailMessage with alternative versions of its body, such as text and HTML."""

    @deprecate_posargs(EMAIL_MULTI_ALTERNATIVES_POSITIONAL)
    def __init__(
        self,
        subject: str = "",
        body: str = "",
        from_email: str | None = None,
        to: Sequence[str] | None = None,
        *,
        bcc: Sequence[str] | None = None,
        connection: BaseEmailBackend | None = None,
        attachments: Iterable[Any] | None = None,
        headers: dict[str, Any] | None = None,
        alternatives: Iterable[Sequence[Any]] | None = None,
        cc: Sequence[str] | None = None,
        reply_to: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            subject,
            body,
            from_email,
            to,
            bcc=bcc,
            connection=connection,
            attachments=attachments,
            headers=headers,
            cc=cc,
            reply_to=reply_to,
        )
        self.alternatives = [
            _alternative(*alternative, argument="alternatives") for alternative in alternatives or ()
        ]

    def attach_alternative(self, content: Any, mimetype: str) -> None:
        """Add an alternative representation of the body, such as ``text/html``."""
        self.alternatives.append(_alternative(content, mimetype))

    def body_contains(self, text: str) -> bool:
        """Whether ``text`` is in the body and in every ``text/*`` alternative."""
        if text not in self.body:
            return False
        return all(
            text in content
            for content, mimetype in self.alternatives
            if mimetype.startswith("text/")
        )

    def _add_bodies(self, msg: email.message.EmailMessage) -> None:
        """The body and the alternatives, as multipart/alternative when there are any."""
        if self.body or not self.alternatives:
            super()._add_bodies(msg)
        if not self.alternatives:
            return
        refuse_removed_attribute(self, "alternative_subtype", "EmailMultiAlternatives")
        msg.make_alternative()
        charset = self._charset()
        for content, mimetype in self.alternatives:
            # Alternatives may be appended to .alternatives directly, bypassing attach_alternative().
            check_content(content, mimetype, argument="alternatives", alternative=True)
            maintype, subtype = split_mimetype(mimetype)
            if maintype == "text":
                text = content.decode() if isinstance(content, bytes) else content
                msg.add_alternative(text, subtype=subtype, charset=charset)
            else:
                msg.add_alternative(to_bytes(content, charset), maintype=maintype, subtype=subtype)
