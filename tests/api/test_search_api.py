"""Search over HTTP: by vector, by id, filters, thresholds, options, batch."""

from __future__ import annotations

import time

import numpy as np
from fastapi.testclient import TestClient

from tests.api.helpers import b64, create, error, upsert

S = "/collections/products/search"


def _shop(client: TestClient) -> None:
    create(client)
    upsert(
        client,
        [
            {"id": "red-shoe", "vector": [1, 0.1, 0, 0], "payload": {"category": "shoes", "price": 50.0}},
            {"id": "red-bag", "vector": [1, 0, 0.2, 0], "payload": {"category": "bags", "price": 150.0}},
            {"id": "blue-shoe", "vector": [0, 1, 0, 0], "payload": {"category": "shoes", "price": 70.0}},
            {"id": 7, "vector": [0, 0, 0, 1], "payload": {"category": "hats", "price": 20.0}},
        ],
    )


def test_search_by_vector_reports_plan_and_candidates(client: TestClient) -> None:
    _shop(client)
    body = client.post(S, json={"vector": [1, 0, 0, 0], "k": 2}).json()
    assert [r["id"] for r in body["results"]] == ["red-shoe", "red-bag"]
    assert body["plan"] == "exact" and body["candidates"] == 4
    assert body["results"][0]["payload"] == {"category": "shoes", "price": 50.0}
    assert 0.99 < body["results"][0]["score"] <= 1.0


def test_search_with_filter_threshold_and_options(client: TestClient) -> None:
    _shop(client)
    flt = {"must": [{"key": "category", "match": "shoes"}], "must_not": [{"key": "price", "range": {"gt": 60}}]}
    body = client.post(S, json={"vector": [1, 0, 0, 0], "filter": flt, "with_vector": True}).json()
    assert [r["id"] for r in body["results"]] == ["red-shoe"] and body["candidates"] == 1
    assert len(body["results"][0]["vector"]) == 4
    body = client.post(S, json={"vector": [1, 0, 0, 0], "score_threshold": 0.5, "with_payload": False}).json()
    assert [r["id"] for r in body["results"]] == ["red-shoe", "red-bag"]
    assert "payload" not in body["results"][0]


def test_search_by_id_leaves_out_the_example(client: TestClient) -> None:
    _shop(client)
    body = client.post(S, json={"id": "red-shoe", "k": 1}).json()
    assert [r["id"] for r in body["results"]] == ["red-bag"]
    error(client.post(S, json={"id": "nope"}), 404, "point_not_found")


def test_batch_search_keeps_order_and_accepts_base64(client: TestClient) -> None:
    _shop(client)
    queries = [
        {"vector": [0, 0, 0, 1], "k": 1},
        {"vector": b64(np.array([0, 1, 0, 0])), "k": 1},
        {"id": "red-bag", "k": 1, "exact": True},
    ]
    body = client.post(f"{S}/batch", json={"searches": queries}).json()
    assert [[r["id"] for r in res["results"]] for res in body["results"]] == [[7], ["blue-shoe"], ["red-shoe"]]


def test_a_batch_answers_each_query_as_it_would_alone_and_names_a_bad_vector_as_alone(client: TestClient) -> None:
    """A batch's vectors are checked and normalised as one matrix: the answers must be the single ones, bit for
    bit, and a refused vector the same 400 as on its own."""
    create(client, dim=8)
    data = np.random.default_rng(2).normal(size=(200, 8)).astype(np.float32)
    client.put("/collections/products/points", json={"batch": {"ids": list(range(200)), "vectors": b64(data)}})
    queries = [{"vector": (data[i] * (i + 1) + 0.01).tolist(), "k": 5, "with_payload": False} for i in range(40)]
    queries += [{"id": 3, "k": 2}, {"vector": data[7].tolist(), "k": 3, "exact": True}]
    batch = client.post(f"{S}/batch", json={"searches": queries}).json()["results"]
    assert batch == [client.post(S, json=q).json() for q in queries]  # ids and scores exactly
    bad = [*queries[:3], {"vector": [0.0] * 8}, *queries[3:5]]
    alone = client.post(S, json={"vector": [0.0] * 8})
    refused = client.post(f"{S}/batch", json={"searches": bad})
    assert refused.status_code == alone.status_code == 400 and refused.json() == alone.json()


def test_graph_search_through_the_api(client: TestClient, settings) -> None:
    settings.exact_max_floats = 0  # force the graph even for a small collection
    create(client, dim=8)
    data = np.random.default_rng(1).normal(size=(300, 8)).astype(np.float32)
    client.put("/collections/products/points", json={"batch": {"ids": list(range(300)), "vectors": b64(data)}})
    deadline = time.monotonic() + 30
    while client.get("/collections/products").json()["index_state"] != "ready" and time.monotonic() < deadline:
        time.sleep(0.05)
    body = client.post(S, json={"vector": data[42].tolist(), "k": 3, "ef": 50}).json()
    assert body["plan"] == "hnsw" and body["results"][0]["id"] == 42


def test_facet_counts_come_from_the_payload_indexes(client: TestClient) -> None:
    indexes = {"brand": "keyword", "stock": "integer", "sale": "bool", "price": "float"}
    assert client.put("/collections/shop", json={"dim": 2, "payload_indexes": indexes}).status_code == 201
    brands = [["nike"], ["adidas"], ["nike", "puma"], ["puma"], ["nike"], []]
    points = [
        {"id": i, "vector": [1, i + 1], "payload": {"brand": brands[i % 6], "stock": i % 3, "sale": i % 2 == 0}}
        for i in range(60)
    ]
    points.append({"id": "no-payload", "vector": [1, 0]})
    assert client.put("/collections/shop/points", json={"points": points}).status_code == 200
    client.post("/collections/shop/points/delete", json={"ids": [0]})  # a deleted point counts nowhere

    body = client.post("/collections/shop/facets", json={"key": "brand"}).json()
    assert body["candidates"] == 60  # 61 points, one deleted
    # a point with a list counts once per value; most frequent first, ties by value
    assert body["values"] == [
        {"value": "nike", "count": 29},
        {"value": "puma", "count": 20},
        {"value": "adidas", "count": 10},
    ]
    on_sale = {"must": [{"key": "sale", "match": True}]}
    body = client.post("/collections/shop/facets", json={"key": "stock", "filter": on_sale, "limit": 2}).json()
    assert body["candidates"] == 29
    assert body["values"] == [{"value": 1, "count": 10}, {"value": 2, "count": 10}]  # 0 has 9 (id 0 is gone)
    sale = client.post("/collections/shop/facets", json={"key": "sale"}).json()["values"]
    assert sale == [{"value": False, "count": 30}, {"value": True, "count": 29}]
    assert client.post("/collections/shop/facets", json={"key": "price"}).json()["values"] == []
    assert client.post("/collections/shop/facets", json={"key": "colour"}).json()["values"] == []  # scanned: none
    assert client.post("/collections/shop/facets", json={"key": "brand", "limit": 0}).status_code == 422
    assert client.post("/collections/nope/facets", json={"key": "brand"}).status_code == 404
