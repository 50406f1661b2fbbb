"""Property: any sequence of upserts, deletes and restarts answers like a plain in-memory model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from app.collections.collection import IMAGE, ROWS, Collection
from app.collections.models import CollectionConfig
from app.core.config import Settings
from app.main import open_registry
from app.search.models import Query
from app.search.searcher import search
from app.storage.checkpoint import read_manifest

DIM = 3
ids = st.one_of(st.integers(0, 12), st.sampled_from(["a", "b", "sku-1", "0"]))
vectors = st.lists(st.integers(-50, 50), min_size=DIM, max_size=DIM).map(lambda v: np.array(v, np.float32) / 10)
payloads = st.one_of(st.none(), st.fixed_dictionaries({"colour": st.sampled_from(["red", "blue"])}))


class DurableCollectionModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp())
        # checkpoint_every=3 makes checkpoints happen between writes, so restarts replay a tail.
        # exact_max_floats=0 sends every unforced search through the graph.
        self.settings = Settings(data_dir=self.root, checkpoint_every=3, exact_max_floats=0, index_threads=1)
        self.registry = open_registry(self.settings)
        created = self.registry.create(
            CollectionConfig(name="c", dim=DIM, metric="l2", payload_indexes={"colour": "keyword"})
        )
        assert created.graph.wait(
            timeout=30
        )  # until then every search is exact, and the check below is about the graph
        self.model: dict[Any, tuple[np.ndarray, Any]] = {}

    @property
    def c(self) -> Collection:
        return self.registry.get("c")

    @rule(batch=st.lists(st.tuples(ids, vectors, payloads), min_size=1, max_size=6))
    def upsert(self, batch: list) -> None:
        self.c.upsert([b[0] for b in batch], np.stack([b[1] for b in batch]), [b[2] for b in batch])
        for pid, vec, payload in batch:
            self.model[pid] = (vec, payload)

    @rule(victims=st.lists(ids, min_size=1, max_size=4))
    def delete(self, victims: list) -> None:
        self.c.delete(victims)
        for pid in victims:
            self.model.pop(pid, None)

    @rule(colour=st.sampled_from(["red", "blue"]))
    def delete_by_filter(self, colour: str) -> None:
        self.c.delete_by_filter({"must": [{"key": "colour", "match": colour}]})
        self.model = {k: v for k, v in self.model.items() if (v[1] or {}).get("colour") != colour}

    @rule(crash=st.booleans())
    def restart(self, crash: bool) -> None:
        if crash:  # what a kill -9 leaves: committed rows, an older checkpoint, no final save
            for name in self.registry.names():
                self.registry.get(name).close(checkpoint=False)
            self.registry._lock.release()
        else:
            self.registry.close()
        had_image = (manifest := read_manifest(self.root / "c")) is not None and "table" in manifest
        self.registry = open_registry(self.settings)
        assert self.c.graph.wait(timeout=30) and self.c.graph.state == "ready"
        # a checkpoint's image of the table, with the writes after it replayed, is what an opening reads
        assert self.c.loaded_from == (IMAGE if had_image else ROWS)

    @invariant()
    def answers_like_the_model(self) -> None:
        c = self.c
        assert c.count == len(self.model) == c.count_matching(None)
        if not self.model:
            return
        keys = list(self.model)
        got = c.get(keys, with_payload=True, with_vector=True)
        for point, key in zip(got, keys, strict=True):
            vec, payload = self.model[key]
            assert point.id == key and type(point.id) is type(key)
            np.testing.assert_allclose(point.vector, vec, atol=1e-6)
            assert (None if point.payload_json is None else __import__("json").loads(point.payload_json)) == payload
        red = sum((p or {}).get("colour") == "red" for _, p in self.model.values())
        assert c.count_matching({"must": [{"key": "colour", "match": "red"}]}) == red
        query = np.array([0.3, -0.2, 0.1], np.float32)
        (exact,) = search(c, [Query(vector=query, k=3, exact=True, with_payload=False)])
        dists = sorted(float(np.linalg.norm(v - query)) for v, _ in self.model.values())[:3]
        np.testing.assert_allclose([h.score for h in exact.hits], dists, atol=1e-5)
        (approx,) = search(c, [Query(vector=query, k=3, ef=64, with_payload=False)])
        assert approx.plan == "hnsw"
        np.testing.assert_allclose([h.score for h in approx.hits], dists, atol=1e-5)

    def teardown(self) -> None:
        self.registry.close()
        shutil.rmtree(self.root, ignore_errors=True)


DurableCollectionModel.TestCase.settings = settings(
    max_examples=60, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestDurableCollection = pytest.mark.slow(DurableCollectionModel.TestCase)  # about 20 s: in `make test`, not test-fast
