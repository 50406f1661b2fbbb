"""Keyword (BM25) and hybrid search over HTTP: modes, fusion, filters, the lexical fields changed later,
durability across restarts and snapshots."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from app.collections.collection import LEXICAL_OWED
from app.collections.layout import DB_FILE
from app.core.config import Settings
from app.main import create_app
from app.storage.sqlite_store import PointStore
from tests.api.helpers import error, upsert
from tests.support.product_images import encode, product_image
from tests.support.waiting import wait_until

C = "/collections/shop"
S = f"{C}/search"
PRODUCTS = [
    ("p1", [1.0, 0.0, 0.0, 0.0], {"title": "Nike Air Max 90", "sku": "SKU-4411-B", "brand": "nike", "price": 120.0}),
    ("p2", [0.9, 0.1, 0.0, 0.0], {"title": "Nike Air Force 1", "sku": "SKU-4412-A", "brand": "nike", "price": 100.0}),
    ("p3", [0.0, 1.0, 0.0, 0.0], {"title": "USB-C 65W charger", "sku": "SKU-1000-A", "brand": "anker", "price": 40.0}),
    ("p4", [0.0, 0.9, 0.1, 0.0], {"title": "USB-C cable 2m", "sku": "SKU-1001-C", "brand": "anker", "price": 10.0}),
    (
        "p5",
        [0.0, 0.0, 1.0, 0.0],
        {"title": "Trail running shoe", "sku": "SKU-2000", "brand": "salomon", "price": 140.0},
    ),
]


def _shop(client: TestClient, **lexical: object) -> None:
    body = {
        "dim": 4,
        "payload_indexes": {"brand": "keyword", "price": "float"},
        "lexical": lexical or {"fields": ["title", "sku"]},
    }
    response = client.put(C, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["lexical_state"] == "ready"
    upsert(client, [{"id": i, "vector": v, "payload": p} for i, v, p in PRODUCTS], name="shop")


def _ids(body: dict) -> list:
    return [h["id"] for h in body["results"]]


def test_a_code_typed_by_a_shopper_is_found_by_keywords_where_vectors_miss_it(client: TestClient) -> None:
    _shop(client)
    far = [0.0, 0.0, 0.0, 1.0]  # a query vector that says nothing about the code
    dense = client.post(S, json={"vector": far, "keywords": "sku4411b", "mode": "dense", "k": 2}).json()
    assert dense["mode"] == "dense" and "lexical" not in dense["results"][0]
    lexical = client.post(S, json={"vector": far, "keywords": "SKU-4411-B", "mode": "lexical", "k": 2}).json()
    assert lexical["mode"] == "lexical" and lexical["plan"] == "lexical"
    assert _ids(lexical)[0] == "p1"
    top = lexical["results"][0]
    assert top["dense"] is None and top["lexical"]["rank"] == 1 and top["score"] == top["lexical"]["score"] > 0
    hybrid = client.post(S, json={"vector": far, "keywords": "sku 4411 b", "k": 3}).json()  # hybrid by default
    assert hybrid["mode"] == "hybrid" and hybrid["plan"] in ("exact", "hnsw")
    assert _ids(hybrid)[0] == "p1"
    assert hybrid["results"][0]["lexical"]["rank"] == 1 and hybrid["results"][0]["dense"]["rank"] >= 1


def test_rrf_and_weighted_fusion_reward_points_both_lists_rank(client: TestClient) -> None:
    _shop(client)
    # dense favours p1, p2 (shoes); the words favour the chargers: a point on both lists wins with rrf
    query = {"vector": [0.7, 0.7, 0.0, 0.0], "keywords": "usb-c charger", "k": 5}
    rrf = client.post(S, json={**query, "fusion": {"method": "rrf"}}).json()
    assert _ids(rrf)[0] == "p3"
    scores = [h["score"] for h in rrf["results"]]
    assert scores == sorted(scores, reverse=True)
    top = rrf["results"][0]
    expected = 1 / (60 + top["dense"]["rank"]) + 1 / (60 + top["lexical"]["rank"])
    assert top["score"] == pytest.approx(expected)
    only_dense = client.post(S, json={**query, "fusion": {"method": "weighted", "alpha": 1.0}}).json()
    dense = client.post(S, json={**query, "mode": "dense"}).json()
    assert _ids(only_dense)[:2] == _ids(dense)[:2]
    only_words = client.post(S, json={**query, "fusion": {"method": "weighted", "alpha": 0.0}}).json()
    assert _ids(only_words)[0] == "p3" and only_words["results"][0]["score"] == pytest.approx(1.0)


def test_filters_threshold_k_and_payload_work_in_every_mode(client: TestClient) -> None:
    _shop(client)
    anker = {"must": [{"key": "brand", "match": "anker"}]}
    for mode in ("dense", "lexical", "hybrid"):
        body = client.post(
            S, json={"vector": [1, 0, 0, 0], "keywords": "nike usb", "mode": mode, "filter": anker, "k": 1}
        ).json()
        assert body["mode"] == mode and body["candidates"] == 2 and len(body["results"]) == 1
        assert body["results"][0]["payload"]["brand"] == "anker"
        bare = client.post(
            S, json={"vector": [1, 0, 0, 0], "keywords": "nike", "mode": mode, "with_payload": False}
        ).json()
        assert all("payload" not in h for h in bare["results"])
    everything = client.post(S, json={"vector": [1, 0, 0, 0], "keywords": "nike usb", "k": 5}).json()
    cut = everything["results"][1]["score"]
    kept = client.post(S, json={"vector": [1, 0, 0, 0], "keywords": "nike usb", "k": 5, "score_threshold": cut}).json()
    assert _ids(kept) == _ids(everything)[:2]


def test_batch_search_takes_the_same_knobs(client: TestClient) -> None:
    _shop(client)
    searches = [
        {"vector": [0, 0, 0, 1], "keywords": "trail", "mode": "lexical", "k": 1},
        {"vector": [0, 0, 0, 1], "keywords": "charger", "fusion": {"method": "weighted"}, "k": 1},
        {"vector": [1, 0, 0, 0], "k": 1},
    ]
    body = client.post(f"{S}/batch", json={"searches": searches}).json()
    assert [r["mode"] for r in body["results"]] == ["lexical", "hybrid", "dense"]
    assert [_ids(r) for r in body["results"]] == [["p5"], ["p3"], ["p1"]]


def test_an_id_query_with_keywords_leaves_the_example_out(client: TestClient) -> None:
    _shop(client)
    body = client.post(S, json={"id": "p1", "keywords": "nike air", "k": 3}).json()
    assert "p1" not in _ids(body) and _ids(body)[0] == "p2"


def test_keyword_modes_refused_clearly(client: TestClient) -> None:
    _shop(client)
    client.put("/collections/plain", json={"dim": 4})
    error(
        client.post("/collections/plain/search", json={"vector": [1, 0, 0, 0], "mode": "hybrid"}),
        400,
        "no_lexical_index",
    )
    error(client.post(S, json={"vector": [1, 0, 0, 0], "mode": "lexical"}), 400, "invalid_input")
    error(
        client.put("/collections/x", json={"dim": 4, "lexical": {"fields": [], "source": False}}),
        422,
        "validation_error",
    )
    error(client.put("/collections/x", json={"dim": 4, "lexical": {"fields": []}}), 400, "invalid_input")  # no source
    error(client.put("/collections/x", json={"dim": 4, "lexical": {"source": True}}), 400, "invalid_input")
    error(client.post(S, json={"vector": [1, 0, 0, 0], "fusion": {"method": "max"}}), 422, "validation_error")
    # words without a keyword index are simply not used: the search is dense
    plain = client.post("/collections/plain/search", json={"vector": [1, 0, 0, 0], "keywords": "x"}).json()
    assert plain["mode"] == "dense"
    # nor are words that are all punctuation: no keyword can match them
    assert client.post(S, json={"vector": [1, 0, 0, 0], "keywords": "!!! --"}).json()["mode"] == "dense"


def test_writes_keep_the_keyword_index_level(client: TestClient) -> None:
    _shop(client)
    lexical = {"vector": [0, 0, 0, 1], "keywords": "force", "mode": "lexical"}
    assert _ids(client.post(S, json=lexical).json()) == ["p2"]
    upsert(client, [{"id": "p2", "vector": [0.9, 0.1, 0, 0], "payload": {"title": "Nike Dunk Low"}}], name="shop")
    assert _ids(client.post(S, json=lexical).json()) == []
    assert _ids(client.post(S, json={**lexical, "keywords": "dunk"}).json()) == ["p2"]
    client.post(f"{C}/points/delete", json={"ids": ["p2"]})
    assert _ids(client.post(S, json={**lexical, "keywords": "dunk"}).json()) == []
    upsert(
        client, [{"id": "new", "vector": [0, 0, 0, 1], "payload": {"title": "Dunk High"}}], name="shop"
    )  # reuses the slot
    assert _ids(client.post(S, json={**lexical, "keywords": "dunk"}).json()) == ["new"]
    client.post(f"{C}/points/delete", json={"filter": {"must": [{"key": "brand", "match": "anker"}]}})
    assert _ids(client.post(S, json={**lexical, "keywords": "usb"}).json()) == []


def _wait_lexical_ready(client: TestClient, path: str = C) -> dict:
    """The collection's info once no keyword rebuild runs (or the wait ran out)."""
    wait_until(lambda: client.get(path).json()["lexical_state"] != "building", poll=0.05)
    return client.get(path).json()


