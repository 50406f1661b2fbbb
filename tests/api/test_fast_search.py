"""FastSearch: the plainest searches are answered below the routing; everything else reaches the route whole."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from app.api.access import ADMIN, ANONYMOUS, SCOPE_KEY, Access
from app.api.fast_search import FastSearch
from tests.api.helpers import create, upsert

S = "/collections/products/search"


def _shop(client: TestClient) -> None:
    create(client, payload_indexes={"category": "keyword"})
    upsert(
        client,
        [
            {"id": "red-shoe", "vector": [1, 0.1, 0, 0], "payload": {"category": "shoes", "price": 50.0}},
            {"id": "red-bag", "vector": [1, 0, 0.2, 0], "payload": {"category": "bags"}},
            {"id": 7, "vector": [0, 0, 0, 1], "payload": {"category": "hats"}},
        ],
    )


def _call(client: TestClient, body: Any, *, path: str = S, method: str = "POST", access: Access = ADMIN) -> dict:
    """Run FastSearch around a stand-in for the app; report what it sent, and what reached the stand-in."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    sent: list[dict] = []
    reached: list[bytes] = []
    chunks = [{"type": "http.request", "body": raw[:3], "more_body": True},
              {"type": "http.request", "body": raw[3:], "more_body": False}]  # fmt: skip

    async def receive() -> dict:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    async def route(scope: dict, receive: Any, send: Any) -> None:
        got, more = b"", True
        while more:
            message = await receive()
            got, more = got + message["body"], message["more_body"]
        reached.append(got)

    scope = {"type": "http", "method": method, "path": path, "app": client.app, SCOPE_KEY: access, "headers": []}
    asyncio.run(FastSearch(route, route=client.app.router.routes[0])(scope, receive, send))
    return {"sent": sent, "reached": reached, "scope": scope}


def test_a_plain_search_is_answered_here_with_the_route_s_answer(client: TestClient) -> None:
    _shop(client)
    for body in (
        {"vector": [1, 0, 0, 0], "k": 2},
        {"id": "red-shoe", "k": 1, "with_vector": True},
        {"vector": [1, 0, 0, 0], "filter": {"must": [{"key": "category", "match": "bags"}]}},
    ):
        out = _call(client, body)
        assert out["reached"] == []  # the app never saw it
        start, answer = out["sent"]
        assert start["status"] == 200 and dict(start["headers"])[b"content-length"] == str(len(answer["body"])).encode()
        batch = client.post(f"{S}/batch", json={"searches": [body]}).json()  # through the route
        assert orjson.loads(answer["body"]) == batch["results"][0]
        assert out["scope"]["route"].path == "/collections/{name}/search"  # what the telemetry labels it


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"{not json", {}),  # the route answers 422
        ({"vector": [1, 0, 0, 0]}, {"path": "/collections/nope/search"}),  # 404
        ({"vector": [1, 0, 0, 0]}, {"access": ANONYMOUS}),  # 403
        ({"vector": [1, 0]}, {}),  # 400: wrong dimension
        ({"id": "missing"}, {}),  # 404 for the point
        ({"vector": [1, 0, 0, 0], "log": True}, {}),  # a write: in a thread
        ({"text": "red shoe"}, {}),  # embedding: in a thread
        ({"vector": [1, 0, 0, 0], "exact": True}, {}),  # not a query the loop answers
        ({"vector": [1, 0, 0, 0], "filter": {"must": [{"key": "price", "range": {"gt": 1}}]}}, {}),  # scans
        ({"searches": []}, {"path": f"{S}/batch"}),  # another route
        ({"vector": [1, 0, 0, 0]}, {"method": "PUT"}),
    ],
)
def test_anything_else_reaches_the_route_with_its_body(client: TestClient, body: Any, where: dict) -> None:
    _shop(client)
    out = _call(client, body, **where)
    assert out["sent"] == []
    assert out["reached"] == [body if isinstance(body, bytes) else orjson.dumps(body)]


def test_the_served_app_answers_plain_searches_here_and_errors_as_before(client: TestClient) -> None:
    _shop(client)
    found = client.post(S, json={"vector": [1, 0, 0, 0], "k": 1})
    assert found.status_code == 200 and found.headers["content-type"] == "application/json"
    assert found.json()["results"][0]["id"] == "red-shoe"
    assert client.post(S, content=b"{not json").status_code == 422
    assert client.post("/collections/nope/search", json={"vector": [1, 0, 0, 0]}).json()["error"]["code"]
    metrics = client.get("/metrics").text
    assert 'umbrella_http_requests_total{method="POST",route="/collections/{name}/search",status="200"} 1' in metrics
