"""The planner's choices, seen through a real collection: exact when cheap, graph when broad."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.collections.models import CollectionConfig
from app.collections.registry import CollectionRegistry
from app.core.config import Settings
from app.index.hnsw import HnswIndex
from app.main import open_registry
from app.search.models import Query
from app.search.planner import choose_plan
from app.search.searcher import search, search_inline
from tests.conftest import clustered

N, DIM = 20_000, 16
WAIT = 30.0


def test_choose_plan_rules() -> None:
    kw = {"dim": 10, "exact_max_floats": 1000}
    assert choose_plan(exact_requested=True, graph_ready=True, candidates=10**6, **kw) == "exact"
    assert choose_plan(exact_requested=False, graph_ready=False, candidates=10**6, **kw) == "exact"
    assert choose_plan(exact_requested=False, graph_ready=True, candidates=100, **kw) == "exact"
    assert choose_plan(exact_requested=False, graph_ready=True, candidates=101, **kw) == "hnsw"


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory):
    """20k points with a `bucket` field in 0..99, so `bucket < X` selects X percent."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("planner"),
        exact_max_floats=2_000 * DIM,
        filtered_exact_max_floats=2_000 * DIM,
        index_threads=2,
    )
    reg = open_registry(settings)
    c = reg.create(CollectionConfig(name="big", dim=DIM, metric="cosine", payload_indexes={"bucket": "integer"}))
    data = clustered(N, DIM, seed=7)
    for start in range(0, N, 5_000):
        ids = list(range(start, start + 5_000))
        c.upsert(ids, data[start : start + 5_000], [{"bucket": i % 100} for i in ids])
    assert c.graph.wait(timeout=120)
    yield c, data
    reg.close()


def _bucket_below(x: int) -> dict:
    return {"must": [{"key": "bucket", "range": {"lt": x}}]}


def test_small_collection_is_searched_exactly(registry: CollectionRegistry) -> None:
    c = registry.create(CollectionConfig(name="small", dim=4))
    c.graph.wait()
    c.upsert([1, 2], np.eye(4, dtype=np.float32)[:2], [None, None])
    (result,) = search(c, [Query(vector=np.ones(4, np.float32), k=1)])
    assert result.plan == "exact" and result.candidates == 2


def test_unfiltered_large_collection_uses_the_graph(big) -> None:
    c, data = big
    (result,) = search(c, [Query(vector=data[0], k=10)])
    assert result.plan == "hnsw" and result.candidates == N


def test_selective_filter_is_exact_and_broad_filter_uses_the_graph(big) -> None:
    c, data = big
    (narrow,) = search(c, [Query(vector=data[0], k=10, filter=_bucket_below(5))])
    assert narrow.plan == "exact" and narrow.candidates == N * 5 // 100
    (broad,) = search(c, [Query(vector=data[0], k=10, filter=_bucket_below(50))])
    assert broad.plan == "hnsw" and broad.candidates == N // 2


@pytest.mark.parametrize("percent", [12, 30, 50])
def test_filtered_graph_search_returns_k_at_high_recall(big, percent: int) -> None:
    c, data = big
    rng = np.random.default_rng(percent)
    queries = data[rng.choice(N, 100, replace=False)] + 0.05
    matching = np.arange(N)[np.arange(N) % 100 < percent]
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    recalls = []
    for q in queries:
        (res,) = search(c, [Query(vector=q, k=10, filter=_bucket_below(percent), with_payload=False)])
        assert res.plan == "hnsw"
        assert len(res.hits) == 10, "a filtered search never comes back short when enough points match"
        assert all(h.id % 100 < percent for h in res.hits)
        scores = unit[matching] @ (q / np.linalg.norm(q))
        truth = set(matching[np.argsort(-scores)[:10]].tolist())
        recalls.append(len(truth & {h.id for h in res.hits}) / 10)
    assert np.mean(recalls) >= 0.95


def test_exact_flag_and_score_threshold(big) -> None:
    c, data = big
    (res,) = search(c, [Query(vector=data[3], k=5, exact=True, score_threshold=0.999)])
    assert res.plan == "exact"
    assert [h.id for h in res.hits] == [3]


def test_a_filtered_graph_search_filters_a_wide_list_and_falls_back_when_it_holds_too_few(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """90 % of the points lie near +x, 10 % near -x. A query near +x filtered to the far side finds no match in
    the wide unfiltered list, so the filter goes into the graph; filtered to the near side it never does."""
    settings = Settings(data_dir=tmp_path / "data", exact_max_floats=0, filtered_exact_max_floats=0, index_threads=1)
    rng = np.random.default_rng(3)
    n, dim = 3_000, 8
    near = rng.normal(size=(n, dim)).astype(np.float32) * 0.3
    near[:, 0] += np.where(np.arange(n) % 10 == 0, -5, 5)
    sides = ["far" if i % 10 == 0 else "near" for i in range(n)]
    calls: list[bool] = []
    real = HnswIndex.search

    def spy(index: HnswIndex, *args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("allowed") is not None)
        return real(index, *args, **kwargs)

    monkeypatch.setattr(HnswIndex, "search", spy)
    reg = open_registry(settings)
    try:
        c = reg.create(CollectionConfig(name="sides", dim=dim, metric="l2", payload_indexes={"side": "keyword"}))
        c.upsert(list(range(n)), near, [{"side": s} for s in sides])
        assert c.graph.wait(WAIT)
        query = near[1] + 0.01
        for side, fallback in (("near", False), ("far", True)):
            calls.clear()
            flt = {"must": [{"key": "side", "match": side}]}
            (res,) = search(c, [Query(vector=query, k=10, filter=flt, with_payload=False)])
            matching = np.flatnonzero(np.array(sides) == side)
            truth = matching[np.argsort(np.linalg.norm(near[matching] - query, axis=1))[:10]]
            assert res.plan == "hnsw" and [h.id for h in res.hits] == truth.tolist()
            assert calls == ([False, True] if fallback else [False])
            # On the event loop only the quick way is taken: a list holding too few matches goes to a worker.
            inline = search_inline(c, Query(vector=query, k=10, filter=flt, with_payload=False))
            assert (inline is None) if fallback else (inline is not None and inline.hits == res.hits)
        wide = Query(vector=query, k=250, filter={"must": [{"key": "side", "match": "near"}]})
        assert search_inline(c, wide) is None  # reads 1,112 results: more than the event loop may take on
        unindexed = {"must": [{"key": "colour", "match": "red"}]}  # read from every payload: never inline
        assert search_inline(c, Query(vector=query, k=10, filter=unindexed)) is None
    finally:
        reg.close()
