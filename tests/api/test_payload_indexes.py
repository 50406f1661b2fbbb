"""Payload indexes added and dropped on a serving collection: built in the background, scans meanwhile,
the same answers before and after, kept across restarts."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.collections import backfill
from app.core.config import Settings
from app.main import create_app
from tests.api.helpers import error, upsert
from tests.support.waiting import wait_until

C = "/collections/shop"


def _points(n: int, start: int = 0) -> list[dict]:
    rng = np.random.default_rng(start)
    return [
        {
            "id": i,
            "vector": rng.normal(size=2).tolist(),
            # before any index, some sizes were written as text: an index added later leaves them out
            "payload": {
                "specs": {"color": ["red", "blue", "green"][i % 3]},
                "size": i % 7 if i % 10 or start else "n/a",
            },
        }
        for i in range(start, start + n)
    ]


def _ids(client: TestClient, flt: dict) -> tuple[list, str]:
    body = client.post(f"{C}/search", json={"vector": [1, 0], "k": 1000, "filter": flt, "exact": True}).json()
    return sorted(h["id"] for h in body["results"]), body["plan"]


def _built(client: TestClient) -> dict:
    """The collection's info once no payload index is being built (or the wait ran out)."""
    wait_until(lambda: not client.get(C).json()["payload_index_builds"], poll=0.02)
    return client.get(C).json()


RED = {"must": [{"key": "specs.color", "match": "red"}]}
SMALL = {"must": [{"key": "size", "range": {"lt": 3}}]}


def test_an_index_added_later_answers_as_the_scan_did(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backfill, "CHUNK", 50)  # many chunks, so writes land between them
    with TestClient(create_app(settings)) as client:
        assert client.put(C, json={"dim": 2}).status_code == 201
        upsert(client, _points(600), name="shop")
        red, plan = _ids(client, RED)
        small, _ = _ids(client, SMALL)
        assert plan == "exact+scan" and len(red) == 200
        info = client.put(f"{C}/payload_indexes/specs.color", json={"type": "keyword"}).json()
        assert info["payload_indexes"]["specs.color"] == "keyword"
        client.put(f"{C}/payload_indexes/size", json={"type": "integer"})
        upsert(client, _points(30, start=600), name="shop")  # while the indexes fill
        client.post(f"{C}/points/delete", json={"ids": [0, 3]})
        red_now, _ = _ids(client, RED)  # scanning or indexed, the answer is the same
        assert red_now == sorted([i for i in red if i not in (0, 3)] + list(range(600, 630, 3)))
        info = _built(client)
        assert info["payload_index_builds"] == {}
        assert _ids(client, RED) == (red_now, "exact")
        small_now, plan = _ids(client, SMALL)
        assert plan == "exact" and small_now == sorted(
            [i for i in small if i != 0] + [i for i in range(600, 630) if i % 7 < 3]
        )
        # a point stored as "n/a" before the index existed is left out of it; writing one now is refused
        error(
            client.put(f"{C}/points", json={"points": [{"id": 1, "vector": [1, 0], "payload": {"size": "x"}}]}),
            400,
            "invalid_input",
        )
    with TestClient(create_app(settings)) as client:  # declared in the stored config: built at load
        assert client.get(C).json()["payload_indexes"] == {"specs.color": "keyword", "size": "integer"}
        assert _ids(client, RED) == (red_now, "exact")
        info = client.delete(f"{C}/payload_indexes/specs.color").json()
        assert info["payload_indexes"] == {"size": "integer"}
        assert _ids(client, RED) == (red_now, "exact+scan")
        error(client.delete(f"{C}/payload_indexes/specs.color"), 400, "invalid_input")


def test_recommendation_fields_cannot_be_dropped_or_retyped(client: TestClient) -> None:
    body = {"dim": 2, "payload_indexes": {"category": "keyword", "price": "float"}}
    assert client.put(C, json=body).status_code == 201
    error(client.delete(f"{C}/payload_indexes/category"), 400, "invalid_input")
    error(client.put(f"{C}/payload_indexes/price", json={"type": "keyword"}), 400, "invalid_input")
    error(client.put(f"{C}/payload_indexes/x", json={"type": "text"}), 422, "validation_error")
    error(client.put("/collections/nope/payload_indexes/x", json={"type": "bool"}), 404, "collection_not_found")
    same = client.put(f"{C}/payload_indexes/price", json={"type": "float"})
    assert same.status_code == 200 and same.json()["payload_index_builds"] == {}
