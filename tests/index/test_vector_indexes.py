"""HnswIndex against ExactIndex: recall per metric, and the hnswlib quirks the adapter hides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.index.base import prepare
from app.index.exact import ExactIndex
from app.index.hnsw import HnswIndex
from tests.conftest import clustered

N, DIM, K = 5_000, 32, 10


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_hnsw_recall_at_10_against_exact(metric: str) -> None:
    data = clustered(N + 200, DIM, seed=1)
    base, queries = prepare(data[:N], metric), data[N:]  # the indexes store vectors as prepare() makes them
    slots = np.arange(N)
    exact = ExactIndex(DIM, metric)  # type: ignore[arg-type]
    exact.upsert(slots, base)
    hnsw = HnswIndex(DIM, metric, m=16, ef_construction=200, ef=64, threads=2)  # type: ignore[arg-type]
    hnsw.upsert(slots, base)
    truth, truth_scores = exact.search(queries, K)
    found, found_scores = hnsw.search(queries, K)
    assert _recall(found, truth) >= 0.95
    # Both report the same score for the same neighbour (the metric's own meaning, not hnswlib's distance).
    np.testing.assert_allclose(found_scores[:, 0], truth_scores[:, 0], rtol=1e-3, atol=1e-3)


def test_exact_index_is_exact() -> None:
    rng = np.random.default_rng(2)
    data = rng.normal(size=(300, 8)).astype(np.float32)
    q = rng.normal(size=(5, 8)).astype(np.float32)
    for metric, brute in [
        ("l2", lambda: np.linalg.norm(data[None] - q[:, None], axis=2)),
        ("ip", lambda: q @ data.T),
    ]:
        index = ExactIndex(8, metric)  # type: ignore[arg-type]
        index.upsert(np.arange(300), data)
        slots, scores = index.search(q, 7)
        expected = brute()
        order = np.argsort(expected if metric == "l2" else -expected, axis=1)[:, :7]
        np.testing.assert_array_equal(slots, order)
        np.testing.assert_allclose(scores, np.take_along_axis(expected, order, axis=1), rtol=1e-4, atol=1e-4)


def test_exact_index_skips_deleted_and_searches_candidates_only() -> None:
    index = ExactIndex(2, "l2")
    index.upsert(np.arange(4), np.array([[0, 0], [1, 0], [2, 0], [3, 0]], np.float32))
    index.delete(np.array([0]))
    slots, _ = index.search(np.zeros(2, np.float32), 10)
    assert slots.tolist() == [[1, 2, 3]]
    slots, _ = index.search(np.zeros(2, np.float32), 10, candidates=np.array([3, 2]))
    assert slots.tolist() == [[2, 3]]


def test_hnsw_clamps_k_grows_and_deletes_idempotently() -> None:
    index = HnswIndex(4, "l2", m=8, ef_construction=50, ef=10, capacity=2)
    data = np.random.default_rng(3).normal(size=(10, 4)).astype(np.float32)
    index.upsert(np.arange(10), data)  # capacity 2 grows without a RuntimeError
    slots, _ = index.search(data[0], 50)  # k larger than the count is clamped
    assert sorted(slots[0].tolist()) == list(range(10))
    index.delete(np.array([3, 3, 99]))
    index.delete(np.array([3]))  # twice, and an unknown slot: harmless
    assert index.live_count == 9
    slots, _ = index.search(data[3], 9)
    assert 3 not in slots[0]
    index.upsert(np.array([3]), data[3:4] + 100)  # a deleted slot comes back with a new vector
    assert index.live_count == 10
    slots, _ = index.search(data[3] + 100, 1)
    assert slots[0, 0] == 3


def test_hnsw_filter_inside_the_graph() -> None:
    data = clustered(2_000, 16, seed=4)
    index = HnswIndex(16, "cosine", m=16, ef_construction=100, ef=32)
    index.upsert(np.arange(2_000), data)
    allowed = bytearray(2_000)
    for s in range(0, 2_000, 7):
        allowed[s] = 1
    slots, _ = index.search(data[5], 10, allowed=allowed)
    assert len(slots[0]) == 10 and all(s % 7 == 0 for s in slots[0])


def test_hnsw_save_and_load_keep_deleted_state(tmp_path: Path) -> None:
    data = clustered(500, 8, seed=5)
    index = HnswIndex(8, "ip", m=8, ef_construction=50, ef=20)
    index.upsert(np.arange(500), data)
    index.delete(np.array([1, 2]))
    index.save(tmp_path / "g.bin")
    loaded = HnswIndex.load(
        tmp_path / "g.bin", 8, "ip", deleted=index.deleted_labels(), max_capacity=4096, m=8, ef_construction=50, ef=20
    )
    assert loaded.live_count == 498
    loaded.delete(np.array([1]))  # already deleted in the file: still harmless
    a, _ = index.search(data[:20], 5)
    b, _ = loaded.search(data[:20], 5)
    np.testing.assert_array_equal(a, b)


def test_hnsw_replaces_a_vector_with_a_new_node_and_keeps_it_across_a_save(tmp_path: Path) -> None:
    data = clustered(600, 8, seed=6)
    index = HnswIndex(8, "l2", m=8, ef_construction=50, ef=40)
    index.upsert(np.arange(300), data[:300])
    index.upsert(np.arange(100), data[300:400])  # slots 0-99 get new vectors: new nodes, the old ones retired
    index.delete(np.array([5]))
    index.upsert(np.array([5]), data[500:501])  # a deleted slot back again: a third node
    assert (index.live_count, index.dead_count) == (300, 101)
    slots, scores = index.search(data[300:400], 1)
    assert (slots[:, 0] == np.arange(100))[np.arange(100) != 5].all()  # found under its slot, not its label
    np.testing.assert_allclose(scores[np.arange(100) != 5, 0], 0, atol=1e-3)
    assert index.search(data[500], 1)[0][0, 0] == 5
    assert all(index.search(data[i], 1)[0][0, 0] != i for i in range(1, 100) if i != 5)  # old vectors are gone
    allowed = bytearray(300)
    allowed[7] = 1
    assert index.search(data[307], 1, allowed=allowed)[0].tolist() == [[7]]  # the filter sees slots too
    index.save(tmp_path / "g.bin")
    loaded = HnswIndex.load(
        tmp_path / "g.bin", 8, "l2", deleted=index.deleted_labels(), max_capacity=4096, m=8, ef_construction=50, ef=40
    )
    assert (loaded.live_count, loaded.dead_count) == (300, 101)
    np.testing.assert_array_equal(loaded.search(data[300:400], 5)[0], index.search(data[300:400], 5)[0])
    loaded.upsert(np.array([5]), data[501:502])  # a fourth node: its label is new to the loaded graph too
    assert loaded.search(data[501], 1)[0][0, 0] == 5 and (loaded.live_count, loaded.dead_count) == (300, 102)
