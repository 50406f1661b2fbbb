"""Sharded, replicated collections on a real three-node Ray cluster, through the REST API.

The truth is a single-node collection holding the same points: merged exact search must equal its exact search
(ids and scores) for every metric, with and without filters, and graph search must find ≥ 95 % of it.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.cluster.placement import shard_of
from app.demo.feedback import feedback_clicks, slang_names
from app.main import create_app
from tests.cluster.conftest import LocalCluster, ray
from tests.conftest import clustered
from tests.support.synthetic_shop import generate_shop

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
N, DIM = 1500, 16
COLOURS = ["red", "green", "blue", "black", "white"]


def _points(n: int, seed: int = 0) -> list[dict[str, Any]]:
    vectors = clustered(n, DIM, seed=seed)
    rng = np.random.default_rng(seed)
    ids: list[Any] = [i if i % 3 else f"sku-{i}" for i in range(n)]  # ints and strings, as users mix them
    return [
        {"id": pid, "vector": vec.tolist(), "payload": {"colour": COLOURS[i % 5], "price": float(rng.uniform(0, 100))}}
        for i, (pid, vec) in enumerate(zip(ids, vectors, strict=True))
    ]


def _create(client: TestClient, name: str, metric: str, **layout: int) -> None:
    body = {"dim": DIM, "metric": metric, "payload_indexes": {"colour": "keyword", "price": "float"}, **layout}
    answer = client.put(f"/collections/{name}", json=body)
    assert answer.status_code == 201, answer.text


def _load(client: TestClient, name: str, points: list[dict[str, Any]]) -> None:
    for start in range(0, len(points), 500):
        answer = client.put(f"/collections/{name}/points", json={"points": points[start : start + 500]})
        assert answer.status_code == 200, answer.text


def _search(client: TestClient, name: str, queries: np.ndarray, **options: Any) -> list[dict[str, Any]]:
    searches = [{"vector": q.tolist(), "k": 10, **options} for q in queries]
    answer = client.post(f"/collections/{name}/search/batch", json={"searches": searches})
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]  # type: ignore[no-any-return]


FILTERS = [None, {"must": [{"key": "colour", "match": "blue"}]}, {"must": [{"key": "price", "range": {"lt": 15}}]}]


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_merged_search_equals_one_node_and_the_graphs_find_it(cluster_client: TestClient, metric: str) -> None:
    client, points = cluster_client, _points(N)
    _create(client, "one", metric)
    _create(client, "spread", metric, shards=3, replicas=1)
    _load(client, "one", points)
    _load(client, "spread", points)
    assert client.post("/collections/spread/points/count", json={}).json()["count"] == N
    _wait(lambda: client.get("/collections/spread").json()["index_state"] == "ready")  # the copies' graphs
    queries = clustered(40, DIM, seed=7)
    for flt in FILTERS:
        truth = _search(client, "one", queries, exact=True, filter=flt)
        merged = _search(client, "spread", queries, exact=True, filter=flt)
        for want, got in zip(truth, merged, strict=True):
            assert [h["id"] for h in got["results"]] == [h["id"] for h in want["results"]]
            np.testing.assert_allclose(
                [h["score"] for h in got["results"]], [h["score"] for h in want["results"]], rtol=1e-5, atol=1e-5
            )
            assert got["candidates"] == want["candidates"]  # the shards' candidates add up to the whole
        graph = _search(client, "spread", queries, filter=flt, ef=64)
        assert {g["plan"] for g in graph} <= {"hnsw", "hnsw+scan"}, graph[0]["plan"]
        pairs = zip(graph, truth, strict=True)
        found = [len({h["id"] for h in g["results"]} & {h["id"] for h in t["results"]}) for g, t in pairs]
        assert sum(found) / sum(len(t["results"]) for t in truth) >= 0.95, (flt, found)
    for name in ("one", "spread"):
        client.delete(f"/collections/{name}")


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_recommend_by_examples_and_mmr_equal_one_node(cluster_client: TestClient, metric: str) -> None:
    client, points = cluster_client, _points(400, seed=2)
    _create(client, "one", metric)
    _create(client, "spread", metric, shards=3, replicas=1)
    _load(client, "one", points)
    _load(client, "spread", points)
    ids = [p["id"] for p in points]
    for body in [
        {"positive": [ids[1], ids[2]], "negative": [ids[3]], "strategy": "average"},
        {"positive": [ids[1], points[9]["vector"]], "negative": [ids[3]], "strategy": "best_score"},
        {"positive": [ids[4]], "strategy": "best_score", "filter": FILTERS[1], "with_vector": True},
    ]:
        body = {**body, "k": 8, "exact": True}
        want = client.post("/collections/one/recommend", json=body).json()
        got = client.post("/collections/spread/recommend", json=body).json()
        assert [h["id"] for h in got["results"]] == [h["id"] for h in want["results"]], body
        np.testing.assert_allclose([h["score"] for h in got["results"]], [h["score"] for h in want["results"]],
                                   rtol=1e-5, atol=1e-5)  # fmt: skip
    for search in [
        {"vector": points[11]["vector"], "mmr": {"lambda": 0.5, "candidates": 40}},
        {"id": ids[12], "mmr": {"lambda": 0.3, "candidates": 25}, "filter": FILTERS[2]},
    ]:
        search = {**search, "k": 6, "exact": True}
        want = client.post("/collections/one/search", json=search).json()
        got = client.post("/collections/spread/search", json=search).json()
        assert [h["id"] for h in got["results"]] == [h["id"] for h in want["results"]], search
    missing = client.post("/collections/spread/recommend", json={"positive": ["nope"]})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "point_not_found"
    for name in ("one", "spread"):
        client.delete(f"/collections/{name}")


def test_points_api_on_a_sharded_collection(cluster_client: TestClient) -> None:
    client, points = cluster_client, _points(300, seed=1)
    _create(client, "shop", "cosine", shards=3, replicas=2)
    _load(client, "shop", points)
    # ids come back as given, in the order asked, from whichever shard holds them
    asked = [points[7]["id"], points[3]["id"], points[7]["id"]]
    got = client.post("/collections/shop/points/get", json={"ids": asked, "with_vector": True}).json()["points"]
    assert [p["id"] for p in got] == asked and got[1]["payload"] == points[3]["payload"]
    missing = client.post("/collections/shop/points/get", json={"ids": [points[0]["id"], "nope"]})
    assert missing.status_code == 404 and missing.json()["error"]["details"]["missing"] == ["nope"]
    # scroll pages through every point once, across the shards
    seen, offset = [], None
    while True:
        page = client.post("/collections/shop/points/scroll", json={"limit": 37, "offset": offset}).json()
        seen += [p["id"] for p in page["points"]]
        offset = page["next_offset"]
        if offset is None:
            break
    assert sorted(map(str, seen)) == sorted(str(p["id"]) for p in points) and len(seen) == len(points)
    blue = client.post("/collections/shop/points/count", json={"filter": FILTERS[1]}).json()["count"]
    assert blue == sum(p["payload"]["colour"] == "blue" for p in points)
    for body in [{"key": "colour"}, {"key": "colour", "filter": FILTERS[2], "limit": 3}]:
        counted = client.post("/collections/shop/facets", json=body).json()
        want = Counter(p["payload"]["colour"] for p in points if "filter" not in body or p["payload"]["price"] < 15)
        assert (
            counted["values"]
            == [{"value": v, "count": c} for v, c in sorted(want.items(), key=lambda vc: (-vc[1], vc[0]))][
                : body.get("limit", 20)
            ]
        )
        assert counted["candidates"] == sum(want.values())
    # more like this point: never the point itself
    like = client.post("/collections/shop/search", json={"id": points[5]["id"], "k": 5, "exact": True}).json()
    assert len(like["results"]) == 5 and points[5]["id"] not in [h["id"] for h in like["results"]]
    # deletes by ids and by filter
    gone = client.post("/collections/shop/points/delete", json={"ids": [points[0]["id"], points[1]["id"]]}).json()
    assert gone["count"] == 2
    client.post("/collections/shop/points/delete", json={"filter": FILTERS[1]})
    left = client.post("/collections/shop/points/count", json={}).json()["count"]
    assert left == len(points) - blue - sum(p["payload"]["colour"] != "blue" for p in points[:2])
    info = client.get("/collections/shop").json()
    assert (info["shards"], info["replicas"], info["write_quorum"], info["count"]) == (3, 2, 2, left)
    metrics = client.get("/metrics").text  # a sharded collection is on the scrape too
    assert f'umbrella_collection_points{{collection="shop"}} {left}' in metrics
    assert 'umbrella_background_failures_total{collection="shop",task="build"} 0' in metrics
    client.delete("/collections/shop")


def test_sharding_without_a_cluster_is_refused(client: TestClient) -> None:
    answer = client.put("/collections/c", json={"dim": 4, "shards": 2})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "not_on_shards"
    assert client.get("/cluster").json() == {"ray_address": None, "nodes": [], "collections": []}


def test_a_lost_node_loses_no_acknowledged_write(cluster_client: TestClient, ray_cluster: LocalCluster) -> None:
    """Three shards of three copies (one per node), writes need two. Node b goes away while ids are written in
    order: writes go on with two copies, searches answer from the survivors; when b is back its copies catch
    up from the others and every copy holds exactly the acknowledged points."""
    client = cluster_client
    _create(client, "orders", "l2", shards=3, replicas=3)
    vectors = clustered(600, DIM, seed=3)
    acked: list[int] = []

    def write(start: int, stop: int) -> None:
        for lo in range(start, stop, 20):
            ids = list(range(lo, min(lo + 20, stop)))
            batch = {"ids": ids, "vectors": base64.b64encode(vectors[ids].tobytes()).decode()}
            answer = client.put("/collections/orders/points", json={"batch": batch})
            assert answer.status_code == 200, answer.text  # two copies of every shard are left
            acked.extend(ids)

    write(0, 200)
    copies = [c for coll in client.get("/cluster").json()["collections"] for c in coll["copies"]]
    searched: list[tuple[int, Any]] = []
    writing = threading.Event()

    def search() -> None:  # another client searches all the while: (status, best id)
        while writing.is_set():
            answer = client.post("/collections/orders/search", json={"vector": vectors[7].tolist(), "k": 3})
            searched.append((answer.status_code, (answer.json().get("results") or [{}])[0].get("id")))

    writing.set()
    searcher = threading.Thread(target=search)
    searcher.start()
    ray_cluster.kill("umbrella-b", [c["pid"] for c in copies if c["node"] == "umbrella-b"])
    write(200, 400)  # the first of these waits for b's copies to time out; then b gets no more writes
    writing.clear()
    searcher.join()
    assert searched and set(searched) == {(200, 7)}, searched  # b held shard 1's first copy: reads fell over
    results = _search(client, "orders", vectors[:5], exact=True)
    assert [r["results"][0]["id"] for r in results] == [0, 1, 2, 3, 4]
    assert client.post("/collections/orders/points/count", json={}).json()["count"] == len(acked)
    state = client.get("/cluster").json()
    behind = [c for coll in state["collections"] for c in coll["copies"] if not c["fresh"]]
    assert {c["node"] for c in behind} == {"umbrella-b"} and len(behind) == 3
    ray_cluster.start("umbrella-b")
    write(400, 600)
    _wait_until_fresh(client)
    copies = [c for coll in client.get("/cluster").json()["collections"] for c in coll["copies"]]
    by_shard: dict[int, set[tuple[int, int]]] = {}
    for c in copies:
        by_shard.setdefault(c["shard"], set()).add((c["seq"], c["count"]))
    assert all(len(states) == 1 for states in by_shard.values()), copies  # every copy alike
    assert sum(next(iter(s))[1] for s in by_shard.values()) == len(acked) == 600
    ids = {p["id"] for p in _scroll_all(client, "orders")}
    assert ids == set(acked)  # nothing lost, nothing that was not written
    client.delete("/collections/orders")


def _scroll_all(client: TestClient, name: str) -> list[dict[str, Any]]:
    out, offset = [], None
    while True:
        page = client.post(f"/collections/{name}/points/scroll", json={"limit": 500, "offset": offset}).json()
        out += page["points"]
        if (offset := page["next_offset"]) is None:
            return out


def _wait_until_fresh(client: TestClient) -> None:
    def fresh() -> bool:
        copies = [c for coll in client.get("/cluster").json()["collections"] for c in coll["copies"]]
        return all(c["fresh"] and c["alive"] for c in copies)

    _wait(fresh)


def _wait(done: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_a_batch_over_shards_reports_which_stored_and_retrying_it_is_safe(
    cluster_client: TestClient, ray_cluster: LocalCluster
) -> None:
    """One copy per shard, one shard per node: with node c gone its shard takes nothing, the others take their
    part, and the answer says which; once c is back the same batch again stores everything once."""
    client = cluster_client
    _create(client, "single", "cosine", shards=3, replicas=1)
    points = _points(90, seed=5)
    _load(client, "single", points[:30])
    copies = client.get("/cluster").json()["collections"][0]["copies"]
    lost = next(c["shard"] for c in copies if c["node"] == "umbrella-c")
    ray_cluster.kill("umbrella-c", [c["pid"] for c in copies if c["node"] == "umbrella-c"])
    answer = client.put("/collections/single/points", json={"points": points[30:]})
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert error["code"] == "shard_unavailable"
    assert error["details"]["failed_shards"] == [lost] and sorted(error["details"]["stored_shards"]) == sorted(
        {0, 1, 2} - {lost}
    )
    searched = client.post("/collections/single/search", json={"vector": points[0]["vector"], "k": 3})
    assert searched.status_code == 503 and searched.json()["error"]["details"]["shard"] == lost
    allowed = client.post("/collections/single/search", json={"vector": points[0]["vector"], "k": 3, "partial": True})
    assert allowed.status_code == 200 and allowed.json()["partial"] is True, allowed.text
    assert allowed.json()["results"] and all(shard_of(h["id"], 3) != lost for h in allowed.json()["results"])
    ray_cluster.start("umbrella-c")
    _wait(lambda: client.post("/collections/single/points/count", json={}).status_code == 200)
    _load(client, "single", points[30:])  # the same batch again: the shards that stored it just replace
    assert client.post("/collections/single/points/count", json={}).json()["count"] == len(points)
    assert {p["id"] for p in _scroll_all(client, "single")} == {p["id"] for p in points}
    client.delete("/collections/single")


def test_a_snapshot_is_one_file_holding_every_shard(cluster_client: TestClient) -> None:
    """Taken from a sharded collection, restored into it after changes, and into a single node as well."""
    client, points = cluster_client, _points(300, seed=6)
    _create(client, "spread", "cosine", shards=3, replicas=2)
    _load(client, "spread", points)
    clicks = [{"user": "ann", "item": p["id"], "type": "click"} for p in points[:5]]
    assert client.post("/collections/spread/events", json={"events": clicks}).json()["accepted"] == 5
    taken = client.post("/collections/spread/snapshots")
    assert taken.status_code == 201, taken.text
    snapshot = taken.json()
    assert snapshot["count"] == len(points)
    client.post("/collections/spread/points/delete", json={"filter": FILTERS[1]})  # changes after the snapshot
    client.put("/collections/spread/points", json={"points": [{"id": "late", "vector": [1.0] * DIM}]})
    client.post("/collections/spread/events", json={"events": [{"user": "bob", "item": "late", "type": "view"}]})
    restored = client.post(f"/collections/spread/snapshots/{snapshot['name']}/restore")
    assert restored.status_code == 200, restored.text
    assert client.get("/collections/spread/users/ann").json()["events"] == 5  # the events came back with it
    assert client.get("/collections/spread/users/bob").status_code == 404  # and the later ones went
    assert restored.json()["count"] == len(points) and restored.json()["shards"] == 3
    assert {p["id"] for p in _scroll_all(client, "spread")} == {p["id"] for p in points}
    queries = clustered(10, DIM, seed=9)
    truth = _search(client, "spread", queries, exact=True, filter=FILTERS[2])
    # the same file into a single-node collection: the snapshot is the single-node format
    download = client.get(f"/collections/spread/snapshots/{snapshot['name']}")
    assert download.status_code == 200
    _create(client, "one", "cosine")
    _load(client, "one", points[:5])
    folder = client.app.state.settings.data_dir / ".snapshots" / "one"  # type: ignore[attr-defined]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / snapshot["name"].replace("spread-", "one-", 1)).write_bytes(download.content)
    moved = client.post(f"/collections/one/snapshots/{snapshot['name'].replace('spread-', 'one-', 1)}/restore")
    assert moved.status_code == 200, moved.text
    assert moved.json()["count"] == len(points) and moved.json()["shards"] is None
    assert client.get("/collections/one/users/ann").json()["counts"]["click"] == 5
    for want, got in zip(truth, _search(client, "one", queries, exact=True, filter=FILTERS[2]), strict=True):
        assert [h["id"] for h in got["results"]] == [h["id"] for h in want["results"]]
        np.testing.assert_allclose([h["score"] for h in got["results"]], [h["score"] for h in want["results"]],
                                   rtol=1e-5, atol=1e-5)  # fmt: skip
    for name in ("one", "spread"):
        client.delete(f"/collections/{name}")


def test_keyword_and_hybrid_search_over_shards_find_a_product_code(cluster_client: TestClient) -> None:
    """Each shard keeps the keyword index of its own points; a code only one product has comes first."""
    client, points = cluster_client, _points(300, seed=8)
    for i, p in enumerate(points):
        p["payload"]["sku"] = f"KX-{1000 + i}"
    body = {"dim": DIM, "payload_indexes": {"colour": "keyword"}, "lexical": {"fields": ["sku"]}, "shards": 3}
    assert client.put("/collections/codes", json=body).status_code == 201
    _load(client, "codes", points)
    assert client.get("/collections/codes").json()["lexical_state"] == "ready"
    target = points[123]
    words = client.post("/collections/codes/search", json={"text": "KX-1123", "mode": "lexical", "k": 3}).json()
    assert words["mode"] == "lexical" and words["results"][0]["id"] == target["id"]
    alone = {key: value for key, value in body.items() if key != "shards"}
    assert client.put("/collections/alone", json=alone).status_code == 201
    _load(client, "alone", points)
    hybrid = {"vector": points[5]["vector"], "keywords": "KX-1123", "k": 5, "exact": True}
    found = client.post("/collections/codes/search", json=hybrid).json()
    truth = client.post("/collections/alone/search", json=hybrid).json()
    got, want = [h["id"] for h in found["results"]], [h["id"] for h in truth["results"]]
    assert found["mode"] == "hybrid" and got[0] == want[0] == target["id"] and points[5]["id"] in got
    # BM25 weighs each word by the points of its own shard that hold it: close to one node's order, not equal
    assert len(set(got) & set(want)) >= 4, (got, want)
    # re-ranked, then grouped: MMR over the fused candidates, groups of them, both
    for extra in ({"mmr": {"lambda": 0.5}}, {"group_by": "colour", "groups": 3, "group_size": 2},
                  {"mmr": {"lambda": 0.5}, "group_by": "colour", "groups": 3}):  # fmt: skip
        found = client.post("/collections/codes/search", json={**hybrid, **extra}).json()
        truth = client.post("/collections/alone/search", json={**hybrid, **extra}).json()
        assert found["mode"] == "hybrid" and found["results"][0]["id"] == truth["results"][0]["id"] == target["id"]
        if "group_by" in extra:
            assert [g["value"] for g in found["groups"]][:1] == [g["value"] for g in truth["groups"]][:1]
            assert len(found["groups"]) == extra["groups"] and "payload" in found["results"][0]
        else:
            assert (
                len(found["results"]) == 5
                and len({h["id"] for h in found["results"]} & {h["id"] for h in truth["results"]}) >= 3
            )
    for name in ("codes", "alone"):
        client.delete(f"/collections/{name}")


def test_tune_picks_an_ef_for_the_merged_graphs_and_applies_it_to_every_copy(
    cluster_client: TestClient, cluster_settings: Any
) -> None:
    client, points = cluster_client, _points(3000, seed=10)
    _create(client, "tuned", "cosine", shards=3, replicas=2)
    _load(client, "tuned", points)
    report = client.post("/collections/tuned/tune", json={"target_recall": 0.97, "k": 10, "queries": 60, "apply": True})
    assert report.status_code == 200, report.text
    tuned = report.json()
    assert tuned["query_source"] == "points" and tuned["reached"] and tuned["applied"]
    assert tuned["trials"][-1]["recall"] >= 0.97 and all(t["recall"] < 0.97 for t in tuned["trials"][:-1])
    assert client.get("/collections/tuned").json()["hnsw"]["ef"] == tuned["chosen_ef"]
    # the queries sent: the recall it reports is what the merged graph searches at that ef get
    queries = clustered(40, DIM, seed=21)
    given = client.post(
        "/collections/tuned/tune", json={"target_recall": 0.9, "k": 10, "vectors": queries.tolist(), "apply": False}
    ).json()
    ef, recall = given["trials"][-1]["ef"], given["trials"][-1]["recall"]
    truth = _search(client, "tuned", queries, exact=True)
    graph = _search(client, "tuned", queries, ef=ef)
    pairs = zip(graph, truth, strict=True)
    found = sum(len({h["id"] for h in g["results"]} & {h["id"] for h in t["results"]}) for g, t in pairs)
    assert abs(found / (10 * len(queries)) - recall) <= 0.02 and given["query_source"] == "given"
    # the searches it served (unfiltered graph searches, 40 above and 20 more): auto tunes on them past 50
    _search(client, "tuned", clustered(20, DIM, seed=22))
    recent = client.post("/collections/tuned/tune", json={"target_recall": 0.9, "k": 10, "apply": False}).json()
    assert recent["query_source"] == "searches" and recent["queries"] == 60 and recent["reached"], recent
    client.delete("/collections/tuned")


def test_events_profiles_and_recommendations_for_users_equal_one_node(cluster_client: TestClient) -> None:
    """The same shop and event log in a sharded collection and in a single-node one: the same profiles, the same
    popular items (with a filter too), the same similar items, and a ranker trained over the shards."""
    client = cluster_client
    shop = generate_shop(400, 80, sessions_per_user=12, seed=2)
    indexes = {"category": "keyword", "price": "float"}
    for name, layout in (("spread", {"shards": 3, "replicas": 2}), ("one", {})):
        body = {"dim": shop.vectors.shape[1], "payload_indexes": indexes, **layout}
        assert client.put(f"/collections/{name}", json=body).status_code == 201
        _load(client, name, list(shop.points()))
        for batch in shop.event_batches(5_000):
            report = client.post(f"/collections/{name}/events", json={"events": batch}).json()
            assert report["accepted"] == len(batch), report
    users = sorted({e["user"] for e in shop.events})[:20]
    for user in users:
        one, spread = (client.get(f"/collections/{c}/users/{user}?with_vector=true").json() for c in ("one", "spread"))
        assert {k: v for k, v in spread.items() if k != "taste"} == {k: v for k, v in one.items() if k != "taste"}
        np.testing.assert_allclose(spread["taste"], one["taste"], rtol=1e-5, atol=1e-6)

    def recommended(name: str, user: str, **params: str) -> dict[str, Any]:
        answer = client.get(f"/collections/{name}/users/{user}/recommendations", params={"k": "10", **params})
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    category = shop.payloads[0]["category"]
    for params in ({}, {"filter": f'{{"must": [{{"key": "category", "match": "{category}"}}]}}'}):
        newcomer = [recommended(name, "newcomer", **params) for name in ("one", "spread")]
        assert newcomer[0]["path"] == newcomer[1]["path"] == "popular"
        assert newcomer[1]["results"] == newcomer[0]["results"]  # ids, scores and payloads
    found = []
    for user in users:
        one, spread = recommended("one", user), recommended("spread", user)
        assert one["path"] == spread["path"] == "similarity"
        found.append(len({h["id"] for h in spread["results"]} & {h["id"] for h in one["results"]}) / 10)
    assert np.mean(found) >= 0.95, found  # graphs differ (one per shard), so near-equal is the bar

    trained = client.post("/collections/spread/ranker/train", json={})
    assert trained.status_code == 200, trained.text
    assert trained.json()["events"]["used"] == len(shop.events)
    assert recommended("spread", users[0])["path"] == "ranker"
    for name in ("one", "spread"):
        client.delete(f"/collections/{name}")


def test_group_by_over_shards_equals_one_node(cluster_client: TestClient) -> None:
    """Groups of 60 brands over three shards: the page's groups come from the first round, their members from a
    second round to the shards that did not list them; exact answers equal one node's, graph ones nearly."""
    client = cluster_client
    points = _points(900, seed=11)
    for i, p in enumerate(points):
        p["payload"]["brand"] = f"brand-{(i * 7) % 60}" if i % 10 else ["brand-0", f"brand-{i % 60}"]  # lists too
    for name, layout in (("spread", {"shards": 3, "replicas": 1}), ("one", {})):
        _create(client, name, "cosine", **layout)
        _load(client, name, points)
    queries = clustered(8, DIM, seed=12)
    pages = [{"groups": 4, "group_size": 3}, {"groups": 5, "group_size": 2, "group_offset": 3}]
    for options in [*pages, {**pages[0], "filter": FILTERS[2]}, {**pages[1], "filter": FILTERS[1]}]:
        grouped = {"group_by": "brand", "exact": True, **options}
        one, spread = (_search(client, name, queries, **grouped) for name in ("one", "spread"))
        for want, got in zip(one, spread, strict=True):
            assert got["groups"] == want["groups"], options
            assert got["next_group_offset"] == want["next_group_offset"]
            np.testing.assert_allclose([h["score"] for h in got["results"]], [h["score"] for h in want["results"]],
                                       rtol=1e-5, atol=1e-6)  # fmt: skip
    diverse = {"group_by": "brand", "groups": 4, "group_size": 2, "exact": True, "mmr": {"lambda": 0.5}}
    one, spread = (_search(client, name, queries, **diverse) for name in ("one", "spread"))
    assert [r["groups"] for r in spread] == [r["groups"] for r in one]  # MMR over the same candidates, then groups
    like = {"id": points[5]["id"], "group_by": "brand", "groups": 3, "group_size": 2, "exact": True}
    one, spread = (client.post(f"/collections/{name}/search", json=like).json() for name in ("one", "spread"))
    assert spread["groups"] == one["groups"] and points[5]["id"] not in [h["id"] for h in spread["results"]]
    graph = {"group_by": "brand", "groups": 4, "group_size": 3}
    one, spread = (_search(client, name, queries, **graph) for name in ("one", "spread"))
    same = [len({h["id"] for h in g["results"]} & {h["id"] for h in w["results"]}) / len(w["results"])
            for w, g in zip(one, spread, strict=True)]  # fmt: skip
    assert np.mean(same) >= 0.9, same
    for name in ("one", "spread"):
        client.delete(f"/collections/{name}")


