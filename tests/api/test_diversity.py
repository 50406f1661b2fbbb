"""MMR and group_by over HTTP: fewer near-copies in the top k, one result per product, paging by groups."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from tests.api.helpers import error

C = "/collections/photos"


def _clusters(client: TestClient, clusters: int = 20, copies: int = 10, dim: int = 16) -> np.ndarray:
    """`clusters` products, each photographed `copies` times (near-duplicate vectors), centres spread out."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(clusters, dim))
    vectors = np.repeat(centres, copies, axis=0) + 0.05 * rng.normal(size=(clusters * copies, dim))
    payloads = [{"product_id": f"p{i // copies}", "title": f"shoe {i // copies}"} for i in range(clusters * copies)]
    assert client.put(C, json={"dim": dim, "lexical": {"fields": ["title"]}}).status_code == 201
    body = {
        "points": [
            {"id": i, "vector": v.tolist(), "payload": p}
            for i, (v, p) in enumerate(zip(vectors, payloads, strict=True))
        ]
    }
    assert client.put(f"{C}/points", json=body).status_code == 200
    return centres


def _products(body: dict) -> list[str]:
    return [h["payload"]["product_id"] for h in body["results"]]


def test_mmr_spans_more_products_at_a_small_cost_in_relevance(client: TestClient) -> None:
    centres = _clusters(client)
    query = (centres[0] + 0.6 * centres[1]).tolist()  # nearest to one product, then another
    plain = client.post(f"{C}/search", json={"vector": query, "k": 10, "exact": True}).json()
    diverse = client.post(f"{C}/search", json={"vector": query, "k": 10, "exact": True, "mmr": {"lambda": 0.5}}).json()
    assert len(set(_products(plain))) <= 2
    assert len(set(_products(diverse))) >= 5
    relevance = lambda body: np.mean([h["score"] for h in body["results"]])  # noqa: E731
    assert relevance(diverse) >= 0.6 * relevance(plain)
    assert diverse["results"][0]["id"] == plain["results"][0]["id"]  # the best hit stays first
    same = client.post(f"{C}/search", json={"vector": query, "k": 10, "exact": True, "mmr": {"lambda": 1}}).json()
    assert [h["id"] for h in same["results"]] == [h["id"] for h in plain["results"]]
    hybrid = client.post(
        f"{C}/search", json={"vector": query, "keywords": "shoe 3", "k": 10, "mmr": {"lambda": 0.3}}
    ).json()
    assert hybrid["mode"] == "hybrid" and len(set(_products(hybrid))) >= 5


def test_group_by_returns_one_result_per_product_with_paging(client: TestClient) -> None:
    centres = _clusters(client)
    query = {"vector": centres[3].tolist(), "exact": True, "group_by": "product_id", "groups": 4}
    first = client.post(f"{C}/search", json=query).json()
    assert first["groups"][0]["value"] == "p3"
    assert len(first["groups"]) == 4 and len(set(_products(first))) == 4 and len(first["results"]) == 4
    assert [g["ids"] for g in first["groups"]] == [[h["id"]] for h in first["results"]]
    assert first["next_group_offset"] == 4
    second = client.post(f"{C}/search", json={**query, "group_offset": 4}).json()
    assert not set(_products(first)) & set(_products(second)) and len(second["groups"]) == 4
    pairs = client.post(f"{C}/search", json={**query, "group_size": 3, "groups": 2}).json()
    assert [len(g["ids"]) for g in pairs["groups"]] == [3, 3]
    assert _products(pairs) == ["p3"] * 3 + [pairs["groups"][1]["value"]] * 3
    last = client.post(f"{C}/search", json={**query, "group_offset": 18}).json()
    assert len(last["groups"]) == 2 and last["next_group_offset"] is None  # 20 products in all
    only = {"must": [{"key": "product_id", "any": ["p1", "p2"]}]}
    filtered = client.post(f"{C}/search", json={**query, "filter": only, "keywords": "shoe"}).json()
    assert sorted(g["value"] for g in filtered["groups"]) == ["p1", "p2"] and filtered["mode"] == "hybrid"
    plain = client.post(f"{C}/search", json={"vector": centres[3].tolist(), "k": 4}).json()
    assert "groups" not in plain


def test_group_by_a_field_some_points_lack_and_lists(client: TestClient) -> None:
    assert client.put(C, json={"dim": 2}).status_code == 201
    points = [
        {"id": 1, "vector": [1, 0], "payload": {"colours": ["red", "blue"]}},
        {"id": 2, "vector": [0.9, 0.1], "payload": {}},
        {"id": 3, "vector": [0.8, 0.2], "payload": {"colours": "red"}},
        {"id": 4, "vector": [0, 1], "payload": {"colours": 1}},
        {"id": 5, "vector": [0.1, 1], "payload": {"colours": True}},
    ]
    client.put(f"{C}/points", json={"points": points})
    body = client.post(f"{C}/search", json={"vector": [1, 0], "group_by": "colours", "group_size": 2}).json()
    assert [(g["value"], g["ids"]) for g in body["groups"]] == [("red", [1, 3]), ("blue", [1]), (True, [5]), (1, [4])]
    error(client.post(f"{C}/search", json={"vector": [1, 0], "group_by": ""}), 422, "validation_error")
    error(client.post(f"{C}/search", json={"vector": [1, 0], "mmr": {"lambda": 2}}), 422, "validation_error")


def test_a_group_gets_its_best_members_even_beyond_the_candidates_read(client: TestClient) -> None:
    """One photo of product "far" is the best hit; its other photos point elsewhere, past the 4 × groups × size
    candidates a group_by reads first: they are still its members (a group's members do not depend on how deep
    the page was read), while the other groups keep theirs."""
    rng = np.random.default_rng(3)
    assert client.put(C, json={"dim": 8}).status_code == 201
    query = np.eye(8)[0]
    near = [query + 0.3 * rng.normal(size=8) for _ in range(300)]
    points = [{"id": i, "vector": v.tolist(), "payload": {"product_id": f"p{i % 100}"}} for i, v in enumerate(near)]
    points.append({"id": "far-best", "vector": query.tolist(), "payload": {"product_id": "far"}})
    points += [{"id": f"far-{i}", "vector": (-query + 0.1 * rng.normal(size=8)).tolist(),
                "payload": {"product_id": "far"}} for i in range(2)]  # fmt: skip
    assert client.put(f"{C}/points", json={"points": points}).status_code == 200
    for exact in (True, False):
        body = client.post(f"{C}/search", json={"vector": query.tolist(), "group_by": "product_id", "groups": 2,
                                                "group_size": 3, "exact": exact}).json()  # fmt: skip
        far, other = body["groups"]
        assert far["value"] == "far" and far["ids"][0] == "far-best" and sorted(far["ids"][1:]) == ["far-0", "far-1"]
        assert len(other["ids"]) == 3
