"""Guard: an ASGI middleware that refuses oversized bodies and, when a key is set, unknown callers."""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response

OPEN_PATHS = {"/healthz", "/readyz", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"}


class Guard:
    """Pure ASGI (not BaseHTTPMiddleware), because it runs on every request of the hot path."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, api_key: str | None) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes
        self.api_key = api_key.encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if self.api_key is not None and scope["path"] not in OPEN_PATHS and not self._authorised(headers):
            await error_response(401, "unauthorized", "missing or wrong api-key header")(scope, receive, send)
            return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        if length is None and scope["method"] in ("POST", "PUT", "PATCH"):
            receive = await self._buffered(scope, receive, send)
            if receive is None:
                return
        await self.app(scope, receive, send)

    def _authorised(self, headers: dict[bytes, bytes]) -> bool:
        assert self.api_key is not None
        given = headers.get(b"api-key") or headers.get(b"authorization", b"").removeprefix(b"Bearer ")
        return hmac.compare_digest(given, self.api_key)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """A chunked body has no length up front: read it, counting, then replay it."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return None
        pending: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()  # later calls wait for disconnect

        return replay

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "payload_too_large",
            f"request body is larger than {self.max_body_bytes} bytes",
            {"limit": self.max_body_bytes},
        )
        await response(scope, receive, send)
