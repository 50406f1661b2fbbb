"""Points over HTTP: upsert (both forms), replace, get, delete by ids and filter, count, scroll."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from tests.api.helpers import b64, create, error, upsert

P = "/collections/products/points"


def _catalogue(client: TestClient) -> None:
    create(client)
    upsert(
        client,
        [
            {"id": 1, "vector": [1, 0, 0, 0], "payload": {"category": "shoes", "price": 50.0}},
            {"id": "sku-2", "vector": [0, 1, 0, 0], "payload": {"category": "bags", "price": 120.0}},
            {"id": "3", "vector": [0, 0, 1, 0], "payload": {"category": "shoes", "price": 80.0, "note": "free-form"}},
            {"id": 4, "vector": [0, 0, 0, 1]},
        ],
    )


def test_ids_come_back_exactly_as_given(client: TestClient) -> None:
    _catalogue(client)
    points = client.post(f"{P}/get", json={"ids": [1, "sku-2", "3", 4]}).json()["points"]
    assert [p["id"] for p in points] == [1, "sku-2", "3", 4]
    assert points[2]["payload"] == {"category": "shoes", "price": 80.0, "note": "free-form"}
    assert "payload" not in points[3]


def test_upsert_replaces_an_existing_id(client: TestClient) -> None:
    _catalogue(client)
    upsert(client, [{"id": 1, "vector": [0, 0, 0, 2], "payload": {"category": "hats"}}])
    got = client.post(f"{P}/get", json={"ids": [1], "with_vector": True}).json()["points"][0]
    assert got["payload"] == {"category": "hats"} and got["vector"] == [0, 0, 0, 1]  # cosine: stored unit length
    assert client.post(f"{P}/count", json={}).json() == {"count": 4}
    assert client.post(f"{P}/count", json={"filter": {"must": [{"key": "category", "match": "shoes"}]}}).json() == {
        "count": 1
    }


def test_columnar_base64_batch(client: TestClient) -> None:
    create(client, dim=3)
    vectors = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    payloads = [{"price": float(i)} for i in range(50)]
    body = {"batch": {"ids": list(range(50)), "vectors": b64(vectors), "payloads": payloads}}
    assert client.put(P, json=body).json()["count"] == 50
    got = client.post(f"{P}/get", json={"ids": [7], "with_vector": True}).json()["points"][0]
    np.testing.assert_allclose(got["vector"], vectors[7] / np.linalg.norm(vectors[7]), rtol=1e-6)
    assert got["payload"] == {"price": 7.0}


def test_delete_by_ids_and_by_filter(client: TestClient) -> None:
    _catalogue(client)
    assert client.post(f"{P}/delete", json={"ids": [4, "missing"]}).json()["count"] == 1
    flt = {"must": [{"key": "category", "match": "shoes"}]}
    assert client.post(f"{P}/delete", json={"filter": flt}).json()["count"] == 2
    remaining = client.post(f"{P}/scroll", json={}).json()
    assert [p["id"] for p in remaining["points"]] == ["sku-2"] and remaining["next_offset"] is None


def test_scroll_pages_through_everything_once(client: TestClient) -> None:
    create(client, dim=2)
    ids = list(range(25))
    client.put(P, json={"batch": {"ids": ids, "vectors": b64(np.ones((25, 2)) + np.arange(25)[:, None])}})
    seen, offset = [], None
    while True:
        page = client.post(f"{P}/scroll", json={"limit": 10, "offset": offset, "with_vector": True}).json()
        seen += [p["id"] for p in page["points"]]
        assert all(len(p["vector"]) == 2 for p in page["points"])
        offset = page["next_offset"]
        if offset is None:
            break
    assert sorted(seen) == ids


def test_write_results_carry_increasing_sequence_numbers(client: TestClient) -> None:
    create(client)
    first = upsert(client, [{"id": 1, "vector": [1, 1, 1, 1]}])
    second = upsert(client, [{"id": 2, "vector": [1, 1, 1, 2]}])
    assert second["seq"] == first["seq"] + 1


def test_unknown_ids_in_get_are_a_404(client: TestClient) -> None:
    _catalogue(client)
    err = error(client.post(f"{P}/get", json={"ids": [1, 99]}), 404, "point_not_found")
    assert err["details"]["missing"] == [99]
