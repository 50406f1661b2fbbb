"""FastSearch: the plainest POST /collections/{name}/search answered below FastAPI's routing, on the event loop."""

from __future__ import annotations

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.access import ANONYMOUS, SCOPE_KEY, Access
from app.api.codec import result_bytes
from app.api.guard import read_body
from app.api.openapi import parse_body
from app.api.search import by_content, to_query
from app.schemas.search import SearchRequest
from app.search import searcher

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
        match, child = self.route.matches(scope) if scope["type"] == "http" else (Match.NONE, {})
        if match is not Match.FULL:  # another path, or another method on this one
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)  # the guard has bounded its size
        if body is None or not body.complete:  # the client left
            return
        answer = _answer(scope, child["path_params"]["name"], body.data)
        if answer is None:
            await self.app(scope, body.receive, send)
            return
        scope["route"] = self.route
        headers = [*_HEADERS, (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


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
