"""GraphManager: its threads end with the collection, failed checkpoints are counted, a restart replays writes."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import app.collections.graph as graph_module
from app.collections.collection import Collection
from app.collections.graph import GraphManager
from app.collections.models import CollectionConfig
from app.collections.registry import CollectionRegistry
from app.core.config import Settings
from app.core.errors import CollectionNotFound
from app.index.hnsw import HnswIndex
from app.main import create_app, open_registry
from app.search.models import Query
from app.search.searcher import search
from app.storage.checkpoint import read_checkpoint
from tests.conftest import clustered
from tests.support.waiting import wait_until

WAIT = 10.0
FAILURES = "umbrella_background_failures_total"


def threads_of(name: str) -> list[str]:
    """The live background threads of collection `name` (builder, checkpointer, recall monitor)."""
    mine = {f"graph-{name}", f"checkpoint-{name}", f"recall-{name}"}
    return sorted(t.name for t in threading.enumerate() if t.name in mine and t.is_alive())


def fill(collection: Collection, n: int, start: int = 0, seed: int = 0) -> np.ndarray:
    vectors = clustered(n, collection.config.dim, seed=seed)
    collection.upsert(list(range(start, start + n)), vectors, [None] * n)
    return vectors


# ---- threads --------------------------------------------------------------------------------


def test_close_and_drop_leave_no_thread_of_the_collection(tmp_path: Path) -> None:
    registry = open_registry(Settings(data_dir=tmp_path / "data", index_threads=1, recall_sample_every=10))
    try:
        dropped = registry.create(CollectionConfig(name="threads-dropped", dim=4))
        kept = registry.create(CollectionConfig(name="threads-kept", dim=4))
        for collection in (dropped, kept):
            fill(collection, 50)
            assert collection.graph.wait(WAIT)
        assert threads_of("threads-dropped") == ["checkpoint-threads-dropped", "recall-threads-dropped"]

        registry.drop("threads-dropped")
        assert threads_of("threads-dropped") == []
        assert threads_of("threads-kept") == ["checkpoint-threads-kept", "recall-threads-kept"]  # untouched
    finally:
        registry.close()
    assert threads_of("threads-kept") == []
    assert kept.closed
    with pytest.raises(CollectionNotFound):
        kept.count_matching(None)


def _close_during_bring_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Collection:
    """Reopen a checkpointed collection and close it while its builder is still reading the checkpoint."""
    settings = Settings(data_dir=tmp_path / "data", index_threads=1, checkpoint_every=10**6)
    registry = open_registry(settings)
    fill(registry.create(CollectionConfig(name=name, dim=4)), 200)
    registry.get(name).graph.wait(WAIT)
    registry.close()  # checkpoints: the next open loads the graph
    assert read_checkpoint(tmp_path / "data" / name) is not None

    entered, release = threading.Event(), threading.Event()
    real_read = graph_module.read_checkpoint

    def slow_read(folder: Path) -> Any:
        entered.set()
        release.wait(WAIT)
        return real_read(folder)

    monkeypatch.setattr(graph_module, "read_checkpoint", slow_read)
    registry = open_registry(settings)
    collection = registry.get(name)
    assert entered.wait(WAIT)
    assert threads_of(name) == [f"checkpoint-{name}", f"graph-{name}", f"recall-{name}"]
    closing = threading.Thread(target=registry.close)
    closing.start()
    assert wait_until(lambda: collection.closed)  # close() now waits for the builder
    release.set()
    closing.join(WAIT)
    assert not closing.is_alive()
    return collection


def test_close_during_bring_up_stops_the_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    collection = _close_during_bring_up(tmp_path, monkeypatch, "closed-early")
    assert threads_of("closed-early") == []
    assert collection.graph.state != "ready"  # the builder saw the close and installed nothing


def test_close_during_bring_up_is_no_build_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    collection = _close_during_bring_up(tmp_path, monkeypatch, "closed-early-2")
    assert collection.graph.failures["build"] == 0
    assert collection.graph.state != "failed"


# ---- checkpoint failures --------------------------------------------------------------------


def test_a_failed_checkpoint_is_counted_on_metrics_and_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path / "d", checkpoint_every=5, index_threads=1)
    with TestClient(create_app(settings)) as client:
        assert client.put("/collections/c", json={"dim": 4}).status_code == 201
        registry: CollectionRegistry = client.app.state.registry  # type: ignore[attr-defined]
        collection = registry.get("c")
        assert collection.graph.wait(WAIT)

        attempts: list[int] = []

        def broken(folder: Path, seq: int, save: Any, info: dict[str, Any], table: Any = None) -> None:
            attempts.append(seq)
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(graph_module, "write_checkpoint", broken)
        points = [{"id": i, "vector": [1.0, float(i), 0.0, 0.5]} for i in range(5)]
        assert client.put("/collections/c/points", json={"points": points}).status_code == 200
        assert wait_until(lambda: collection.graph.failures["checkpoint"] == 1)
        assert attempts == [collection.seq]

        body = client.get("/metrics").text
        assert f'{FAILURES}{{collection="c",task="checkpoint"}} 1' in body.splitlines()
        assert f'{FAILURES}{{collection="c",task="build"}} 0' in body.splitlines()
        assert f"# TYPE {FAILURES} counter" in body.splitlines()

        # The disk has room again: the next write wakes the checkpointer, which succeeds; the count stays.
        monkeypatch.undo()
        one_more = {"points": [{"id": 9, "vector": [0, 1, 0, 0]}]}
        assert client.put("/collections/c/points", json=one_more).status_code == 200
        assert wait_until(lambda: read_checkpoint(collection.folder) is not None)
        found = read_checkpoint(collection.folder)
        assert found is not None and found[1]["seq"] == collection.seq and found[1]["count"] == 6
        assert collection.graph.failures["checkpoint"] == 1
        assert f'{FAILURES}{{collection="c",task="checkpoint"}} 1' in client.get("/metrics").text.splitlines()


def test_a_failing_checkpoint_at_close_still_closes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path / "data", index_threads=1, checkpoint_every=10**6)
    registry = open_registry(settings)
    collection = registry.create(CollectionConfig(name="close-fails", dim=4))
    assert collection.graph.wait(WAIT)
    fill(collection, 20)

    def broken(folder: Path, seq: int, save: Any, info: dict[str, Any], table: Any = None) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(graph_module, "write_checkpoint", broken)
    try:
        with contextlib.suppress(OSError):  # reporting the failure is fine; leaving things open is not
            registry.close()
        assert collection.closed
        assert threads_of("close-fails") == []
        reopened = open_registry(settings)  # the data directory's lock was released
        try:
            assert reopened.get("close-fails").count == 20
        finally:
            reopened.close()
    finally:
        monkeypatch.undo()
        registry.close()  # what the failed close left behind


# ---- restart ----------------------------------------------------------------------------------


def test_a_graph_loaded_from_its_checkpoint_replays_later_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dim = 8
    # exact_max_floats=0: every unfiltered search goes through the graph, never the exact fallback
    settings = Settings(data_dir=tmp_path / "data", index_threads=1, checkpoint_every=10**6, exact_max_floats=0)
    data = clustered(400, dim, seed=7)
    registry = open_registry(settings)
    try:
        collection = registry.create(CollectionConfig(name="c", dim=dim, metric="l2"))
        assert collection.graph.wait(WAIT)
        collection.upsert(list(range(200)), data[:200], [None] * 200)
        with collection.quiesced():
            collection.graph.checkpoint()
        checkpointed = collection.seq
        # after the checkpoint: new points, deletes of old and new ones, then new points in the freed slots
        collection.upsert(list(range(200, 300)), data[200:300], [None] * 100)
        collection.delete([*range(50), *range(250, 260)])
        collection.upsert(list(range(300, 340)), data[300:340], [None] * 40)
        collection.upsert([100], data[399:400], [None])  # an old point moved after the checkpoint
        data[100] = data[399]
        final_seq = collection.seq
        collection.close(checkpoint=False)  # the checkpoint on disk stays as it was
    finally:
        registry.close()
    manifest = read_checkpoint(tmp_path / "data" / "c")
    assert manifest is not None and manifest[1]["seq"] == checkpointed < final_seq

    loads: list[Path] = []
    real_load = HnswIndex.load.__func__  # type: ignore[attr-defined]

    def spy_load(cls: type[HnswIndex], path: Path, *args: Any, **kwargs: Any) -> HnswIndex:
        loads.append(path)
        return real_load(cls, path, *args, **kwargs)

    monkeypatch.setattr(HnswIndex, "load", classmethod(spy_load))
    registry = open_registry(settings)
    try:
        collection = registry.get("c")
        assert collection.graph.wait(WAIT) and collection.graph.state == "ready"
        assert loads == [manifest[0]]  # loaded, not rebuilt
        deleted = {*range(50), *range(250, 260)}
        live = [i for i in range(340) if i not in deleted]
        assert collection.count == len(live) == collection.graph.live_count
        results = search(collection, [Query(vector=data[i], k=10) for i in live])
        for pid, result in zip(live, results, strict=True):
            assert result.plan == "hnsw"
            assert result.hits[0].id == pid and result.hits[0].score == pytest.approx(0, abs=1e-3)
            assert not {h.id for h in result.hits} & deleted
        for result in search(collection, [Query(vector=data[i], k=10) for i in sorted(deleted)]):
            assert result.plan == "hnsw" and not {h.id for h in result.hits} & deleted
    finally:
        registry.close()
    # A graceful stop of a process that only replayed rows at start still checkpoints them: the next start
    # replays nothing.
    manifest = read_checkpoint(tmp_path / "data" / "c")
    assert manifest is not None and manifest[1]["seq"] == final_seq


def test_a_point_resent_with_the_same_vector_keeps_its_graph_node(
    registry: CollectionRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    collection = registry.create(CollectionConfig(name="shop", dim=8))
    vectors = fill(collection, 200)
    assert registry.wait_ready(WAIT)
    added: list[list[int]] = []
    original = HnswIndex.upsert

    def recording(index: HnswIndex, slots: np.ndarray, batch: np.ndarray) -> None:
        added.append(slots.tolist())
        original(index, slots, batch)

    monkeypatch.setattr(HnswIndex, "upsert", recording)
    sent = np.vstack([vectors[:4], vectors[199:200]])
    sent[1] = vectors[150]  # point 1 moves; 0, 2, 3 are re-sent as they were, with new payloads; 999 is new
    collection.upsert([0, 1, 2, 3, 999], sent, [{"price": i} for i in range(5)])
    with collection.reading() as view:
        moved = sorted(view.slot_of(pid) for pid in (1, 999))
    assert added == [moved]  # only the moved and the new point went to the graph
    hits = search(collection, [Query(vector=vectors[150], k=2, exact=False)])[0].hits
    assert {h.id for h in hits} == {1, 150}
    assert [p.payload_json for p in collection.get([2])] == [b'{"price":2}'] and collection.count == 201


def test_dead_nodes_past_the_live_ones_are_compacted_while_the_old_graph_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(graph_module, "COMPACT_AFTER", 50)
    settings = Settings(data_dir=tmp_path / "data", index_threads=1, checkpoint_every=10**6, exact_max_floats=0)
    data = clustered(900, 8, seed=8)
    building, release = threading.Event(), threading.Event()
    real_build = GraphManager._build

    def held_build(self: GraphManager, **kwargs: Any) -> HnswIndex:
        index = real_build(self, **kwargs)
        if kwargs.get("compacting"):
            building.set()
            release.wait(WAIT)
        return index

    monkeypatch.setattr(GraphManager, "_build", held_build)
    registry = open_registry(settings)
    try:
        collection = registry.create(CollectionConfig(name="moves", dim=8, metric="l2"))
        collection.upsert(list(range(300)), data[:300], [None] * 300)
        assert collection.graph.wait(WAIT)
        old = collection.graph.index
        assert old is not None
        collection.upsert(list(range(300)), data[300:600], [None] * 300)  # every point moves: 300 dead nodes
        assert old.dead_count == 300
        assert building.wait(WAIT)  # the rebuild has its snapshot; the old graph still answers
        collection.upsert(list(range(100)), data[600:700], [None] * 100)  # written during the rebuild
        collection.delete([299])
        assert collection.graph.index is old
        release.set()
        wait_until(lambda: collection.graph.index is not old, WAIT)
        new = collection.graph.index
        # built without the 300 dead nodes; the 101 writes made meanwhile were replayed into it as new nodes
        assert new is not None and (new.live_count, new.dead_count) == (299, 101) and collection.count == 299
        expected = {**{i: data[300 + i] for i in range(100, 299)}, **{i: data[600 + i] for i in range(100)}}
        results = search(collection, [Query(vector=v, k=1) for v in expected.values()])
        assert [(r.plan, r.hits[0].id) for r in results] == [("hnsw", pid) for pid in expected]
        wait_until(lambda: read_checkpoint(tmp_path / "data" / "moves") is not None, WAIT)  # the compacted graph
    finally:
        registry.close()
    found = read_checkpoint(tmp_path / "data" / "moves")
    assert found is not None and len(found[1]["deleted"]) == 101 and found[1]["count"] == 299
