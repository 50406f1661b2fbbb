"""The async client against the app in-process through httpx's ASGI transport: the same calls, awaited."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from umbrella_client import AsyncClient, errors

from tests.conftest import clustered
from tests.support.product_images import encode, product_image

pytestmark = pytest.mark.anyio


async def test_create_upsert_search_get_as_coroutines(asdk: AsyncClient) -> None:
    assert await asdk.healthz() == "ok"
    await asdk.create_collection("products", dim=8, metric="ip", payload_indexes={"category": "keyword"})
    vectors = clustered(30, 8, seed=2)
    payloads = [{"category": "shoes" if i % 3 == 0 else "bags"} for i in range(30)]
    assert (await asdk.upsert("products", list(range(30)), vectors=vectors, payloads=payloads)).count == 30
    assert (await asdk.get_collection("products")).count == 30
    result = await asdk.search("products", vectors[9], k=30, filter={"must": [{"key": "category", "match": "shoes"}]})
    assert len(result) == 10 and all(h.id % 3 == 0 for h in result)
    assert result.results == sorted(result.results, key=lambda h: -h.score)  # ip: best (largest) first
    (point,) = await asdk.get_points("products", [9], with_vector=True)
    np.testing.assert_array_equal(point.vector, vectors[9])
    batch = await asdk.search_batch("products", vectors=vectors[:3], k=1, exact=True)
    assert [r.ids for r in batch] == [(await asdk.search("products", v, k=1, exact=True)).ids for v in vectors[:3]]


async def test_errors_are_the_same_classes(asdk: AsyncClient) -> None:
    with pytest.raises(errors.CollectionNotFound) as missing:
        await asdk.count("nowhere")
    assert missing.value.status == 404 and missing.value.code == "collection_not_found"
    await asdk.create_collection("small", dim=2)
    with pytest.raises(errors.DimensionMismatch) as wrong:
        await asdk.upsert("small", ["a"], vectors=np.zeros((1, 3)))
    assert wrong.value.details == {"expected": 2, "got": 3}


async def test_an_image_search_uploads_the_file(asdk: AsyncClient) -> None:
    await asdk.create_collection("photos", embedder={"kind": "image"})
    photos = [encode(product_image(seed)) for seed in range(4)]
    await asdk.upsert("photos", ["a", "b", "c", "d"], images=photos)
    assert (await asdk.search_image("photos", photos[2], k=1)).ids == ["c"]


async def test_the_client_closes_what_it_opened_only() -> None:
    ok = httpx.MockTransport(lambda request: httpx.Response(200, json={"status": "ok"}))
    async with AsyncClient(transport=ok) as own:
        assert await own.healthz() == "ok"
    assert own._http.is_closed
    shared = httpx.AsyncClient(base_url="http://umbrella.test", transport=ok)
    async with AsyncClient(http_client=shared) as borrowed:
        assert await borrowed.healthz() == "ok"
    assert not shared.is_closed
    await shared.aclose()


async def test_hybrid_search_as_a_coroutine(asdk: AsyncClient) -> None:
    await asdk.create_collection("shop", dim=2, lexical={"fields": ["sku"]})
    await asdk.upsert("shop", ["a", "b"], vectors=[[1, 0], [0, 1]], payloads=[{"sku": "SKU-1"}, {"sku": "SKU-2"}])
    found = await asdk.search("shop", [1, 0], keywords="sku-2", k=1, fusion={"method": "weighted", "alpha": 0.1})
    assert found.mode == "hybrid" and found.ids == ["b"]
    assert (await asdk.set_lexical("shop", ["sku"])).lexical_state in ("building", "ready")
