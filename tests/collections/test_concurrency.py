"""A collection under concurrent upserts, deletes, searches and checkpoints; a slow checkpoint never stalls searches."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import app.collections.graph as graph_module
from app.collections.collection import Collection
from app.collections.models import CollectionConfig
from app.core.config import Settings
from app.core.errors import PointNotFound
from app.index.hnsw import HnswIndex
from app.main import open_registry
from app.search.models import Query
from app.search.searcher import search
from app.storage.checkpoint import read_checkpoint
from tests.conftest import clustered
from tests.support.waiting import wait_until

DIM = 16
WAIT = 20.0  # generous: a loaded 2-core CI box must not fail a test by a timeout


def expect_all_readable(collection: Collection, data: np.ndarray, live: list[int], deleted: set[int]) -> None:
    """Every acknowledged point is there with its vector, and every deleted one is gone, also from the graph."""
    assert collection.count == len(live)
    assert collection.count_matching(None) == len(live)
    points = collection.get(live, with_vector=True)
    assert [p.id for p in points] == live
    np.testing.assert_array_equal(np.vstack([p.vector for p in points]), data[live])
    for pid in sorted(deleted)[:50]:
        with pytest.raises(PointNotFound):
            collection.get([pid])
    assert collection.graph.wait(WAIT) and collection.graph.state == "ready"
    assert collection.graph.live_count == len(live)
    # Each point's own vector finds it first through the graph (l2: distance 0); a deleted one never comes back.
    sample = live[:: max(1, len(live) // 60)]
    results = search(collection, [Query(vector=data[i], k=5) for i in sample])
    assert {r.plan for r in results} == {"hnsw"}
    found_first = sum(r.hits[0].id == pid for r, pid in zip(results, sample, strict=True))
    assert found_first >= 0.95 * len(sample)
    gone = sorted(deleted)[::10]
    for r in search(collection, [Query(vector=data[i], k=10) for i in gone]):
        assert r.plan == "hnsw" and len(r.hits) == 10
        assert not {h.id for h in r.hits} & deleted


def test_writes_deletes_searches_and_checkpoints_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path / "data", checkpoint_every=500, index_threads=1, exact_max_floats=0)
    checkpoints: list[int] = []  # the seq each completed checkpoint covers
    checkpointed = threading.Condition()
    real_write = graph_module.write_checkpoint

    def spy(folder: Path, seq: int, save: Any, info: dict[str, Any], table: Any = None) -> None:
        real_write(folder, seq, save, info, table)
        with checkpointed:
            checkpoints.append(seq)
            checkpointed.notify_all()

    monkeypatch.setattr(graph_module, "write_checkpoint", spy)
    n, batch = 3000, 100
    data = clustered(n, DIM, seed=0)
    registry = open_registry(settings)
    try:
        collection = registry.create(CollectionConfig(name="c", dim=DIM, metric="l2"))
        assert collection.graph.wait(WAIT)

        errors: list[BaseException] = []
        acked: set[int] = set()  # ids whose upsert returned
        deleted: set[int] = set()
        seqs: list[int] = []
        to_delete: queue.Queue[list[int] | None] = queue.Queue()
        writing_done = threading.Event()
        searches = [0]
        count_lock = threading.Lock()

        def guarded(fn: Any) -> Any:
            def run() -> None:
                try:
                    fn()
                except BaseException as err:
                    errors.append(err)
                    writing_done.set()

            return run

        def upserter() -> None:
            try:
                with checkpointed:
                    seen = len(checkpoints)
                for start in range(0, n, batch):
                    ids = list(range(start, start + batch))
                    seqs.append(collection.upsert(ids, data[start : start + batch], [{"n": i} for i in ids]))
                    acked.update(ids)
                    to_delete.put(ids)
                    if (start + batch) % 1000 == 0:  # let a checkpoint land among the writes, for sure
                        with checkpointed:
                            assert checkpointed.wait_for(lambda s=seen: len(checkpoints) > s, WAIT)
                            seen = len(checkpoints)
            finally:
                to_delete.put(None)

        def deleter() -> None:
            while (ids := to_delete.get(timeout=WAIT)) is not None:
                doomed = [i for i in ids if i % 7 == 0]
                count, seq = collection.delete([*doomed, -1])  # an unknown id is skipped
                assert count == len(doomed)
                seqs.append(seq)
                deleted.update(doomed)

        def searcher(seed: int) -> None:
            rng = np.random.default_rng(seed)
            while not writing_done.is_set():
                queries = [Query(vector=rng.normal(size=DIM).astype(np.float32), k=10) for _ in range(4)]
                queries.append(Query(vector=rng.normal(size=DIM).astype(np.float32), k=5, exact=True))
                for result in search(collection, queries):
                    ids = [h.id for h in result.hits]
                    assert len(ids) == len(set(ids)) <= 10
                    assert all(isinstance(i, int) and 0 <= i < n for i in ids)
                with count_lock:
                    searches[0] += 1

        writers = [threading.Thread(target=guarded(upserter)), threading.Thread(target=guarded(deleter))]
        readers = [threading.Thread(target=guarded(lambda s=s: searcher(s))) for s in range(3)]
        for t in writers + readers:
            t.start()
        for t in writers:
            t.join(60)
        writing_done.set()
        for t in readers:
            t.join(60)
        assert not any(t.is_alive() for t in writers + readers), "a thread hung"
        assert errors == [], errors
        assert searches[0] > 0

        # strictly increasing: writes that land while a checkpoint waits for the mutex do not cause a second save
        assert len(checkpoints) >= 3 and all(a < b for a, b in itertools.pairwise(checkpoints))
        assert len(seqs) == len(set(seqs)) and collection.seq == max(seqs)  # one seq per batch, none lost
        # The checkpointer may still be finishing a save woken by the last writes (it renames the new file in and
        # removes the old one outside the write mutex): read the manifest once it has settled.
        deadline = time.monotonic() + 10
        while True:
            found = read_checkpoint(collection.folder)
            settled = found is not None and found[0].exists() and found[1]["seq"] == checkpoints[-1]
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert found is not None
        graph_file, manifest = found
        assert graph_file.exists() and manifest["seq"] == checkpoints[-1] > 0
        assert collection.graph.failures == {}

        assert sorted(acked) == list(range(n))
        assert deleted == set(range(0, n, 7))
        live = [i for i in range(n) if i not in deleted]
        expect_all_readable(collection, data, live, deleted)
        seq = collection.seq
    finally:
        registry.close()

    registry = open_registry(settings)
    try:
        collection = registry.get("c")
        assert collection.seq == seq
        expect_all_readable(collection, data, live, deleted)
        assert collection.graph.failures == {}
    finally:
        registry.close()


@pytest.fixture
def idle_collection(tmp_path: Path) -> Iterator[Collection]:
    """A collection of 4000 points whose graph is up, and no checkpoint pending (checkpoints only when asked)."""
    settings = Settings(data_dir=tmp_path / "data", checkpoint_every=4000, index_threads=1, recall_sample_every=0)
    registry = open_registry(settings)
    try:
        collection = registry.create(CollectionConfig(name="c", dim=DIM, metric="l2"))
        assert collection.graph.wait(WAIT)  # empty: ready at once, and no checkpoint follows
        yield collection
    finally:
        registry.close()


def test_a_slow_checkpoint_does_not_stall_searches(
    idle_collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hnswlib's save of the graph holds writers back, never readers, even while a writer is queued behind it.

    Before the restructure the checkpoint held the read lock: a queued writer then made every new
    search wait (writer preference) until the checkpoint finished.
    """
    collection = idle_collection
    saving, release = threading.Event(), threading.Event()
    finished: dict[str, float] = {}
    real_save = HnswIndex.save

    def slow_save(index: HnswIndex, path: Path) -> None:
        saving.set()
        release.wait(1.5)  # a large graph: the save takes 1.5 s unless the test lets it go sooner
        real_save(index, path)
        finished["save"] = time.perf_counter()

    monkeypatch.setattr(HnswIndex, "save", slow_save)
    data = clustered(4100, DIM, seed=3)
    collection.upsert(list(range(4000)), data[:4000], [None] * 4000)  # 4000 changes: the checkpointer wakes
    assert saving.wait(WAIT), "the checkpointer did not start"

    def queued_upsert() -> None:
        collection.upsert(list(range(4000, 4100)), data[4000:], [None] * 100)
        finished["upsert"] = time.perf_counter()

    writer = threading.Thread(target=queued_upsert)
    writer.start()
    durations: list[float] = []
    window_end = time.perf_counter() + 0.6  # search while the writer waits behind the save
    while time.perf_counter() < window_end:
        target = len(durations) % 4000
        started = time.perf_counter()
        (result,) = search(collection, [Query(vector=data[target], k=10)])
        durations.append(time.perf_counter() - started)
        assert result.plan == "hnsw" and result.hits[0].id == target
    assert max(durations) < 0.2, f"a search waited {max(durations):.3f} s behind the checkpoint"
    assert len(durations) >= 10
    assert "upsert" not in finished, "the upsert did not wait for the graph's save"
    assert writer.is_alive()
    release.set()
    writer.join(WAIT)
    assert not writer.is_alive()
    assert finished["save"] < finished["upsert"]
    assert collection.count == 4100 and collection.graph.failures == {}
    assert wait_until(lambda: read_checkpoint(collection.folder) is not None)
    found = read_checkpoint(collection.folder)
    assert found is not None and found[1]["count"] == 4000  # the graph as of the checkpoint's seq


