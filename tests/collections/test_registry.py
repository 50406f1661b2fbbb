"""CollectionRegistry: a create that fails leaves nothing behind that a restart would open."""

from __future__ import annotations

import threading

import pytest

from app.collections.collection import Collection
from app.collections.models import CollectionConfig
from app.collections.registry import CollectionRegistry
from app.core.config import Settings
from app.main import open_registry


def test_a_create_that_fails_leaves_no_folder_and_no_threads(settings: Settings) -> None:
    def broken(collection: Collection) -> object:
        raise RuntimeError("this part cannot start")

    before = set(threading.enumerate())
    registry = CollectionRegistry(settings, [broken])
    registry.open()
    with pytest.raises(RuntimeError, match="cannot start"):
        registry.create(CollectionConfig(name="c", dim=4))
    assert registry.names() == [] and not (settings.data_dir / "c").exists()
    registry.close()
    assert {t for t in threading.enumerate() if t.name.endswith("-c")} - before == set()

    registry = open_registry(settings)  # the name is free, and nothing half-made was opened
    try:
        assert registry.names() == [] and registry.failed == {}
        assert registry.create(CollectionConfig(name="c", dim=4)).count == 0
    finally:
        registry.close()


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_vectors_read_back_are_the_stored_bytes_before_and_after_a_restart(settings: Settings, metric: str) -> None:
    import sqlite3

    import numpy as np

    from app.collections.layout import DB_FILE

    vectors = np.random.default_rng(7).normal(size=(500, 24)).astype(np.float32) * 3
    ids = list(range(500))

    def served() -> np.ndarray:
        registry = open_registry(settings)
        try:
            with registry.get("v").reading() as view:
                return view.vectors(np.array([view.slot_of(i) for i in ids]))
        finally:
            registry.close()

    registry = open_registry(settings)
    registry.create(CollectionConfig(name="v", dim=24, metric=metric)).upsert(ids, vectors, [None] * 500)
    with registry.get("v").reading() as view:
        before = view.vectors(np.array([view.slot_of(i) for i in ids]))
    registry.close()
    with sqlite3.connect(settings.data_dir / "v" / DB_FILE) as conn:
        rows = dict(conn.execute("SELECT id, vector FROM points").fetchall())
    stored = np.stack([np.frombuffer(rows[str(i)], "<f4") for i in ids])
    assert before.tobytes() == stored.tobytes()  # bit for bit, not merely close
    assert served().tobytes() == stored.tobytes()  # and the same after a restart rebuilt memory from SQLite


def test_a_reopened_collection_holds_what_the_running_one_held(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening reads the rows in chunks, with slices where slots run on, and freed slots between them."""
    import numpy as np

    from app.storage import sqlite_store

    monkeypatch.setattr(sqlite_store, "POINTS_CHUNK", 100)  # chunks of consecutive slots, and chunks with holes

    rng = np.random.default_rng(3)
    ids: list[int | str] = [*range(300), *(f"p{i}" for i in range(300))]
    tags = [["a"], ["a", "b"], "b", [], None, "c"]
    payloads = [{"tag": tags[i % 6], "price": float(i), "note": "ü" * (i % 3)} for i in range(600)]
    filters = [
        {"must": [{"key": "tag", "match": "a"}]},
        {"must": [{"key": "tag", "any": ["b", "c"]}, {"key": "price", "range": {"lt": 400}}]},
        {"must": [{"is_empty": {"key": "tag"}}]},
        {"must": [{"key": "note", "match": "üü"}]},  # no index: the payloads are scanned
    ]

    def state(collection: Collection) -> dict:
        with collection.reading() as view:
            every = np.flatnonzero(view.mask(None)).tolist()
            return {
                "points": sorted(zip(map(str, view.ids(every)), view.payloads(every), strict=True)),
                "filters": [sorted(map(str, view.ids(np.flatnonzero(view.mask(f)).tolist()))) for f in filters],
                "facet": view.facet("tag", view.mask(None), 10),
            }

    registry = open_registry(settings)
    config = CollectionConfig(name="o", dim=8, payload_indexes={"tag": "keyword", "price": "float"})
    collection = registry.create(config)
    for start in range(0, 600, 100):
        collection.upsert(
            ids[start : start + 100], rng.normal(size=(100, 8)).astype(np.float32), payloads[start : start + 100]
        )
    collection.delete([*range(10, 60), *(f"p{i}" for i in range(100, 130))])  # holes inside the first chunks
    collection.upsert([5, "p7"], rng.normal(size=(2, 8)).astype(np.float32), [{"tag": "c"}, None])  # replaced
    running = state(collection)
    registry.close()

    registry = open_registry(settings)
    try:
        reopened = registry.get("o")
        assert state(reopened) == running and reopened.count == 520
        collection = reopened
        with collection.reading() as view:
            freed = {view.slot_of(5)}  # a live slot, to see that new points take freed ones instead
        collection.upsert(["new"], rng.normal(size=(1, 8)).astype(np.float32), [None])
        with collection.reading() as view:
            assert view.slot_of("new") not in freed and view.slot_of("new") < 600  # a freed slot is reused
    finally:
        registry.close()