def test_changing_the_fields_rebuilds_in_the_background_and_lasts(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        _shop(client)
        by_brand = {"vector": [0, 0, 0, 1], "keywords": "salomon", "mode": "lexical"}
        assert _ids(client.post(S, json=by_brand).json()) == []
        r = client.put(f"{C}/lexical", json={"fields": ["brand"]})
        assert r.status_code == 200 and r.json()["lexical"] == {"fields": ["brand"], "source": False}
        info = _wait_lexical_ready(client)
        assert info["lexical_state"] == "ready" and info["lexical_progress"] == 1.0
        assert _ids(client.post(S, json=by_brand).json()) == ["p5"]
        assert _ids(client.post(S, json={**by_brand, "keywords": "trail"}).json()) == []  # title no longer in it
    with TestClient(create_app(settings)) as client:  # the new fields and their rows survive a restart
        assert client.get(C).json()["lexical"] == {"fields": ["brand"], "source": False}
        assert _ids(client.post(S, json=by_brand).json()) == ["p5"]
        info = client.delete(f"{C}/lexical").json()
        assert info["lexical_state"] == "off" and info["lexical"] is None
        error(client.post(S, json=by_brand), 400, "no_lexical_index")


def test_a_rebuild_cut_short_is_finished_at_the_next_start(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        _shop(client)
        folder = client.app.state.registry.get("shop").folder
    # as if the server died right after the fields changed: the new config and the debt are on disk, rows are old
    store = PointStore(folder / DB_FILE)
    config = store.get_meta("config")
    store.set_meta(LEXICAL_OWED, True)
    store.set_meta("config", {**config, "lexical": {"fields": ["brand"], "source": False}})
    store.close()
    with TestClient(create_app(settings)) as client:
        assert _wait_lexical_ready(client)["lexical_state"] == "ready"
        assert _ids(client.post(S, json={"vector": [0, 0, 0, 1], "keywords": "salomon", "mode": "lexical"}).json()) == [
            "p5"
        ]
        assert not PointStore(folder / DB_FILE).get_meta(LEXICAL_OWED)


def test_a_snapshot_carries_the_keyword_index(client: TestClient) -> None:
    _shop(client)
    snap = client.post(f"{C}/snapshots").json()
    client.post(f"{C}/points/delete", json={"ids": ["p1"]})
    r = client.post(f"{C}/snapshots/{snap['name']}/restore")
    assert r.status_code == 200, r.text
    body = client.post(S, json={"vector": [0, 0, 0, 1], "keywords": "SKU-4411-B", "mode": "lexical"}).json()
    assert _ids(body)[0] == "p1"


def test_a_photo_and_words_together_in_one_hybrid_search(client: TestClient) -> None:
    body = {"embedder": {"kind": "image"}, "lexical": {"fields": ["title"]}}
    assert client.put("/collections/looks", json=body).status_code == 201
    photos = [base64.b64encode(encode(product_image(seed))).decode() for seed in range(3)]
    titles = ["red handbag", "blue sneaker", "green lamp"]
    points = [
        {"id": i, "image": p, "payload": {"title": t}} for i, (p, t) in enumerate(zip(photos, titles, strict=True))
    ]
    assert client.put("/collections/looks/points", json={"points": points}).status_code == 200
    files = {"file": ("q.png", encode(product_image(0)), "image/png")}
    by_photo = client.post("/collections/looks/search/image", files=files, data={"k": "3"}).json()
    assert by_photo["mode"] == "dense" and by_photo["results"][0]["id"] == 0
    both = client.post("/collections/looks/search/image", files=files, data={"k": "3", "keywords": "green lamp"}).json()
    assert both["mode"] == "hybrid" and both["results"][0]["lexical"] is not None
    assert {h["id"] for h in both["results"][:2]} == {0, 2}  # the photo's own product, and the one the words name


def test_a_text_collection_that_keeps_its_sources_indexes_them_by_default(client: TestClient) -> None:
    body = {"embedder": {"kind": "text"}, "store_source": True}
    assert client.put("/collections/notes", json=body).status_code == 201
    client.put(
        "/collections/notes/points",
        json={"points": [{"id": 1, "text": "USB-C charger 65W"}, {"id": 2, "text": "red shoes"}]},
    )
    info = client.put("/collections/notes/lexical", json={}).json()
    assert info["lexical"] == {"fields": [], "source": True}
    assert _wait_lexical_ready(client, "/collections/notes")["lexical_state"] == "ready"
    body = client.post("/collections/notes/search", json={"text": "65w", "mode": "lexical"}).json()
    assert _ids(body) == [1]
