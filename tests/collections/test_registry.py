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
