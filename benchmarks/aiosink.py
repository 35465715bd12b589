"""An aiosmtpd SMTP sink (the fallback when Postfix's smtp-sink is not installed).

``python -m benchmarks.aiosink PORT``: accepts everything, keeps nothing, and prints
``accepted N`` after each message so the benchmark can count deliveries. It advertises
PIPELINING, as smtp-sink does: aiosmtpd reads pipelined commands but does not say so, and a
client that honours the EHLO reply would otherwise never pipeline against it.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from aiosmtpd.controller import Controller


class CountingHandler:
    def __init__(self) -> None:
        self.accepted = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.accepted += 1
        sys.stdout.write(f"accepted {self.accepted}\n")
        sys.stdout.flush()
        return "250 OK"

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        responses.insert(-1, "250-PIPELINING")
        return responses


def main() -> None:
    controller = Controller(CountingHandler(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    try:
        threading.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
