"""Guard: an ASGI middleware that authenticates the caller (its Access goes in the scope) and refuses
unknown callers and oversized bodies before any routing or parsing."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.access import ANONYMOUS, SCOPE_KEY, Keys, Unauthenticated, credential_of
from app.api.errors import error_response, umbrella_error_response
from app.core.errors import Unauthorized

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
DOCS_PATHS = frozenset({"/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"})


@dataclass(frozen=True)
class Body:
    data: bytes
    complete: bool  # False: the client left before it had sent all of it
    receive: Receive  # gives `data` again as one message, then waits on the client as the server's would


async def read_body(receive: Receive, limit: int | None = None) -> Body | None:
    """The whole request body, for a middleware that must see it before the app does; None past `limit` bytes."""
    chunks, size, complete = [], 0, False
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if limit is not None and size > limit:
            return None
        if not message.get("more_body", False):
            complete = True
            break
    data = b"".join(chunks)
    pending: list[Message] = [{"type": "http.request", "body": data, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return Body(data, complete, replay)


class Guard:
    """Pure ASGI (not BaseHTTPMiddleware), because it runs on every request of the hot path."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, keys: Keys, open_paths: Collection[str]) -> None:
        """`open_paths` answer callers without a key (they see what ANONYMOUS may see)."""
        self.app, self.max_body_bytes, self.keys, self.open_paths = app, max_body_bytes, keys, open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        try:
            access = self.keys.access_of(credential_of(headers))
        except Unauthenticated as refusal:
            access, reason = ANONYMOUS, str(refusal)
        else:
            reason = "missing api-key header (or Authorization: Bearer)"
        if access is ANONYMOUS and scope["path"] not in self.open_paths:
            await umbrella_error_response(Unauthorized(reason), _CHALLENGE)(scope, receive, send)
            return
        scope[SCOPE_KEY] = access
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        if length is None and scope["method"] in ("POST", "PUT", "PATCH"):
            receive = await self._buffered(scope, receive, send)
            if receive is None:
                return
        await self.app(scope, receive, send)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """A chunked body has no length up front: read it, counting, then replay it."""
        body = await read_body(receive, self.max_body_bytes)
        if body is None:
            await self._too_large(scope, receive, send)
            return None
        return body.receive

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "payload_too_large",
            f"request body is larger than {self.max_body_bytes} bytes",
            {"limit": self.max_body_bytes},
        )
        await response(scope, receive, send)
