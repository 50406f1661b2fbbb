"""Recommendation through the API: examples, events and their cleaning, user profiles, the trained ranker."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from tests.api.helpers import create, error, upsert
from tests.support.synthetic_shop import Shop, add_dirt, generate_shop

SHOP = "/collections/shop"


def _load_shop(client: TestClient, shop: Shop, *, events: bool = True) -> None:
    body = {"dim": shop.vectors.shape[1], "payload_indexes": {"category": "keyword", "price": "float"}}
    assert client.put(SHOP, json=body).status_code == 201
    points = list(shop.points())
    for start in range(0, len(points), 2000):
        upsert(client, points[start : start + 2000], name="shop")
    if events:
        for batch in shop.event_batches(10_000):
            report = client.post(f"{SHOP}/events", json={"events": batch}).json()
            assert report["accepted"] == len(batch), report


# ---- the ranker on a shop with a known truth -------------------------------------------------------
# 2,000 items, 600 users, ~20 sessions each (~100k events). Measured over seeds 0–3 of this shop: ranker
# NDCG@10 1.19–1.82× similarity and 2.2–5.1× popularity, validation AUC +0.024–0.035 over similarity
# (and over 10 more runs at other sizes, never below 1.12× similarity). Seed 0 is asserted with margins
# below the worst seen, so the test fails when the ranker stops adding what similarity lacks.
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Shop, dict]]:
    shop = generate_shop(2000, 600, sessions_per_user=20, seed=0)
    settings = Settings(data_dir=tmp_path_factory.mktemp("shop"), durability="relaxed")
    with TestClient(create_app(settings)) as client:
        _load_shop(client, shop)
        response = client.post(f"{SHOP}/ranker/train", json={})
        assert response.status_code == 200, response.text
    yield settings, shop, response.json()


@pytest.mark.slow
def test_the_ranker_beats_similarity_and_popularity(trained: tuple[Settings, Shop, dict]) -> None:
    _, _, report = trained
    m = report["metrics"]
    assert m["ranker"]["ndcg@10"] >= 1.15 * m["similarity"]["ndcg@10"], m
    assert m["ranker"]["ndcg@10"] >= 1.5 * m["popularity"]["ndcg@10"], m
    assert m["ranker"]["auc"] >= m["similarity"]["auc"] + 0.015, m
    assert m["ranker"]["log_loss"] < m["similarity"]["log_loss"] < m["popularity"]["log_loss"] + 0.05, m
    assert report["evaluation"]["users"] >= 300
    assert {"similarity", "popularity", "freshness", "category_affinity", "price_distance"} <= set(report["features"])


@pytest.mark.slow
def test_training_is_reported_step_by_step(trained: tuple[Settings, Shop, dict]) -> None:
    _, _, report = trained
    split = report["split"]
    assert split["history_until"] < split["validation_from"]  # ISO strings in one zone sort by time
    assert split["history_events"] + split["training_events"] + split["validation_events"] == report["events"]["used"]
    trials = report["training"]["trials"]
    assert len(trials) == 10  # 5 alphas × 2 class weightings
    chosen = trials[report["training"]["chosen"]]
    assert chosen["best_val_loss"] == min(t["best_val_loss"] for t in trials)
    assert report["chosen"] == {
        "alpha": chosen["alpha"],
        "class_weight": chosen["class_weight"],
        "epoch": chosen["best_epoch"],
    }
    losses = [e["train_loss"] for e in chosen["epochs"]]
    assert losses[-1] < losses[0]  # it learned something
    assert all(len(t["epochs"]) < 60 or not t["stopped_early"] for t in trials)


@pytest.mark.slow
def test_the_ranker_serves_and_survives_a_restart(trained: tuple[Settings, Shop, dict]) -> None:
    settings, shop, report = trained
    with TestClient(create_app(settings)) as client:
        assert client.get(f"{SHOP}/ranker").json()["training"] == report["training"]
        user = shop.user_ids[5]
        seen = client.get(f"{SHOP}/users/{user}").json()
        recs = client.get(f"{SHOP}/users/{user}/recommendations", params={"k": 10}).json()
        assert recs["path"] == "ranker" and len(recs["results"]) == 10
        assert recs["excluded"] == seen["items"]
        scores = [h["score"] for h in recs["results"]]
        assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
        flt = json.dumps({"must": [{"key": "category", "match": "cat-3"}]})
        recs = client.get(f"{SHOP}/users/{user}/recommendations", params={"k": 5, "filter": flt}).json()
        assert recs["results"] and all(h["payload"]["category"] == "cat-3" for h in recs["results"])
        svg = client.get(f"{SHOP}/ranker/curves.svg")
        assert svg.headers["content-type"].startswith("image/svg+xml")
        ET.fromstring(svg.text)  # well-formed


# ---- events, profiles and the cold start ---------------------------------------------------------
@pytest.fixture
def small_shop() -> Shop:
    return generate_shop(300, 40, sessions_per_user=6, seed=3)


def test_events_are_cleaned_and_the_report_says_how(client: TestClient, small_shop: Shop) -> None:
    _load_shop(client, small_shop, events=False)
    dirty, dirt = add_dirt(small_shop.events, seed=1, duplicates=0.02, unknown_items=0.01, bad_times=0.01)
    report = client.post(f"{SHOP}/events", json={"events": dirty}).json()
    assert report["received"] == len(dirty)
    assert report["accepted"] == len(small_shop.events)
    assert report["duplicates"] == dirt.duplicates
    bad_times = dirt.bad_time_strings + dirt.future_times
    assert report["reasons"] == {"unknown_item": dirt.unknown_items, "bad_time": bad_times}
    assert report["rejected"] == dirt.unknown_items + bad_times
    assert len(report["samples"]) == 10 and {s["reason"] for s in report["samples"]} <= {"unknown_item", "bad_time"}
    again = client.post(f"{SHOP}/events", json={"events": small_shop.events[:50]}).json()
    assert again["accepted"] == 0 and again["duplicates"] == 50  # resending is safe


def test_profiles_follow_events_and_are_rebuilt_on_restart(settings: Settings, small_shop: Shop) -> None:
    user = small_shop.user_ids[2]
    with TestClient(create_app(settings)) as client:
        _load_shop(client, small_shop)
        before = client.get(f"{SHOP}/users/{user}", params={"with_vector": True}).json()
    mine = [e for e in small_shop.events if e["user"] == user]
    assert before["events"] == len(mine)
    assert before["counts"]["click"] == sum(e["type"] == "click" for e in mine)
    assert before["top_categories"][0]["share"] > 0.2
    with TestClient(create_app(settings)) as client:
        after = client.get(f"{SHOP}/users/{user}", params={"with_vector": True}).json()
    assert after["counts"] == before["counts"] and after["last_activity"] == before["last_activity"]
    np.testing.assert_allclose(after["taste"], before["taste"], rtol=1e-5, atol=1e-6)


def test_taste_vector_points_at_what_the_user_bought(client: TestClient) -> None:
    create(client, "products", dim=3)
    points = [
        {"id": "red-1", "vector": [1, 0.1, 0], "payload": {"category": "red"}},
        {"id": "red-2", "vector": [1, 0, 0.1], "payload": {"category": "red"}},
        {"id": "red-3", "vector": [0.9, 0.1, 0.1], "payload": {"category": "red"}},
        {"id": "blue-1", "vector": [0, 0, 1], "payload": {"category": "blue"}},
        {"id": "blue-2", "vector": [0.1, 0, 1], "payload": {"category": "blue"}},
    ]
    upsert(client, points)
    events = [{"user": 7, "item": "red-1", "type": "purchase"}, {"user": 7, "item": "blue-1", "type": "view"}]
    assert client.post("/collections/products/events", json={"events": events}).json()["accepted"] == 2
    profile = client.get("/collections/products/users/7").json()
    assert profile["top_categories"][0]["category"] == "red"
    recs = client.get("/collections/products/users/7/recommendations", params={"k": 2}).json()
    assert recs["path"] == "similarity" and {h["id"] for h in recs["results"]} == {"red-2", "red-3"}  # seen: left out
    everything = client.get("/collections/products/users/7/recommendations", params={"k": 5, "exclude_seen": False})
    assert everything.json()["results"][0]["id"] == "red-1"


def test_unknown_users_get_popular_items(client: TestClient) -> None:
    create(client, "products", dim=2)
    upsert(client, [{"id": i, "vector": [1, i / 10]} for i in range(5)])
    events = [{"user": f"u{n}", "item": 3, "type": "click"} for n in range(3)]
    events += [{"user": "u9", "item": 1, "type": "click"}, {"user": "u9", "item": 4, "type": "view"}]
    client.post("/collections/products/events", json={"events": events})
    error(client.get("/collections/products/users/nobody"), 404, "user_not_found")
    recs = client.get("/collections/products/users/nobody/recommendations", params={"k": 3}).json()
    assert recs["path"] == "popular" and [h["id"] for h in recs["results"]] == [3, 1, 4]


def test_events_for_deleted_or_unknown_items_are_refused(client: TestClient) -> None:
    create(client, "products", dim=2)
    upsert(client, [{"id": "a", "vector": [1, 0]}, {"id": "b", "vector": [0, 1]}])
    client.post("/collections/products/points/delete", json={"ids": ["b"]})
    events = [
        {"user": "u", "item": "a", "type": "click", "time": "2026-01-02T03:04:05Z"},
        {"user": "u", "item": "b", "type": "click"},
        {"user": "u", "item": "zzz", "type": "click"},
        {"user": "u", "item": "a", "type": "rating", "value": 9},
        {"user": "u", "item": "a", "type": "view", "time": 12},
    ]
    report = client.post("/collections/products/events", json={"events": events}).json()
    assert report["accepted"] == 1 and report["rejected"] == 4
    assert report["reasons"] == {"unknown_item": 2, "bad_value": 1, "bad_time": 1}
    assert [s["index"] for s in report["samples"]] == [1, 2, 3, 4]


def test_bad_event_requests(client: TestClient, settings: Settings) -> None:
    create(client, "products", dim=2)
    events, recs = "/collections/products/events", "/collections/products/users/u/recommendations"
    view = {"user": "u", "item": 1, "type": "view"}
    error(client.post(events, json={"events": [{**view, "type": "like"}]}), 422, "validation_error")
    error(client.post(events, json={"events": []}), 422, "validation_error")
    error(client.post("/collections/nope/events", json={"events": [view]}), 404, "collection_not_found")
    many = [view] * (settings.max_batch_points + 1)
    error(client.post(events, json={"events": many}), 413, "payload_too_large")
    error(client.get(recs, params={"filter": "{nope"}), 422, "validation_error")
    flt = json.dumps({"must": [{"key": "colour", "range": {}}]})
    error(client.get(recs, params={"filter": flt}), 422, "validation_error")


def test_training_needs_enough_events(client: TestClient, small_shop: Shop) -> None:
    _load_shop(client, small_shop, events=False)
    error(client.post(f"{SHOP}/ranker/train", json={}), 409, "not_enough_events")
    client.post(f"{SHOP}/events", json={"events": small_shop.events[:300]})
    err = error(client.post(f"{SHOP}/ranker/train", json={}), 409, "not_enough_events")
    assert err["details"]["needed"] == {"train_positives": 20, "validation_positives": 5, "train_negatives": 1}
    assert err["details"]["got"]["train_positives"] < 20 or err["details"]["got"]["validation_positives"] < 5
    error(client.get(f"{SHOP}/ranker"), 404, "ranker_not_found")
    error(client.get(f"{SHOP}/ranker/curves.svg"), 404, "ranker_not_found")
    error(client.post(f"{SHOP}/ranker/train", json={"alphas": []}), 422, "validation_error")


def test_training_on_positives_only_without_sampled_negatives_is_a_409(client: TestClient, small_shop: Shop) -> None:
    _load_shop(client, small_shop, events=False)
    positives = [e for e in small_shop.events if e["type"] in ("click", "cart", "purchase")]
    client.post(f"{SHOP}/events", json={"events": positives})
    err = error(client.post(f"{SHOP}/ranker/train", json={"negatives_per_positive": 0}), 409, "not_enough_events")
    assert err["details"]["got"]["train_negatives"] == 0 and err["details"]["got"]["train_positives"] >= 20
    assert client.post(f"{SHOP}/ranker/train", json={"negatives_per_positive": 1}).status_code == 200


# ---- recommend by examples ---------------------------------------------------------------------------
@pytest.fixture
def grid(client: TestClient) -> TestClient:
    """Points on a circle, every 10 degrees; payload says which half of the circle."""
    create(client, "circle", dim=2, payload_indexes={"half": "keyword"})
    angles = np.radians(np.arange(0, 360, 10)).tolist()
    upsert(
        client,
        [
            {"id": d, "vector": [math.cos(a), math.sin(a)], "payload": {"half": "top" if d < 180 else "bottom"}}
            for d, a in zip(range(0, 360, 10), angles, strict=True)
        ],
        name="circle",
    )
    return client


def _recommend(client: TestClient, **body: object) -> list[int]:
    response = client.post("/collections/circle/recommend", json=body)
    assert response.status_code == 200, response.text
    return [h["id"] for h in response.json()["results"]]


@pytest.mark.parametrize("strategy", ["average", "best_score"])
def test_positives_pull_and_examples_never_come_back(grid: TestClient, strategy: str) -> None:
    ids = _recommend(grid, positive=[90], k=4, strategy=strategy)
    assert 90 not in ids and set(ids) == {80, 100, 70, 110}
    ids = _recommend(grid, positive=[90, 100], k=2, strategy=strategy)
    assert set(ids) & {90, 100} == set() and set(ids) <= {80, 110, 70, 120}


@pytest.mark.parametrize("strategy", ["average", "best_score"])
def test_negatives_push_away(grid: TestClient, strategy: str) -> None:
    plain = _recommend(grid, positive=[90], k=6, strategy=strategy)
    pushed = _recommend(grid, positive=[90], negative=[40], k=6, strategy=strategy)
    assert 40 not in pushed

    def mean_angle(ids: list[int]) -> float:
        return float(np.mean(ids))

    assert mean_angle(pushed) > mean_angle(plain)  # away from 40°, toward the far side of 90°


def test_examples_can_be_vectors_and_filters_apply(grid: TestClient) -> None:
    flt = {"must": [{"key": "half", "match": "bottom"}]}
    ids = _recommend(grid, positive=[[1.0, -0.01]], k=3, filter=flt)
    assert ids == [350, 340, 330]
    ids = _recommend(grid, positive=[0], negative=[[0.0, 1.0]], strategy="best_score", k=3, filter=flt)
    assert all(i >= 180 for i in ids)


def test_bad_examples(grid: TestClient) -> None:
    error(grid.post("/collections/circle/recommend", json={"positive": ["nope"]}), 404, "point_not_found")
    error(grid.post("/collections/circle/recommend", json={"positive": [[1, 2, 3]]}), 400, "dimension_mismatch")
    error(grid.post("/collections/circle/recommend", json={"positive": []}), 422, "validation_error")
    cancel = {"positive": [[1.0, 0.0], [-1.0, 0.0]]}  # opposite examples average to nothing
    error(grid.post("/collections/circle/recommend", json=cancel), 400, "invalid_input")
    unknown_strategy = {"positive": [0], "strategy": "max"}
    error(grid.post("/collections/circle/recommend", json=unknown_strategy), 422, "validation_error")
    assert grid.get("/collections/circle").json()["count"] == 36


def test_recommendation_settings_are_checked(client: TestClient) -> None:
    body = {"dim": 2, "recommendation": {"category_field": "kind"}}
    error(client.put("/collections/x", json=body), 422, "validation_error")
    info = client.put("/collections/y", json={"dim": 2, "recommendation": {"half_life_days": 7}}).json()
    assert info["recommendation"]["half_life_days"] == 7
    assert info["recommendation"]["category_field"] is None  # the default field is not declared: unused


def test_an_unreadable_ranker_file_is_ignored_not_fatal(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        create(client, "products", dim=2)
        upsert(client, [{"id": 1, "vector": [1, 0]}])
    (Path(settings.data_dir) / "products" / "ranker.json").write_text("{not json")
    with TestClient(create_app(settings)) as client:
        assert client.get("/collections/products").status_code == 200
        error(client.get("/collections/products/ranker"), 404, "ranker_not_found")
