"""Damaged files never crash the server or make it allocate by a crafted size: what is derived is rebuilt,
what cannot be read is reported, and the other collections keep serving."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import struct
from pathlib import Path

import numpy as np
import pytest

from app.collections.layout import DB_FILE, RANKER_FILE
from app.collections.models import CollectionConfig
from app.core.config import Settings
from app.main import open_registry
from tests.collections.test_graph import WAIT
from tests.conftest import clustered

DIM, N = 8, 600


def _make(settings: Settings, *names: str) -> None:
    registry = open_registry(settings)
    try:
        for name in names:
            collection = registry.create(CollectionConfig(name=name, dim=DIM, metric="l2"))
            collection.upsert(list(range(N)), clustered(N, DIM, seed=1), [{"n": i} for i in range(N)])
            assert collection.graph.wait(WAIT)
    finally:
        registry.close()  # a graceful close: each leaves a checkpoint


def _rewrite_graph_header(folder: Path, field: int, value: int) -> None:
    """Change one size_t of the graph file's header and fix the manifest's checksum, as an attacker would."""
    manifest_path = folder / "checkpoint.json"
    manifest = json.loads(manifest_path.read_bytes())
    graph = folder / manifest["file"]
    data = bytearray(graph.read_bytes())
    struct.pack_into("<Q", data, 8 * field, value)
    graph.write_bytes(bytes(data))
    manifest["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    manifest_path.write_text(json.dumps(manifest))


def _serves_everything(settings: Settings, name: str) -> None:
    registry = open_registry(settings)
    try:
        collection = registry.get(name)
        assert collection.graph.wait(WAIT) and collection.graph.state == "ready"
        assert collection.count == N
        with collection.reading() as view:
            assert view.graph is not None and view.graph.live_count == N
    finally:
        registry.close()


@pytest.mark.parametrize(
    ("field", "value"),
    [(1, 2**40), (1, 2**28), (1, 2**64 - 1), (2, 2**40), (3, 7), (9, 1000)],  # max_elements, count, element size, M
)
def test_a_crafted_graph_header_with_a_valid_checksum_is_rebuilt_not_trusted(
    settings: Settings, field: int, value: int, caplog: pytest.LogCaptureFixture
) -> None:
    _make(settings, "c")
    _rewrite_graph_header(settings.data_dir / "c", field, value)
    _serves_everything(settings, "c")  # a giant allocation would have failed or taken the test down
    assert "checkpoint unusable" in caplog.text and "rebuilding" in caplog.text


def test_a_garbage_ranker_file_is_ignored(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    _make(settings, "c")
    for garbage in (b"\x00\xff" * 100, b'{"training": {"model": {"coef": "x"}}}', b"[]"):
        (settings.data_dir / "c" / RANKER_FILE).write_bytes(garbage)
        _serves_everything(settings, "c")
    assert "ignoring an unreadable ranker" in caplog.text


def test_a_truncated_wal_keeps_whole_batches_and_the_rest_of_the_database(settings: Settings) -> None:
    registry = open_registry(settings)
    copy = settings.data_dir.parent / "copy"
    try:
        collection = registry.create(CollectionConfig(name="c", dim=DIM, metric="l2"))
        data = clustered(10 * 50, DIM, seed=2)
        for b in range(10):
            ids = list(range(b * 50, (b + 1) * 50))
            collection.upsert(ids, data[b * 50 : (b + 1) * 50], [{"batch": b}] * 50)
        # a copy while the server runs: the database and its WAL, as a power cut would leave them
        (copy / "c").mkdir(parents=True)
        for suffix in ("", "-wal"):
            shutil.copyfile(settings.data_dir / "c" / (DB_FILE + suffix), copy / "c" / (DB_FILE + suffix))
    finally:
        registry.close()
    wal = copy / "c" / (DB_FILE + "-wal")
    assert wal.stat().st_size > 0
    with open(wal, "r+b") as f:
        f.truncate(wal.stat().st_size * 2 // 3)  # cuts a frame in half
    reopened = open_registry(Settings(data_dir=copy, index_threads=1))
    try:
        collection = reopened.get("c")
        with collection.reading() as view:
            batches = [json.loads(p)["batch"] for p in view.payloads(view.live_slots())]
        counts = np.bincount(batches)
        assert set(counts.tolist()) <= {50} and 0 < collection.count < 500  # a prefix of whole batches
    finally:
        reopened.close()


def test_a_damaged_database_fails_its_collection_only(settings: Settings) -> None:
    _make(settings, "c", "d")
    db = settings.data_dir / "c" / DB_FILE
    data = bytearray(db.read_bytes())
    data[100 : len(data) - 100] = bytes(len(data) - 200)  # the header survives, the pages are gone
    db.write_bytes(bytes(data))
    registry = open_registry(settings)
    try:
        assert "c" in registry.failed and "d" in registry.names()
        assert registry.readiness()["c"] == "failed"
        assert registry.get("d").count == N
    finally:
        registry.close()
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(db).execute("SELECT count(*) FROM points").fetchone()