def test_payload_indexes_and_keyword_fields_change_on_every_copy(cluster_client: TestClient) -> None:
    """Index a field, keep keywords, drop them: every copy changes, in the write order; a copy that missed a
    change gets it when it catches up."""
    client, points = cluster_client, _points(300, seed=13)
    for i, p in enumerate(points):
        p["payload"]["title"] = f"{p['payload']['colour']} lamp model {i}"
    _create(client, "fields", "cosine", shards=2, replicas=2)
    _load(client, "fields", points)
    changed = client.put("/collections/fields/payload_indexes/title", json={"type": "keyword"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["payload_indexes"]["title"] == "keyword"
    error = client.delete("/collections/fields/payload_indexes/nothing").json()["error"]
    assert error["code"] == "invalid_input"
    assert client.put("/collections/fields/lexical", json={"fields": ["title"]}).status_code == 200
    _wait(lambda: client.get("/collections/fields").json()["lexical_state"] == "ready")
    words = client.post("/collections/fields/search", json={"text": "lamp model 42", "mode": "lexical", "k": 1})
    assert words.status_code == 200 and words.json()["results"][0]["id"] == points[42]["id"], words.text
    copies = client.get("/cluster").json()["collections"][0]["copies"]
    assert all(c["payload_indexes"]["title"] == "keyword" and c["lexical"]["fields"] == ["title"] for c in copies)

    collection = client.app.state.registry.get("fields")  # type: ignore[attr-defined]
    behind = collection.shards[0].copies[1]  # as if it had been away: the old fields, and not fresh
    ray.get(behind.configure.remote({"colour": "keyword", "price": "float"}, None))
    collection.shards[0].fresh[1] = False
    collection.repair()
    state = ray.get(behind.state.remote())
    assert state["payload_indexes"]["title"] == "keyword" and state["lexical"]["fields"] == ["title"]
    assert collection.shards[0].fresh[1]

    assert client.delete("/collections/fields/lexical").status_code == 200
    refused = client.post("/collections/fields/search", json={"text": "lamp", "mode": "lexical"})
    assert refused.status_code == 400, refused.text
    client.delete("/collections/fields")


def test_the_copies_of_a_node_gone_for_good_are_made_again_elsewhere(
    cluster_settings: Any, ray_cluster: LocalCluster
) -> None:
    """Two shards of two copies on three nodes; node b goes away and does not come back: after
    UMBRELLA_SHARD_REPLACE_AFTER_S its copies are made again on the nodes that hold none of their shard, from the
    surviving copies, and every point is in two copies again."""
    settings = cluster_settings.model_copy(update={"shard_replace_after_s": 1.0})
    with TestClient(create_app(settings)) as client:
        _create(client, "moving", "cosine", shards=2, replicas=2)
        points = _points(400, seed=14)
        _load(client, "moving", points)
        (before,) = client.get("/cluster").json()["collections"]
        assert any("umbrella-b" in nodes for nodes in before["nodes"])
        ray_cluster.kill("umbrella-b", [c["pid"] for c in before["copies"] if c["node"] == "umbrella-b"])
        try:
            _wait(lambda: not any("umbrella-b" in n for n in client.get("/cluster").json()["collections"][0]["nodes"]))
            _wait_until_fresh(client)
            (after,) = client.get("/cluster").json()["collections"]
            assert all(len(set(nodes)) == 2 for nodes in after["nodes"])  # a shard's copies on different nodes
            assert sum(g for gens in after["generations"] for g in gens) == sum(
                "umbrella-b" in n for n in before["nodes"]
            )
            assert all(c["count"] == after["copies"][0]["count"] for c in after["copies"] if c["shard"] == 0)
            assert sum(c["count"] for c in after["copies"]) == 2 * len(points)  # every point in two copies again
            _load(client, "moving", _points(20, seed=15))  # writes reach both copies of each shard
            assert {p["id"] for p in _scroll_all(client, "moving")} == {p["id"] for p in points}
        finally:
            ray_cluster.start("umbrella-b")  # the module's other tests want three nodes
        client.delete("/collections/moving")


def test_fine_tuning_a_sharded_text_collection_switches_every_shard(
    cluster_settings: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The router tunes the model on the feedback it keeps and the texts the shards keep, then re-embeds every
    point from the shards' texts and gives each shard its new vectors in one batch; the slang finds its products
    after the switch, and a rollback brings back the base vectors."""
    from tests.personalization.test_finetune import FAST, ITEMS, build_models

    settings = cluster_settings.model_copy(update={"models_dir": build_models(tmp_path_factory.mktemp("models"))})
    red_backpacks = {i.id for i in ITEMS if (i.product.type, i.product.colour) == ("backpack", "red")}
    words = f"crimson {slang_names()['backpack'][0]}"
    with TestClient(create_app(settings)) as client:
        body = {"embedder": {"kind": "text", "model": "tiny-text"}, "store_source": True, "shards": 2, "replicas": 2}
        assert client.put("/collections/shop", json=body).status_code == 201
        points = [{"id": i.id, "text": i.product.text} for i in ITEMS]
        assert client.put("/collections/shop/points", json={"points": points}).status_code == 200
        events = feedback_clicks(ITEMS, 300, now=time.time())
        assert client.post("/collections/shop/events", json={"events": events}).json()["accepted"] == 300

        def found() -> int:
            hits = client.post("/collections/shop/search", json={"text": words, "k": 5}).json()["results"]
            return sum(h["id"] in red_backpacks for h in hits)

        def vector() -> list[float]:
            got = client.post("/collections/shop/points/get", json={"ids": [3], "with_vector": True}).json()
            return got["points"][0]["vector"]  # type: ignore[no-any-return]

        before, base_vector = found(), vector()
        assert client.post("/collections/shop/embedder/finetune", json=FAST).status_code == 202
        _wait(lambda: client.get("/collections/shop/embedder/finetune").json()["state"] != "running")
        report = client.get("/collections/shop/embedder/finetune").json()
        assert report["state"] == "done" and report["metrics"]["tuned"]["mrr"] > report["metrics"]["base"]["mrr"] + 0.3
        assert client.post("/collections/shop/embedder/finetune/apply").status_code == 202
        _wait(lambda: client.get("/collections/shop/embedder").json()["switch"]["state"] != "running")
        assert client.get("/collections/shop/embedder").json()["embedder"]["version"] == report["model"]["version"]
        _wait_until_fresh(client)
        assert found() > before and vector() != pytest.approx(base_vector, abs=1e-4)
        copies = client.get("/cluster").json()["collections"][0]["copies"]
        assert all(c["seq"] == next(o for o in copies if o["shard"] == c["shard"])["seq"] for c in copies)
        assert client.post("/collections/shop/embedder/finetune/rollback").status_code == 202
        _wait(lambda: client.get("/collections/shop/embedder").json()["switch"]["state"] != "running")
        assert vector() == pytest.approx(base_vector, abs=1e-5)
        client.delete("/collections/shop")
