"""uvicorn's HTTP protocol with deadlines: a client that sends its request head or body too slowly is cut off.

uvicorn closes an idle keep-alive connection after a response, but nothing bounds a connection that opens and
sends nothing, a head sent a byte at a time, or a body that stalls: each holds a socket and a parser for ever
(slowloris). Here a request head must arrive within `timeout` seconds of the connection (or of its first
byte), a body may not stall for longer than `timeout` between chunks, and a whole body must arrive within
ten times that.

A request only writes down its deadline (a float); one sweep per event loop, a few times per `timeout`,
closes the connections past theirs. A timer per request cost 6-8 % of single-query throughput: three timers
armed and cancelled per request, and 30 s of cancelled timers piling up in the loop's heap.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)
BODY_TOTAL_FACTOR = 10
_sweeping: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


class DeadlineProtocol(HttpToolsProtocol):
    timeout = 30.0  # set per server by with_deadlines()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: float | None = None  # monotonic time by which the awaited bytes must have come
        self._awaiting = ""
        self._body_since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("no request head")
        if self.loop not in _sweeping:  # the first connection on this loop starts its sweeper
            _sweeping.add(self.loop)
            self.loop.call_soon(_sweep, self.loop, self.connections, min(1.0, self.timeout / 4))

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
        self._deadline = None

    def _arm(self, awaiting: str) -> None:
        self._deadline, self._awaiting = time.monotonic() + self.timeout, awaiting

    def _cut(self, reason: str) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info("closing a connection from %s: %s (%.0f s)", self.client, reason, self.timeout)
            self.transport.close()

    def overdue(self, now: float) -> bool:
        return self._deadline is not None and now > self._deadline


def _sweep(loop: asyncio.AbstractEventLoop, connections: set[Any], interval: float) -> None:
    """Close every connection of the server past its deadline, then come back after `interval`."""
    now = time.monotonic()
    for connection in [c for c in connections if isinstance(c, DeadlineProtocol) and c.overdue(now)]:
        connection._cut(connection._awaiting)
    loop.call_later(interval, _sweep, loop, connections, interval)


def with_deadlines(timeout: float) -> type[DeadlineProtocol]:
    """The protocol class for `uvicorn.run(http=...)` with this server's timeout."""
    return type("DeadlineProtocol", (DeadlineProtocol,), {"timeout": timeout})
