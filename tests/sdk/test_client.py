"""The sync client against the app in-process: every operation, numpy in and out, errors as their classes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from umbrella_client import Client, Event, SearchQuery, TuneReport, TuneTrial, errors

from app.core.config import Settings
from app.main import create_app
from tests.conftest import clustered
from tests.support.product_images import encode, product_image
from tests.support.synthetic_shop import generate_shop
from tests.support.waiting import wait_until

SHOES = {"must": [{"key": "category", "match": "shoes"}]}


def _products(sdk: Client, metric: str = "l2") -> np.ndarray:
    """Twenty 8-d products; l2 keeps vectors as sent, so they can be compared exactly on the way back."""
    sdk.create_collection("products", dim=8, metric=metric, payload_indexes={"category": "keyword", "price": "float"})
    vectors = clustered(20, 8, seed=1, clusters=4)
    ids = [*range(10), *(f"sku-{i}" for i in range(10, 20))]  # ints stay ints, strings stay strings
    payloads = [{"category": "shoes" if i % 2 else "bags", "price": float(i)} for i in range(20)]
    assert sdk.upsert("products", ids, vectors=vectors, payloads=payloads).count == 20
    return vectors


def test_collections_are_created_listed_inspected_and_dropped(sdk: Client) -> None:
    info = sdk.create_collection("docs", dim=4, hnsw={"m": 8, "ef": 32}, payload_indexes={"lang": "keyword"})
    assert (info.name, info.dim, info.metric, info.hnsw.m, info.hnsw.ef, info.count) == ("docs", 4, "cosine", 8, 32, 0)
    assert [c.name for c in sdk.list_collections()] == ["docs"]
    assert sdk.get_collection("docs").payload_indexes == {"lang": "keyword"}
    with pytest.raises(errors.CollectionExists) as exists:
        sdk.create_collection("docs", dim=4)
    assert isinstance(exists.value, errors.AlreadyExists) and exists.value.status == 409
    assert sdk.drop_collection("docs") is None
    with pytest.raises(errors.CollectionNotFound) as missing:
        sdk.get_collection("docs")
    assert missing.value.code == "collection_not_found" and "docs" in missing.value.message
    assert sdk.list_collections() == []


def test_tune_comes_back_typed_and_apply_changes_the_default_ef(sdk: Client) -> None:
    sdk.create_collection("docs", dim=16, hnsw={"m": 4, "ef_construction": 16, "ef": 10})
    sdk.upsert("docs", range(500), vectors=clustered(500, 16, seed=2))
    report = sdk.tune("docs", target_recall=0.9, k=5, queries=50, apply=True)
    assert isinstance(report, TuneReport) and all(isinstance(t, TuneTrial) for t in report.trials)
    assert (report.k, report.queries, report.previous_ef, report.applied) == (5, 50, 10, True)
    assert report.reached and report.trials[-1].ef == report.chosen_ef and report.trials[-1].recall >= 0.9
    assert sdk.get_collection("docs").hnsw.ef == report.chosen_ef


def test_numpy_in_numpy_out_and_ids_as_given(sdk: Client) -> None:
    vectors = _products(sdk)
    points = sdk.get_points("products", [3, "sku-12"], with_vector=True)
    assert [p.id for p in points] == [3, "sku-12"]
    assert isinstance(points[0].vector, np.ndarray) and points[0].vector.dtype == np.float32
    np.testing.assert_array_equal(np.stack([p.vector for p in points]), vectors[[3, 12]])
    assert points[1].payload == {"category": "bags", "price": 12.0}
    assert sdk.get_points("products", [3])[0].vector is None  # vectors only when asked for


def test_search_by_vector_and_by_id_with_filters(sdk: Client) -> None:
    vectors = _products(sdk)
    result = sdk.search("products", vectors[5], k=3, with_vector=True)
    assert result.ids[0] == 5 and result.results[0].score == pytest.approx(0.0, abs=1e-5)
    assert result.plan in ("exact", "hnsw") and result.candidates == 20 and len(result) == 3
    np.testing.assert_allclose(result.results[0].vector, vectors[5])
    shoes = sdk.search("products", vectors[4].tolist(), k=20, filter=SHOES)  # a plain list works too
    assert len(shoes) == 10 and all(h.payload["category"] == "shoes" for h in shoes)
    cheap = {"must": [{"key": "price", "range": {"lt": 5}}], "must_not": [{"key": "category", "match": "bags"}]}
    assert sorted(sdk.search("products", vectors[0], k=20, filter=cheap).ids) == [1, 3]
    by_id = sdk.search("products", id="sku-11", k=5, exact=True)
    assert "sku-11" not in by_id.ids and len(by_id) == 5


def test_batch_search_takes_rows_queries_or_dicts_and_keeps_the_order(sdk: Client) -> None:
    vectors = _products(sdk)
    rows = sdk.search_batch("products", vectors=vectors[:4], k=1)
    assert [r.ids for r in rows] == [[0], [1], [2], [3]]
    mixed = sdk.search_batch(
        "products", [SearchQuery(vector=vectors[7], k=2), {"id": 7, "filter": SHOES}], k=4
    )  # k=4 fills in what the dict leaves out
    assert mixed[0].ids[0] == 7 and len(mixed[0]) == 2
    assert len(mixed[1]) == 4 and 7 not in mixed[1].ids and all(h.payload["category"] == "shoes" for h in mixed[1])


def test_count_scroll_and_delete(sdk: Client) -> None:
    _products(sdk)
    assert sdk.count("products") == 20 and sdk.count("products", SHOES) == 10
    seen, offset = [], None
    while True:
        page = sdk.scroll("products", limit=6, offset=offset, filter=SHOES)
        seen += [p.id for p in page.points]
        if page.next_offset is None:
            break
        offset = page.next_offset
    assert sorted(map(str, seen)) == sorted(str(i) if i < 10 else f"sku-{i}" for i in range(1, 20, 2))
    assert sdk.delete_points("products", [0, 1, "nope"]).count == 2
    assert sdk.delete_points("products", filter=SHOES).count == 9
    assert sdk.count("products") == 9


def test_server_errors_come_back_as_their_classes_with_every_field(sdk: Client) -> None:
    _products(sdk)
    with pytest.raises(errors.DimensionMismatch) as wrong_dim:
        sdk.search("products", [1.0, 2.0, 3.0])
    e = wrong_dim.value
    assert isinstance(e, errors.InvalidInput) and (e.status, e.code) == (400, "dimension_mismatch")
    assert e.details["expected"] == 8 and e.details["got"] == 3 and e.retry_after is None
    with pytest.raises(errors.PointNotFound) as missing:
        sdk.get_points("products", [1, 999])
    assert missing.value.details == {"missing": [999]}
    assert sdk.count("products", {"must": [{"key": "colour", "match": "red"}]}) == 0  # scanned
    sdk.create_collection("strict", dim=2, strict=True)
    with pytest.raises(errors.UnindexedField):
        sdk.count("strict", {"must": [{"key": "colour", "match": "red"}]})
    with pytest.raises(errors.ValidationFailed) as invalid:
        sdk.search("products", [0.0] * 8, k=0)
    assert invalid.value.status == 422 and invalid.value.details["errors"][0]["loc"][-1] == "k"
    with pytest.raises(errors.WrongModality):
        sdk.search("products", text="red shoes")
    with pytest.raises(ValueError, match="3 vectors for 2 ids"):  # caught before anything is sent
        sdk.upsert("products", [1, 2], vectors=np.zeros((3, 8)))


def test_the_api_key_is_sent_and_a_wrong_one_is_unauthorized(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(data_dir=tmp_path, api_key="s3cret"))) as http:
        with Client(http_client=http, api_key="s3cret") as sdk:
            assert sdk.list_collections() == []
        with Client(http_client=http, api_key="wrong") as sdk, pytest.raises(errors.Unauthorized) as denied:
            sdk.list_collections()
        assert denied.value.status == 401
        assert Client(http_client=http).healthz() == "ok"  # the probes stay open


def test_a_read_only_key_reads_and_is_forbidden_to_write(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, api_key="admin-s3cret", read_only_api_key="reader-s3cret")
    with TestClient(create_app(settings)) as http:
        with Client(http_client=http, api_key="admin-s3cret") as admin:
            admin.create_collection("products", dim=2)
        with Client(http_client=http, api_key="reader-s3cret") as reader:
            assert [c.name for c in reader.list_collections()] == ["products"]
            with pytest.raises(errors.Forbidden) as denied:
                reader.upsert("products", [1], vectors=[[0.1, 0.2]])
        assert denied.value.status == 403 and denied.value.code == "forbidden"


def test_health_probes(sdk: Client) -> None:
    assert sdk.healthz() == "ok"
    _products(sdk)
    ready = sdk.readyz()
    assert ready.ready and ready.collections == {"products": "ready"}


def test_photos_go_up_as_base64_and_search_uploads_one_as_a_file(sdk: Client, tmp_path: Path) -> None:
    sdk.create_collection("photos", embedder={"kind": "image"}, payload_indexes={"shop": "keyword"})
    photos = [encode(product_image(seed)) for seed in range(6)]
    (tmp_path / "p5.png").write_bytes(photos[5])
    images = [*photos[:5], tmp_path / "p5.png"]  # bytes or paths
    payloads = [{"shop": "north" if i < 3 else "south"} for i in range(6)]
    assert sdk.upsert("photos", [f"p{i}" for i in range(6)], images=images, payloads=payloads).count == 6
    assert sdk.search_image("photos", photos[4], k=2).ids[0] == "p4"
    south = sdk.search_image("photos", tmp_path / "p5.png", k=6, filter={"must": [{"key": "shop", "match": "south"}]})
    assert south.ids[0] == "p5" and len(south) == 3
    assert sdk.search("photos", image=photos[2], k=1).ids == ["p2"]
    with pytest.raises(errors.InvalidImage):
        sdk.search_image("photos", b"not a picture")


def test_sequences_up_and_searched(sdk: Client) -> None:
    rng = np.random.default_rng(0)
    genes = ["".join(rng.choice(list("ACGT"), 300)) for _ in range(12)]
    sdk.create_collection("genes", embedder={"kind": "kmer", "k": 4})
    assert sdk.upsert("genes", range(12), sequences=genes).count == 12
    assert sdk.search("genes", sequence=genes[7][50:250], k=1).ids == [7]


def test_recommendation_by_examples_events_and_profiles(sdk: Client) -> None:
    vectors = _products(sdk, metric="cosine")
    liked = sdk.recommend("products", positive=[2, vectors[4]], negative=["sku-13"], k=5, strategy="best_score")
    assert len(liked) == 5 and not {2, "sku-13"} & set(liked.ids)
    events = [Event("ann", 2, "click", time=1_700_000_000 + i) for i in range(3)]
    report = sdk.add_events("products", [*events, {"user": "ann", "item": "ghost", "type": "view"}])
    assert (report.received, report.accepted, report.rejected) == (4, 3, 1)
    assert report.reasons == {"unknown_item": 1} and report.samples[0]["index"] == 3
    profile = sdk.get_user("products", "ann", with_vector=True)
    assert profile.counts["click"] == 3 and profile.has_taste and isinstance(profile.taste, np.ndarray)
    recs = sdk.recommend_for_user("products", "ann", k=4, filter=SHOES)
    assert recs.path == "similarity" and recs.excluded >= 1 and 2 not in [h.id for h in recs]
    assert all(h.payload["category"] == "shoes" for h in recs)
    assert sdk.recommend_for_user("products", "nobody", k=3).path == "popular"
    with pytest.raises(errors.UserNotFound):
        sdk.get_user("products", "nobody")


def test_the_ranker_trains_reports_and_draws_its_curves(sdk: Client) -> None:
    shop = generate_shop(300, 40, sessions_per_user=6, seed=3)
    sdk.create_collection("shop", dim=shop.vectors.shape[1], payload_indexes={"category": "keyword", "price": "float"})
    summary = sdk.upload("shop", vectors=shop.vectors, ids=shop.item_ids, payloads=shop.payloads, progress=False)
    assert summary.ok and summary.sent == 300
    with pytest.raises(errors.NotEnoughEvents) as too_few:
        sdk.train_ranker("shop")
    assert too_few.value.status == 409 and "needed" in too_few.value.details
    with pytest.raises(errors.RankerNotFound):
        sdk.get_ranker("shop")
    assert sdk.add_events("shop", shop.events).accepted == len(shop.events)
    report = sdk.train_ranker("shop", alphas=[1e-3], class_weights=[None], max_epochs=10)
    assert report.chosen["alpha"] == 1e-3 and "similarity" in report.features and report.metrics["ranker"]
    assert sdk.get_ranker("shop").trained_at == report.trained_at
    ET.fromstring(sdk.ranker_curves("shop"))  # SVG text, well-formed


def test_facets_through_the_sdk(sdk: Client) -> None:
    sdk.create_collection("shop", dim=2, payload_indexes={"brand": "keyword"})
    sdk.upsert(
        "shop",
        [1, 2, 3],
        vectors=[[1, 0], [0, 1], [1, 1]],
        payloads=[{"brand": "nike"}, {"brand": ["nike", "puma"]}, {"brand": "puma"}],
    )
    facets = sdk.facets("shop", "brand", filter={"must_not": [{"key": "brand", "match": "puma"}]})
    assert facets.counts == {"nike": 1} and facets.candidates == 1
    assert sdk.facets("shop", "brand").counts == {"nike": 2, "puma": 2}


def test_hybrid_search_and_keyword_fields_through_the_sdk(sdk: Client) -> None:
    info = sdk.create_collection("shop", dim=2, lexical={"fields": ["title"]})
    assert info.lexical == {"fields": ["title"], "source": False} and info.lexical_state == "ready"
    sdk.upsert("shop", [1, 2], vectors=[[1, 0], [0, 1]], payloads=[{"title": "usb-c charger"}, {"title": "cable"}])
    found = sdk.search("shop", [1, 0], keywords="cable", fusion={"method": "weighted", "alpha": 0.2})
    assert found.mode == "hybrid" and found.ids[0] == 2
    assert found.results[0].lexical["rank"] == 1 and found.results[0].dense["rank"] == 2
    words = sdk.search("shop", [1, 0], keywords="usbc", mode="lexical")
    assert words.ids == [1] and words.plan == "lexical"
    batch = sdk.search_batch("shop", [SearchQuery(vector=[0, 1], keywords="charger", mode="lexical")])
    assert batch[0].ids == [1]
    assert sdk.set_lexical("shop", ["title", "missing"]).lexical == {"fields": ["title", "missing"], "source": False}
    assert sdk.drop_lexical("shop").lexical_state == "off"
    with pytest.raises(errors.NoLexicalIndex):
        sdk.search("shop", [1, 0], keywords="cable", mode="hybrid")


def test_payload_indexes_added_and_dropped_through_the_sdk(sdk: Client) -> None:
    sdk.create_collection("shop", dim=2)
    sdk.upsert("shop", [1, 2], vectors=[[1, 0], [0, 1]], payloads=[{"brand": "nike"}, {"brand": "puma"}])
    nike = {"must": [{"key": "brand", "match": "nike"}]}
    assert sdk.search("shop", [1, 0], filter=nike).plan == "exact+scan"
    assert sdk.index_field("shop", "brand", "keyword").payload_indexes == {"brand": "keyword"}
    wait_until(lambda: not sdk.get_collection("shop").payload_index_builds, poll=0.02)
    found = sdk.search("shop", [1, 0], filter=nike)
    assert found.plan == "exact" and found.ids == [1]
    assert sdk.drop_field_index("shop", "brand").payload_indexes == {}


def test_mmr_and_groups_through_the_sdk(sdk: Client) -> None:
    sdk.create_collection("photos", dim=2)
    payloads = [{"product": "a"}, {"product": "a"}, {"product": "b"}, {"product": "c"}]
    sdk.upsert("photos", [1, 2, 3, 4], vectors=[[1, 0], [1, 0.01], [1, 0.5], [0, 1]], payloads=payloads)
    grouped = sdk.search("photos", [1, 0], group_by="product", groups=2)
    assert grouped.groups == [{"value": "a", "ids": [1]}, {"value": "b", "ids": [3]}]
    assert grouped.ids == [1, 3] and grouped.next_group_offset == 2
    assert sdk.search("photos", [1, 0], k=2, mmr={"lambda": 0.2}).ids == [1, 4]  # the least like the first
    assert sdk.search("photos", [1, 0], k=2).ids == [1, 2]
