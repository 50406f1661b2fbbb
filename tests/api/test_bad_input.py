"""Every kind of bad input gets its documented 4xx envelope, and what was stored is untouched."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from tests.api.helpers import b64, create, error, upsert

C = "/collections/products"


@pytest.fixture
def shop(client: TestClient) -> TestClient:
    create(client)
    upsert(
        client, [{"id": i, "vector": [1, i, 0, 0], "payload": {"category": "a", "price": float(i)}} for i in range(5)]
    )
    return client


def _untouched(client: TestClient) -> None:
    assert client.get(C).json()["count"] == 5
    points = client.post(f"{C}/points/get", json={"ids": [0, 4], "with_vector": True}).json()["points"]
    assert points[1]["payload"] == {"category": "a", "price": 4.0}
    assert np.allclose(points[1]["vector"], np.array([1, 4, 0, 0]) / np.sqrt(17))


def _put(client: TestClient, body: object):
    return client.put(f"{C}/points", json=body)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"points": [{"id": 9, "vector": [1, 2, 3]}]}, 400, "dimension_mismatch"),
        ({"points": [{"id": 9, "vector": [1, 1, 1, 1]}, {"id": 10, "vector": [1, 2]}]}, 400, "dimension_mismatch"),
        ({"batch": {"ids": [9, 10], "vectors": b64(np.ones((2, 3)))}}, 400, "dimension_mismatch"),
        ({"batch": {"ids": [9, 10], "vectors": b64(np.ones(9))}}, 400, "invalid_vector"),
        ({"batch": {"ids": [9], "vectors": "not base64!"}}, 400, "invalid_vector"),
        ({"batch": {"ids": [9], "vectors": b64(np.array([[1, np.nan, 0, 0]]))}}, 400, "invalid_vector"),
        ({"batch": {"ids": [9], "vectors": b64(np.array([[1, np.inf, 0, 0]]))}}, 400, "invalid_vector"),
        ({"points": [{"id": 9, "vector": [0, 0, 0, 0]}]}, 400, "invalid_vector"),
        ({"points": []}, 422, "validation_error"),
        ({}, 422, "validation_error"),
        ({"points": [{"id": -1, "vector": [1, 1, 1, 1]}]}, 422, "validation_error"),
        ({"points": [{"id": True, "vector": [1, 1, 1, 1]}]}, 422, "validation_error"),
        ({"points": [{"id": 9, "vector": "x" * 3}]}, 400, "invalid_vector"),
        ({"points": [{"id": 9, "vector": [1, 1, 1, 1], "payload": {"price": "cheap"}}]}, 400, "invalid_input"),
        ({"points": [{"id": 9, "vector": [1, 1, 1, 1], "payload": [1, 2]}]}, 422, "validation_error"),
        ({"points": [{"id": 9, "vector": [1, 1, 1, 1], "payload": {"big": 2**70}}]}, 400, "invalid_input"),
        ({"points": [{"id": 9, "vector": [1, 1, 1, 1], "colour": "red"}]}, 422, "validation_error"),
        ({"points": [{"id": 9, "vector": ["a", 1, 1, 1]}]}, 422, "validation_error"),
    ],
)
def test_bad_upserts(shop: TestClient, body: dict, status: int, code: str) -> None:
    error(_put(shop, body), status, code)
    _untouched(shop)


def test_nan_in_a_json_vector(shop: TestClient) -> None:
    raw = b'{"points": [{"id": 9, "vector": [1, NaN, 0, 0]}, {"id": 10, "vector": [1, 1, 1, 1]}]}'
    response = shop.put(f"{C}/points", content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422) and response.json()["error"]["code"] in (
        "invalid_vector",
        "validation_error",
    )
    _untouched(shop)
    error(shop.post(f"{C}/points/get", json={"ids": [10]}), 404, "point_not_found")  # no half batch


def test_a_bad_point_rejects_its_whole_batch(shop: TestClient) -> None:
    good = [{"id": 100 + i, "vector": [1, 1, 1, 1]} for i in range(10)]
    error(
        _put(shop, {"points": [*good, {"id": 200, "vector": [1, 1, 1, 1], "payload": {"price": "x"}}]}),
        400,
        "invalid_input",
    )
    _untouched(shop)


def test_oversized_batch_and_body(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_batch_points=10, max_batch_queries=3, max_body_bytes=4096)
    with TestClient(create_app(settings)) as c:
        create(c)
        points = [{"id": i, "vector": [1, 1, 1, 1]} for i in range(11)]
        err = error(c.put(f"{C}/points", json={"points": points}), 413, "payload_too_large")
        assert err["details"]["limit"] == 10
        error(c.post(f"{C}/points/get", json={"ids": list(range(11))}), 413, "payload_too_large")
        error(c.post(f"{C}/search/batch", json={"searches": [{"vector": [1, 1, 1, 1]}] * 4}), 413, "payload_too_large")
        big = json.dumps({"points": [{"id": 1, "vector": [1, 1, 1, 1], "payload": {"x": "y" * 5000}}]})
        error(c.put(f"{C}/points", content=big, headers={"content-type": "application/json"}), 413, "payload_too_large")

        def chunks():  # no Content-Length: the limit still holds
            yield big.encode()

        error(
            c.put(f"{C}/points", content=chunks(), headers={"content-type": "application/json"}),
            413,
            "payload_too_large",
        )
        assert c.get(C).json()["count"] == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"vector": [1, 1, 1, 1], "k": 0}, 422, "validation_error"),
        ({"vector": [1, 1, 1, 1], "k": 1001}, 422, "validation_error"),
        ({"vector": [1, 1, 1, 1], "ef": 0}, 422, "validation_error"),
        ({"vector": [1, 1, 1, 1], "ef": 10_001}, 422, "validation_error"),
        ({"vector": [1, 1, 1]}, 400, "dimension_mismatch"),
        ({"vector": [1, 1, 1, 1], "id": 1}, 422, "validation_error"),
        ({"k": 3}, 422, "validation_error"),
        ({"vector": "AAAA"}, 400, "invalid_vector"),
        ({"vector": b64(np.ones(3))}, 400, "dimension_mismatch"),
        ({"id": 77}, 404, "point_not_found"),
        ({"vector": [1, 1, 1, 1], "k": "ten"}, 422, "validation_error"),
        ({"vector": [1, 1, 1, 1], "filter": {"must": [{"key": "category"}]}}, 422, "validation_error"),
        ({"vector": [1, 1, 1, 1], "filter": {"must": [{"key": "price", "range": {}}]}}, 422, "validation_error"),
        ({"vector": [1, 1, 1, 1], "filter": {"must": {"key": "category", "match": "a"}}}, 422, "validation_error"),
        ({"vector": [1, 1, 1, 1], "filter": {"mustt": []}}, 422, "validation_error"),
        ({"vector": [1, 1, 1, 1], "filter": {"must": [{"key": "colour", "text": ""}]}}, 422, "validation_error"),
        ({"vector": [1, 1, 1, 1], "filter": {"must": [{"is_null": {}}]}}, 422, "validation_error"),
        ({"vector": [1, 1, 1, 1], "filter": {"must": [{"has_id": []}]}}, 422, "validation_error"),
        ({"vector": [1, 1, 1, 1], "filter": {"must": [{"must": [{"must": [{"must": []}]}]}]}}, 422, "validation_error"),
        (
            {"vector": [1, 1, 1, 1], "filter": {"must": [{"key": "category", "range": {"gt": 1}}]}},
            400,
            "invalid_filter",
        ),
        ({"vector": [1, 1, 1, 1], "filter": {"must": [{"key": "price", "match": "cheap"}]}}, 400, "invalid_filter"),
    ],
)
def test_bad_searches(shop: TestClient, body: dict, status: int, code: str) -> None:
    error(shop.post(f"{C}/search", json=body), status, code)
    _untouched(shop)


def test_malformed_json_and_wrong_types(shop: TestClient) -> None:
    error(
        shop.post(f"{C}/search", content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "validation_error",
    )
    error(shop.post(f"{C}/points/count", json={"filter": "category=a"}), 422, "validation_error")
    error(shop.post(f"{C}/points/delete", json={}), 422, "validation_error")
    nothing = shop.post(f"{C}/points/delete", json={"filter": {"must": [{"key": "nope", "match": 1}]}})
    assert nothing.status_code == 200 and nothing.json()["count"] == 0  # a scan of a field no point has
    _untouched(shop)


@pytest.mark.parametrize("name", ["..%2Fx", "a.b", "-lead", "x" * 65, "x" * 200, "has space", "semi;colon"])
def test_invalid_collection_names(client: TestClient, name: str, settings: Settings) -> None:
    response = client.put(f"/collections/{name}", json={"dim": 3})
    assert response.status_code in (400, 404) and "error" in response.json()
    assert not any(p.name != ".lock" for p in Path(settings.data_dir).iterdir())


def test_empty_name_and_path_traversal_never_reach_the_disk(client: TestClient, settings: Settings) -> None:
    assert client.put("/collections/", json={"dim": 3}).status_code in (404, 405)
    assert client.put("/collections/../x", json={"dim": 3}).status_code in (404, 405)
    assert not (Path(settings.data_dir).parent / "x").exists()


def test_duplicate_and_unknown_collections(shop: TestClient) -> None:
    error(shop.put(C, json={"dim": 4}), 409, "collection_exists")
    error(shop.put(C, json={"dim": 0}), 422, "validation_error")
    error(shop.put("/collections/other", json={"dim": 4, "metric": "hamming"}), 422, "validation_error")
    error(shop.put("/collections/other", json={"dim": 4, "payload_indexes": {"x": "date"}}), 422, "validation_error")
    for method, path in [
        ("get", "/collections/nope"),
        ("delete", "/collections/nope"),
        ("post", "/collections/nope/search"),
    ]:
        kwargs = {"json": {"vector": [1]}} if method == "post" else {}
        error(getattr(shop, method)(path, **kwargs), 404, "collection_not_found")
    _untouched(shop)


# ---- inputs an OpenAPI fuzzer found to give 500s (issue "Locked down and fuzzed") -----------------------------
BIG = int("9" * 400)  # JSON integers have no bound; a float64 ends near 1.8e308


def _raw(client: TestClient, method: str, path: str, body: str):
    """Send `body` as written, with BIG spelled out (the JSON encoder of the client would refuse it)."""
    content = body.replace("BIG", str(BIG)).encode()
    return client.request(method, path, content=content, headers={"content-type": "application/json"})


def test_tune_with_a_negative_seed_is_a_422(shop: TestClient) -> None:
    error(shop.post(f"{C}/tune", json={"seed": -1, "k": 2}), 422, "validation_error")


@pytest.mark.parametrize("offset", [5, 2**31, 2**63, 2**64 + 7])
def test_scroll_past_the_end_is_an_empty_last_page(shop: TestClient, offset: int) -> None:
    response = shop.post(f"{C}/points/scroll", json={"offset": offset})
    assert response.status_code == 200, response.text
    assert response.json() == {"points": [], "next_offset": None}


def test_a_400_digit_integer_in_a_float_field_is_refused(shop: TestClient) -> None:
    body = '{"points": [{"id": 9, "vector": [1, 0, 0, 0], "payload": {"price": BIG}}]}'
    error(_raw(shop, "PUT", f"{C}/points", body), 400, "invalid_input")
    _untouched(shop)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ('{"key": "price", "match": BIG}', 0),
        ('{"key": "price", "any": [BIG, 3]}', 1),
    ],
)
def test_huge_integers_in_filters_match_nothing(shop: TestClient, condition: str, expected: int) -> None:
    response = _raw(shop, "POST", f"{C}/points/count", f'{{"filter": {{"must": [{condition}]}}}}')
    assert response.status_code == 200, response.text
    assert response.json()["count"] == expected


def test_huge_integers_as_range_bounds_are_a_422(shop: TestClient) -> None:
    body = '{"filter": {"must": [{"key": "price", "range": {"lt": BIG}}]}}'  # bounds are floats in the schema
    error(_raw(shop, "POST", f"{C}/points/count", body), 422, "validation_error")


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ('{"user": "u", "item": 1, "type": "click", "time": BIG}', "bad_time"),
        ('{"user": "u", "item": 1, "type": "click", "value": BIG}', "bad_value"),
        ('{"user": "u", "item": 1, "type": "rating", "value": BIG}', "bad_value"),
    ],
)
def test_huge_integers_in_events_are_rejected_events_not_errors(shop: TestClient, event: str, reason: str) -> None:
    response = _raw(shop, "POST", f"{C}/events", f'{{"events": [{event}]}}')
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["accepted"], report["rejected"], report["reasons"]) == (0, 1, {reason: 1})


@pytest.mark.parametrize("metric", ["ip", "l2", "cosine"])
@pytest.mark.parametrize("component", [3e38, -1e16, 1.5e15])
def test_vectors_whose_scores_would_overflow_are_refused(client: TestClient, metric: str, component: float) -> None:
    create(client, "big", dim=2, metric=metric)
    upsert(client, [{"id": 1, "vector": [1e15, -1e15]}, {"id": 2, "vector": [0.5, 0.5]}], name="big")
    err = error(
        client.put("/collections/big/points", json={"points": [{"id": 3, "vector": [component, 1]}]}),
        400,
        "invalid_vector",
    )
    assert "overflow" in err["message"]
    for exact in (True, False):
        error(
            client.post("/collections/big/search", json={"vector": [component, 1], "exact": exact}),
            400,
            "invalid_vector",
        )
        hits = client.post("/collections/big/search", json={"vector": [-1e15, 1e15], "exact": exact}).json()
        assert all(isinstance(h["score"], float) for h in hits["results"])  # the largest allowed: finite
    assert client.get("/collections/big").json()["count"] == 2


def test_tune_on_a_graph_starved_by_deletes_reports_misses_not_a_500(client: TestClient) -> None:
    # m=2 and a narrow build, then nearly everything deleted: hnswlib cannot return k for some queries.
    create(client, "sparse", dim=8, metric="l2", hnsw={"m": 2, "ef_construction": 4})
    vectors = np.random.default_rng(0).normal(size=(3000, 8))
    for start in range(0, 3000, 1000):
        batch = [{"id": i, "vector": vectors[i].tolist()} for i in range(start, start + 1000)]
        upsert(client, batch, name="sparse")
    client.post("/collections/sparse/points/delete", json={"ids": list(range(2499))})
    response = client.post("/collections/sparse/tune", json={"k": 500, "source": "points", "queries": 20})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["trials"] and all(0 <= t["recall"] <= 1 for t in report["trials"])


def test_image_errors_carry_no_python_reprs(client: TestClient) -> None:
    client.put("/collections/photos", json={"embedder": {"kind": "image"}})
    for response in (
        client.post("/collections/photos/search", json={"image": "aGVsbG8gd29ybGQ="}),
        client.post("/collections/photos/search/image", files={"file": ("x.jpg", b"\xff\xd8\xff\xe0garbage")}),
        client.put("/collections/photos/points", json={"points": [{"id": 1, "image": "aGVsbG8gd29ybGQ="}]}),
    ):
        err = error(response, 400, "invalid_image")
        assert " at 0x" not in err["message"] and "<" not in err["message"], err["message"]


def test_a_wrong_method_is_a_405_with_allow(shop: TestClient) -> None:
    for method, path, allowed in (("DELETE", f"{C}/search", "POST"), ("GET", f"{C}/points", "PUT")):
        response = shop.request(method, path)
        error(response, 405, "method_not_allowed")
        assert response.headers["allow"] == allowed


def test_no_error_message_can_carry_a_python_repr() -> None:
    from app.api.errors import error_response

    body = error_response(400, "x", f"cannot read {object()!r} or {io.BytesIO()}").body
    assert b" at 0x" not in body and b"<object>" in body


def test_a_ranker_seed_beyond_32_bits_is_a_422(shop: TestClient) -> None:
    error(shop.post(f"{C}/ranker/train", json={"seed": 2**32}), 422, "validation_error")  # found by schemathesis
