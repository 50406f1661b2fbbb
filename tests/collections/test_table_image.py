"""Openings from a checkpoint's image of the point table: the writes after it replayed, anything amiss passed over."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.collections.collection import IMAGE, ROWS, Collection
from app.collections.models import CollectionConfig
from app.collections.registry import CollectionRegistry
from app.core.config import Settings
from app.main import open_registry
from app.search.models import Query
from app.search.searcher import search
from app.storage.checkpoint import MANIFEST, read_manifest

DIM = 8
FILTERS = [
    {"must": [{"key": "tag", "match": "a"}]},
    {"must": [{"key": "tag", "any": ["b", "c"]}, {"key": "price", "range": {"lt": 400}}]},
    {"must": [{"is_empty": {"key": "tag"}}]},
    {"must": [{"key": "note", "match": "üü"}]},  # no index: the payloads are scanned
]


def state(collection: Collection) -> dict[str, Any]:
    """What a reader sees: every point with its payload and vector, filters, a facet, an exact search."""
    with collection.reading() as view:
        every = np.flatnonzero(view.mask(None)).tolist()
        vectors = view.vectors(np.asarray(every, np.int64))
        points = sorted(
            (str(pid), payload, vector.tobytes())
            for pid, payload, vector in zip(view.ids(every), view.payloads(every), vectors, strict=True)
        )
        seen = {
            "points": points,
            "filters": [sorted(map(str, view.ids(np.flatnonzero(view.mask(f)).tolist()))) for f in FILTERS],
            "facet": view.facet("tag", view.mask(None), 10),
        }
    (exact,) = search(collection, [Query(vector=np.ones(DIM, np.float32), k=5, exact=True)])
    # The ids only: a matrix mapped from the image sits at another alignment than one read into memory, and BLAS
    # may then sum in another order (the last bit of a score); the vectors themselves are compared bit for bit.
    return seen | {"nearest": [str(h.id) for h in exact.hits]}


def payload(i: int) -> dict[str, Any]:
    tags = [["a"], ["a", "b"], "b", [], None, "c"]
    return {"tag": tags[i % 6], "price": float(i), "note": "ü" * (i % 3)}


def write(collection: Collection, ids: list[Any], seed: int) -> None:
    vectors = np.random.default_rng(seed).normal(size=(len(ids), DIM)).astype(np.float32)
    collection.upsert(ids, vectors, [payload(zlib.crc32(str(i).encode()) % 97) for i in ids])  # not hash(): salted


def crash(registry: CollectionRegistry) -> None:
    """What a kill -9 leaves: committed rows, the last checkpoint, no final save."""
    for name in registry.names():
        registry.get(name).close(checkpoint=False)
    registry._lock.release()


def table_file(folder: Path) -> Path:
    manifest = read_manifest(folder)
    assert manifest is not None and "table" in manifest
    return folder / manifest["table"]


@pytest.fixture
def stored(settings: Settings) -> CollectionRegistry:
    """A closed collection of 300 points with holes (its last close wrote the checkpoint and the image)."""
    registry = open_registry(settings)
    config = CollectionConfig(name="o", dim=DIM, payload_indexes={"tag": "keyword", "price": "float"})
    collection = registry.create(config)
    write(collection, [*range(200), *(f"p{i}" for i in range(100))], seed=1)
    collection.delete([*range(10, 40), "p3", 199])
    assert collection.graph.wait(30)  # a close checkpoints a graph that is up, not one still building
    registry.close()
    return registry


def test_an_opening_takes_the_image_and_replays_the_writes_made_after_it(
    settings: Settings, stored: CollectionRegistry
) -> None:
    registry = open_registry(settings)
    collection = registry.get("o")
    assert collection.loaded_from == IMAGE
    assert collection.count == 300 - 32
    # After the checkpoint: replaced points, deletes, new points in freed slots and past the end, an id that
    # was deleted coming back, payloads that change their indexed values (lists of keywords among them).
    write(collection, [0, 1, "p0", *(f"n{i}" for i in range(50)), 12], seed=2)
    collection.delete([2, "p1", "n7", 0])
    write(collection, [0, "p3"], seed=3)
    collection.delete_by_filter({"must": [{"key": "price", "range": {"gte": 90}}]})
    assert collection.graph.wait(30)
    running = state(collection)
    crash(registry)

    registry = open_registry(settings.model_copy(update={"exact_max_floats": 0}))  # every search in the graph
    try:
        reopened = registry.get("o")
        assert reopened.loaded_from == IMAGE
        assert state(reopened) == running
        assert reopened.graph.wait(30) and reopened.graph.state == "ready"
        with reopened.reading() as view:  # a point written after the image and not deleted since
            replayed = next(pid for pid in (f"n{i}" for i in range(50)) if pid in view)
        (found,) = search(reopened, [Query(id=replayed, k=3)])  # the graph holds the replayed points too
        assert found.plan == "hnsw" and len(found.hits) == 3
        with reopened.reading() as view:
            freed = set(np.flatnonzero(~view.mask(None)).tolist())
        write(reopened, ["later"], seed=4)  # a freed slot is taken first, as before the restart
        with reopened.reading() as view:
            assert view.slot_of("later") in freed
    finally:
        registry.close()


@pytest.mark.parametrize("damage", ["flip a byte", "cut short", "remove"])
def test_a_damaged_image_is_passed_over_for_the_stored_rows(
    settings: Settings, stored: CollectionRegistry, damage: str
) -> None:
    registry = open_registry(settings)
    running = state(registry.get("o"))
    registry.close()
    image = table_file(settings.data_dir / "o")
    data = bytearray(image.read_bytes())
    if damage == "flip a byte":
        data[len(data) // 2] ^= 1
        image.write_bytes(bytes(data))
    elif damage == "cut short":
        image.write_bytes(bytes(data[: len(data) - 100]))
    else:
        image.unlink()
    registry = open_registry(settings)
    try:
        reopened = registry.get("o")
        assert reopened.loaded_from == ROWS
        assert state(reopened) == running
        assert reopened.graph.wait(30) and reopened.graph.state == "ready"
    finally:
        registry.close()


def test_an_image_past_the_end_of_the_database_is_passed_over(
    settings: Settings, stored: CollectionRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """With relaxed durability a power loss can take the last commits and leave a checkpoint that covers them: the
    table is read from the rows and the graph built from them, not loaded with points the database lacks."""
    registry = open_registry(settings)
    running = state(registry.get("o"))
    registry.close()
    path = settings.data_dir / "o" / MANIFEST
    manifest = json.loads(path.read_bytes())
    path.write_text(json.dumps(manifest | {"seq": manifest["seq"] + 1}))
    registry = open_registry(settings)
    try:
        reopened = registry.get("o")
        assert reopened.loaded_from == ROWS and state(reopened) == running
        assert reopened.graph.wait(30) and reopened.graph.state == "ready"
        assert "checkpoint covers writes the database lacks; rebuilding" in caplog.text
    finally:
        registry.close()


def test_indexes_declared_or_dropped_after_the_image(settings: Settings, stored: CollectionRegistry) -> None:
    registry = open_registry(settings)
    collection = registry.get("o")
    collection.index_field("note", "keyword")  # the image has no column for it: made from the payloads
    collection.drop_field_index("price")  # the image's column for it is left unread
    running = state(collection)
    crash(registry)

    registry = open_registry(settings)
    try:
        reopened = registry.get("o")
        assert reopened.loaded_from == IMAGE
        assert reopened.config.payload_indexes == {"tag": "keyword", "note": "keyword"}
        assert state(reopened) == running
        with reopened.reading() as view:  # "note" is answered by its index, not by a scan
            assert not view.scans(FILTERS[3])
    finally:
        registry.close()


def test_writes_made_while_the_image_is_written_are_replayed_over_it(
    settings: Settings, stored: CollectionRegistry
) -> None:
    """The image's vectors are the live matrix, written while writers go on: a row changed meanwhile may reach the
    file, and the opening must replay the database's row over it."""
    registry = open_registry(settings)
    collection = registry.get("o")
    write(collection, ["x"], seed=5)  # something for the checkpoint to cover
    assert collection.graph.wait(30)  # a checkpoint needs the graph up (it loads in the background)
    with collection._write_mutex:
        staged = collection.graph._stage()  # the image as of now
    assert staged is not None
    write(collection, [0, 1, "x", "fresh"], seed=6)  # into the matrix the image will be written from
    collection.delete([2, "p0"])
    collection.graph._finish(staged)  # the file now holds some vectors newer than its sequence number
    with collection._write_mutex:
        collection.graph._settle(staged)
    running = state(collection)
    crash(registry)

    registry = open_registry(settings)
    try:
        reopened = registry.get("o")
        assert reopened.loaded_from == IMAGE and read_manifest(reopened.folder)["seq"] == staged.seq
        assert state(reopened) == running
    finally:
        registry.close()
