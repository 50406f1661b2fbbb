"""FastSearch: the plainest POST /collections/{name}/search answered below FastAPI's routing, on the event loop."""

from __future__ import annotations

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.access import ANONYMOUS, SCOPE_KEY, Access
from app.api.codec import result_bytes
from app.api.openapi import parse_body
from app.api.search import by_content, to_query
from app.schemas.search import SearchRequest
from app.search import searcher

PREFIX, SUFFIX = "/collections/", "/search"
_HEADERS = [(b"content-type", b"application/json")]


class FastSearch:
    """Pure ASGI, inside the guard (which has authenticated the caller and bounded the body).

    A search by vector or by stored id that the searcher answers on the event loop (`search_inline`) spends
    as long in FastAPI's routing, request and exception layers as in hnswlib (benchmarks/RESULTS.md, "Serving
    stack and the REST hot path"); here it is parsed, checked against the caller's access, searched and sent
    directly. Every other request, and any of these that is not the plainest kind (a body that does not
    parse, an access refused, an unknown collection, a query that needs a thread or fails), goes on to the
    app with its body replayed: every error and every other answer still comes from the one route.
    """

    def __init__(self, app: ASGIApp, *, route: BaseRoute) -> None:
        """`route` is the app's search route: the telemetry labels what is answered here with its template."""
        self.app, self.route = app, route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = _collection(scope)
        if name is None:
            await self.app(scope, receive, send)
            return
        read = await _read(receive)
        if read is None:
            return
        body, receive = read
        answer = _answer(scope, name, body)
        if answer is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        headers = [*_HEADERS, (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


def _collection(scope: Scope) -> str | None:
    """The collection named by a POST to /collections/{name}/search, else None."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
        return None
    name = path[len(PREFIX) : -len(SUFFIX)]
    return name if name and "/" not in name else None


def _answer(scope: Scope, name: str, body: bytes) -> bytes | None:
    """The response body, or None when the route must answer (whatever the reason: it gives the error)."""
    access: Access = scope.get(SCOPE_KEY, ANONYMOUS)
    if not access.allows("read", name):
        return None
    try:
        req = parse_body(SearchRequest, body)
        if by_content(req) or req.log:  # embedding, and keeping the search log (a write), are work for threads
            return None
        collection = scope["app"].state.registry.get(name)
        result = searcher.search_inline(collection, to_query(req))
    except Exception:  # the route runs it again and answers with the error
        return None
    return None if result is None else result_bytes(result)


async def _read(receive: Receive) -> tuple[bytes, Receive] | None:
    """The whole body, and a `receive` that gives it again (then waits on the client, as the server's would);
    None when the client left before it was sent."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replay: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def again() -> Message:
        return replay.pop() if replay else await receive()

    return body, again
