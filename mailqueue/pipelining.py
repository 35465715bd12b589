"""RFC 2920 PIPELINING for one SMTP transaction, over a connection smtplib set up.

smtplib waits for a reply after every command: MAIL, each RCPT, DATA and the end of data
cost a round trip each, which is what limits a relay 20 ms away. When the server
advertises PIPELINING, MAIL FROM, every RCPT TO and DATA go out as one group, and the body
with its end-of-data dot as a second: two round trips per message, whatever the number of
recipients. smtplib still connects, says EHLO, starts TLS and logs in; this module only
writes to its socket (``send``) and reads its replies (``getreply``), in order.

The replies are matched to the commands one by one, so each recipient keeps its own
outcome, exactly as in lock-step. The body is sent only after DATA's 354 (RFC 2920,
section 3.1: a client must not pipeline data after DATA), so a DATA the server refuses,
for instance because every RCPT was refused, never turns the message into commands.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from mailqueue.outcomes import Status, status_for_code

if TYPE_CHECKING:
    from mailqueue.backends.smtp import Transaction

TOO_MANY_RECIPIENTS = 452  # RFC 5321 4.5.3.1.10: the rest go in another transaction
START_MAIL_INPUT = 354
GROUP_LIMIT = 100  # commands per write, so that the unread replies stay a few KB
_LEADING_DOT = re.compile(rb"(?m)^\.")


def supports_pipelining(connection: smtplib.SMTP) -> bool:
    """Whether the server said PIPELINING in its EHLO reply (EHLO must have been sent)."""
    return bool(connection.has_extn("pipelining"))


def pipelined_transaction(
    connection: smtplib.SMTP, transaction: Transaction, data: bytes, mail_options: Sequence[str]
) -> bool:
    """One MAIL / RCPT... / DATA group, then the body; True if a 452 left some for another.

    ``data`` has CRLF line endings already. Replies are read in the order of the commands;
    a reply that never comes (disconnect, timeout) raises, leaving every recipient not yet
    settled to the caller, which reports them transient: none of them counts as accepted,
    because acceptance is only ever the reply to the end of data.
    SMTPDataError is raised when DATA itself is refused, as smtplib's ``data()`` does, so
    both clients report that case alike.
    """
    transaction.passed, transaction.over_limit = [], None
    transaction.stage = "mail"
    pending = transaction.pending()
    options = "".join(f" {option}" for option in mail_options)
    lines = [f"MAIL FROM:<{transaction.sender}>{options}"]
    lines += [f"RCPT TO:<{transaction.addresses[index]}>" for index in pending]
    lines.append("DATA")
    replies = _exchange(connection, lines)

    code, reply = next(replies)
    transaction.code = code
    mail_refused = code != 250
    if mail_refused:
        transaction.settle_pending(status_for_code(code), code, _text(reply))
    transaction.stage = "rcpt"
    for index in pending:
        code, reply = next(replies)
        if mail_refused:
            continue  # 503 bad sequence: MAIL's reply already said why
        transaction.code = code
        if status_for_code(code) is Status.ACCEPTED:
            transaction.passed.append(index)
        elif code == TOO_MANY_RECIPIENTS and transaction.passed:
            # Over the server's limit: this one stays pending for the next transaction.
            if transaction.over_limit is None:
                transaction.over_limit = (code, _text(reply))
        else:
            transaction.settle(index, status_for_code(code), code, _text(reply))
    transaction.stage = "data"
    code, reply = next(replies)
    if code == START_MAIL_INPUT and not transaction.passed:
        # A server that answers 354 with no recipient: end the empty message at once.
        connection.send(b".\r\n")
        connection.getreply()
    if mail_refused or not transaction.passed:
        connection.rset()
        return False
    transaction.code = code
    if code != START_MAIL_INPUT:
        raise smtplib.SMTPDataError(code, reply)
    connection.send(dot_stuffed(data))
    code, reply = connection.getreply()
    return transaction.settle_data(code, reply)


def dot_stuffed(data: bytes) -> bytes:
    """The body as DATA sends it: leading dots doubled, CRLF, then the end-of-data dot."""
    stuffed = _LEADING_DOT.sub(b"..", data)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def _exchange(connection: smtplib.SMTP, lines: list[str]) -> Iterator[tuple[int, bytes]]:
    """Each command's reply, in order, writing GROUP_LIMIT commands at a time.

    A server answers while it reads: a client that wrote thousands of RCPTs before reading
    could fill its own receive buffer, and the server would stop reading (RFC 2920, section
    3.1, on deadlock). Each write is answered in full before the next goes out.
    """
    for start in range(0, len(lines), GROUP_LIMIT):
        group = lines[start:start + GROUP_LIMIT]
        connection.send(_group(group))
        for _ in group:
            yield connection.getreply()


def _group(lines: list[str]) -> bytes:
    for line in lines:
        if "\r" in line or "\n" in line:
            raise ValueError(f"line break in an SMTP command: {line!r}")
    return "".join(f"{line}\r\n" for line in lines).encode("ascii")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


# Asked before each new message of a batch (a rate limit, a deadline). ``may_begin(False)``
# answers at once: True (go), False (begin no more) or None (not yet: the answer needs a wait).
# ``may_begin(True)`` may wait briefly, then answers True or False.
MayBegin = Callable[[bool], "bool | None"]


def pipelined_batch(
    connection: smtplib.SMTP, items: Sequence[tuple[Transaction, bytes, Sequence[str]]],
    may_begin: MayBegin | None = None,
) -> None:
    """Many transactions over one connection, one round trip per message in steady state.

    Each write carries the previous message's body and end-of-data dot together with the
    next message's MAIL / RCPT... / DATA group; the replies are then read in order: the end
    of data's (the only acceptance), then the new group's. A transaction that a 452 cut
    short goes back in the queue for a further transaction. Anything unusual (MAIL or DATA
    refused, no recipient left) is finished in lock-step before the pipeline goes on.
    OSError (a lost connection, a timeout) propagates: the caller settles every recipient
    not yet answered as transient.

    ``may_begin`` is asked before each new message. When it must wait (a rate limit), the
    previous body is sent first, so that no message sits half-sent while the next waits and
    the server sees each message when the limit let it go. Once it says no, no further
    message is begun: those are left untouched (``begun`` false) for the caller to report as
    not attempted, while a message already begun (one a 452 cut short) is still finished.
    """
    queue = list(items)
    body: tuple[Transaction, bytes] | None = None  # passed DATA's 354, its body not yet sent
    stopped = False

    def allowed() -> bool:
        nonlocal body
        if may_begin is None:
            return True
        verdict = may_begin(False)
        if verdict is None:
            if body is not None:
                _finish_body(connection, body, queue, items)
                body = None
            verdict = may_begin(True)
        return bool(verdict)

    def next_item() -> _Item | None:
        nonlocal stopped
        for position, item in enumerate(queue):
            if item[0].begun:
                return queue.pop(position)
            if not stopped and allowed():
                item[0].begun = True
                return queue.pop(position)
            stopped = True
        return None

    while True:
        item = next_item()
        if item is None and body is None:
            return
        chunk = dot_stuffed(body[1]) if body is not None else b""
        lines: list[str] = []
        sent: list[int] = []
        if item is not None:
            transaction, _, mail_options = item
            transaction.passed, transaction.over_limit = [], None
            transaction.stage = "mail"
            options = "".join(f" {option}" for option in mail_options)
            lines = [f"MAIL FROM:<{transaction.sender}>{options}"]
            sent = transaction.pending()
            lines += [f"RCPT TO:<{transaction.addresses[i]}>" for i in sent]
            lines.append("DATA")
        if len(lines) > GROUP_LIMIT:  # a long group: its own exchanges, then this message alone
            if body is not None:
                _finish_body(connection, body, queue, items)
            assert item is not None
            if pipelined_transaction(connection, item[0], item[1], item[2]):
                item[0].transactions += 1
                queue.append(item)
            body = None
            continue
        connection.send(chunk + _group(lines))
        if body is not None:
            _settled_data(connection, body, queue, items)
        body = None
        if item is not None:
            body = _read_group(connection, item[0], item[1], sent)


_Item = tuple["Transaction", bytes, Sequence[str]]


def _finish_body(
    connection: smtplib.SMTP, body: tuple[Transaction, bytes], queue: list[_Item], items: Sequence[_Item]
) -> None:
    connection.send(dot_stuffed(body[1]))
    _settled_data(connection, body, queue, items)


def _settled_data(
    connection: smtplib.SMTP, body: tuple[Transaction, bytes], queue: list[_Item], items: Sequence[_Item]
) -> None:
    """Read the end of data's reply; a transaction a 452 cut short is queued again."""
    transaction = body[0]
    code, reply = connection.getreply()
    if transaction.settle_data(code, reply):
        transaction.transactions += 1
        queue.append(next(item for item in items if item[0] is transaction))


