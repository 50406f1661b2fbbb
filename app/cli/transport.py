"""uvicorn's HTTP protocol with deadlines: a client that sends its request head or body too slowly is cut off.

uvicorn closes an idle keep-alive connection after a response, but nothing bounds a connection that opens and
sends nothing, a head sent a byte at a time, or a body that stalls: each holds a socket and a parser for ever
(slowloris). Here a request head must arrive within `timeout` seconds of the connection (or of its first
byte), a body may not stall for longer than `timeout` between chunks, and a whole body must arrive within
ten times that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)
BODY_TOTAL_FACTOR = 10


class DeadlineProtocol(HttpToolsProtocol):
    timeout = 30.0  # set per server by with_deadlines()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._body_since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("no request head")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm("request head too slow")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._body_since = time.monotonic()
        self._arm("request body stalled")

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if time.monotonic() - self._body_since > self.timeout * BODY_TOTAL_FACTOR:
            self._cut("request body too slow")
            return
        self._arm("request body stalled")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, reason: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.timeout, self._cut, reason)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _cut(self, reason: str) -> None:
        if not self.transport.is_closing():
            log.info("closing a connection from %s: %s (%.0f s)", self.client, reason, self.timeout)
            self.transport.close()


def with_deadlines(timeout: float) -> type[DeadlineProtocol]:
    """The protocol class for `uvicorn.run(http=...)` with this server's timeout."""
    return type("DeadlineProtocol", (DeadlineProtocol,), {"timeout": timeout})
