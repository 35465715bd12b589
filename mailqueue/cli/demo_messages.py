"""The messages ``mailqueue demo`` sends: varied, like an application's, with a few bad addresses.

Recipients named ``bounce...`` are refused for good by the demo's SMTP server and
``greylist...`` ones are refused once, so the demo shows failures, dead letters and retries.
"""

from __future__ import annotations

from mailqueue.devserver import BOUNCE_PREFIX, GREYLIST_PREFIX
from mailqueue.message import EmailMessage, EmailMultiAlternatives

BOUNCE_EVERY = 37  # about 3 % of the messages have a recipient that bounces
GREYLIST_EVERY = 11  # about 9 % are greylisted first
SENDER = "Demo Shop <shop@example.com>"
REPORT_CSV = b"day,orders\nmonday,12\ntuesday,17\n"
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def recipients_for(index: int) -> list[str]:
    recipients = [f"customer{index}@example.com"]
    if index % GREYLIST_EVERY == 0:
        recipients.append(f"{GREYLIST_PREFIX}{index}@example.org")
    if index % BOUNCE_EVERY == 0:
        recipients.append(f"{BOUNCE_PREFIX}{index}@example.net")
    return recipients


def plain(index: int, to: list[str]) -> EmailMessage:
    return EmailMessage(f"Your order #{index} has shipped", f"Hello,\n\norder #{index} is on its way.\n",
                        SENDER, to)


def html(index: int, to: list[str]) -> EmailMessage:
    message = EmailMultiAlternatives(
        f"Weekly news #{index}", "This week: new arrivals.", SENDER, to,
        reply_to=["news@example.com"], headers={"List-Unsubscribe": "<mailto:unsubscribe@example.com>"},
    )
    message.attach_alternative(f"<h1>Weekly news #{index}</h1><p>This week: <b>new arrivals</b>.</p>", "text/html")
    return message


def with_attachments(index: int, to: list[str]) -> EmailMessage:
    message = EmailMessage(f"Report {index}", "The report is attached.", SENDER, to, cc=["accounts@example.com"])
    message.attach("report.csv", REPORT_CSV, "text/csv")
    message.attach("logo.png", PIXEL_PNG, "image/png")
    return message


def international(index: int, to: list[str]) -> EmailMessage:
    return EmailMessage(f"Grüße aus Köln – Bestellung {index} ✓", "Vielen Dank für Ihre Bestellung!\n",
                        "Bücherladen <laden@bücher.example>", [*to, f"kundin{index}@bücher.example"],
                        bcc=["archive@example.com"])


KINDS = (plain, html, with_attachments, international)


def demo_messages(count: int) -> list[EmailMessage]:
    """``count`` messages cycling through the kinds above."""
    return [KINDS[index % len(KINDS)](index, recipients_for(index)) for index in range(1, count + 1)]
