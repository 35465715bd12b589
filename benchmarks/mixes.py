"""The message mixes every section sends: the same inputs for mailqueue and for Django."""

from __future__ import annotations

import random
import textwrap
from dataclasses import dataclass
from typing import Any

SENDER = "Shop <shop@example.com>"
RECIPIENT = "Customer Name <customer@example.org>"
SUBJECT = "Your order #12345 has shipped"
_PARAGRAPH = ("Thank you for your order. Your parcel left our warehouse this morning and should arrive "
              "within two to three working days. You can follow it with the tracking link below. ")
# About 1 KB of text wrapped at 72 columns, as a template would render it.
TEXT = "Hello Customer,\n\n" + "\n\n".join(textwrap.fill(_PARAGRAPH * 2, 72) for _ in range(3)) + "\n\nThe Shop\n"
# The same content as HTML, one paragraph per line (so some lines pass 78 characters).
HTML = ("<html>\n<body>\n<p>Hello Customer,</p>\n" + "".join(f"<p>{_PARAGRAPH * 2}</p>\n" for _ in range(3))
        + "<p>The Shop</p>\n</body>\n</html>\n")
ATTACHMENT = random.Random(5).randbytes(100 * 1024)  # incompressible, like a PDF


@dataclass(frozen=True)
class Mix:
    key: str
    label: str
    html: bool = False
    attachment: bool = False

    def build(self, library: Any) -> Any:
        """The message, made with ``library``'s classes (``mailqueue`` or ``django.core.mail``)."""
        message = library.EmailMultiAlternatives(SUBJECT, TEXT, SENDER, [RECIPIENT])
        if self.html:
            message.attach_alternative(HTML, "text/html")
        if self.attachment:
            message.attach("invoice.pdf", ATTACHMENT, "application/pdf")
        return message


MIXES = [
    Mix("text", "1 KB text"),
    Mix("text+html", "text + html", html=True),
    Mix("text+attachment", "text + 100 KB attachment", attachment=True),
]