def test_writers_do_not_wait_for_the_checkpoint_files(
    idle_collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the graph's save holds writers back: the fsync, checksum and manifest run while they write.

    Holding the write mutex through the whole checkpoint cost bulk ingest about 10 % (100k GloVe in batches
    of 1,000: 9,203 vs 10,319 vectors/s with the checkpoint off the mutex).
    """
    collection = idle_collection
    writing, release = threading.Event(), threading.Event()
    real_write = graph_module.write_checkpoint

    def slow_write(folder: Path, seq: int, save: Any, info: dict[str, Any], table: Any = None) -> None:
        writing.set()
        release.wait(WAIT)  # the files of a large graph: slow until the test lets them go
        real_write(folder, seq, save, info, table)

    monkeypatch.setattr(graph_module, "write_checkpoint", slow_write)
    data = clustered(4100, DIM, seed=4)
    collection.upsert(list(range(4000)), data[:4000], [None] * 4000)  # the checkpointer wakes
    assert writing.wait(WAIT), "the checkpointer did not start"
    collection.upsert(list(range(4000, 4100)), data[4000:], [None] * 100)  # returns while the files are written
    assert read_checkpoint(collection.folder) is None
    release.set()
    assert wait_until(lambda: read_checkpoint(collection.folder) is not None)
    found = read_checkpoint(collection.folder)
    assert found is not None and found[1]["count"] == 4000 and found[1]["seq"] == 1
    assert collection.graph.failures == {}