def _read_group(
    connection: smtplib.SMTP, transaction: Transaction, data: bytes, sent: list[int]
) -> tuple[Transaction, bytes] | None:
    """The replies to one MAIL / RCPT... / DATA group; the message if its body may follow."""
    code, reply = connection.getreply()
    transaction.code = code
    mail_refused = code != 250
    if mail_refused:
        transaction.settle_pending(status_for_code(code), code, _text(reply))
    transaction.stage = "rcpt"
    for index in sent:
        code, reply = connection.getreply()
        if mail_refused:
            continue  # 503 bad sequence: MAIL's reply already said why
        transaction.code = code
        if status_for_code(code) is Status.ACCEPTED:
            transaction.passed.append(index)
        elif code == TOO_MANY_RECIPIENTS and transaction.passed:
            if transaction.over_limit is None:
                transaction.over_limit = (code, _text(reply))
        else:
            transaction.settle(index, status_for_code(code), code, _text(reply))
    transaction.stage = "data"
    code, reply = connection.getreply()
    if code == START_MAIL_INPUT and transaction.passed and not mail_refused:
        transaction.code = code
        return transaction, data
    if code == START_MAIL_INPUT:  # 354 with no recipient: end the empty message at once
        connection.send(b".\r\n")
        connection.getreply()
    if not mail_refused and transaction.passed:  # DATA refused: as smtplib's data() reports it
        transaction.code = code
        transaction.settle_pending(status_for_code(code), code, _text(reply))
    elif not mail_refused and transaction.over_limit is not None:
        transaction.settle_pending(Status.TRANSIENT, *transaction.over_limit)
    connection.rset()
    return None
