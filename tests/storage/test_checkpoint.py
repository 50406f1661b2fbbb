"""Checkpoints: round trip, checksums, missing and broken parts, old graph and table files removed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from app.index.hnsw import HnswIndex
from app.storage.checkpoint import (
    MANIFEST,
    CorruptCheckpoint,
    Staged,
    read_checkpoint,
    read_manifest,
    sha256_file,
    table_image,
    write_checkpoint,
)


def writer(content: bytes) -> Callable[[Path], None]:
    """A save callback that writes `content`."""

    def save(path: Path) -> None:
        path.write_bytes(content)

    return save


def test_no_manifest_means_no_checkpoint(tmp_path: Path) -> None:
    assert read_checkpoint(tmp_path) is None
    (tmp_path / "hnsw-3.bin").write_bytes(b"a graph without its manifest")
    assert read_checkpoint(tmp_path) is None


def test_round_trip_names_the_graph_by_its_seq(tmp_path: Path) -> None:
    info = {"dim": 4, "metric": "l2", "m": 16, "count": 2, "deleted": [5]}
    write_checkpoint(tmp_path, 7, writer(b"graph bytes"), info)
    found = read_checkpoint(tmp_path)
    assert found is not None
    path, manifest = found
    assert path == tmp_path / "hnsw-7.bin" and path.read_bytes() == b"graph bytes"
    assert manifest == {"seq": 7, "file": "hnsw-7.bin", "sha256": sha256_file(path), **info}
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "hnsw-7.bin"]  # no temp files left


def test_a_real_graph_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    index = HnswIndex(8, "l2", m=16, ef_construction=100, ef=50, threads=1)
    index.upsert(np.arange(300), vectors)
    index.delete(np.array([3, 4]))
    write_checkpoint(tmp_path, 1, index.save, {"deleted": index.deleted_labels()})
    found = read_checkpoint(tmp_path)
    assert found is not None
    loaded = HnswIndex.load(
        found[0], 8, "l2", deleted=found[1]["deleted"], max_capacity=4096, m=16, ef_construction=100, ef=50
    )
    assert loaded.live_count == 298 and loaded.deleted_labels() == [3, 4]
    slots, _ = loaded.search(vectors[:20], 5)
    assert slots[5:, 0].tolist() == list(range(5, 20))
    assert not {3, 4} & set(slots.ravel().tolist())


def test_a_newer_checkpoint_removes_the_older_graph_files(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, 1, writer(b"one"), {})
    (tmp_path / "hnsw-0.bin.tmp").write_bytes(b"left by a crash mid-save")
    (tmp_path / "points.db").write_bytes(b"not ours to remove")
    write_checkpoint(tmp_path, 2, writer(b"two"), {})
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "hnsw-2.bin", "points.db"]
    found = read_checkpoint(tmp_path)
    assert found is not None and found[1]["seq"] == 2 and found[0].read_bytes() == b"two"


def test_a_checkpoint_at_the_same_seq_replaces_the_graph(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, 4, writer(b"first"), {})
    write_checkpoint(tmp_path, 4, writer(b"second"), {})
    found = read_checkpoint(tmp_path)
    assert found is not None and found[0].read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "hnsw-4.bin"]


def test_a_save_that_fails_leaves_the_previous_checkpoint_usable(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, 1, writer(b"good"), {"count": 1})

    def crash(path: Path) -> None:
        path.write_bytes(b"half a gr")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_checkpoint(tmp_path, 2, crash, {"count": 2})
    found = read_checkpoint(tmp_path)
    assert found is not None
    assert found[1]["seq"] == 1 and found[1]["count"] == 1 and found[0].read_bytes() == b"good"


def test_a_graph_file_that_does_not_match_its_checksum_is_corrupt(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, 3, writer(b"graph bytes"), {})
    (tmp_path / "hnsw-3.bin").write_bytes(b"graph bytez")
    with pytest.raises(CorruptCheckpoint, match="checksum"):
        read_checkpoint(tmp_path)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda folder: (folder / "hnsw-3.bin").unlink(), id="graph-missing"),
        pytest.param(lambda folder: (folder / MANIFEST).write_bytes(b'{"seq": 3, "fi'), id="manifest-truncated"),
        pytest.param(lambda folder: (folder / MANIFEST).write_bytes(b'{"seq": 3}'), id="manifest-without-file"),
        pytest.param(lambda folder: (folder / MANIFEST).write_bytes(b"[1, 2]"), id="manifest-not-an-object"),
        pytest.param(
            lambda folder: (folder / MANIFEST).write_text(json.dumps({"seq": 3, "file": "hnsw-3.bin"})),
            id="manifest-without-checksum",
        ),
    ],
)
def test_a_broken_checkpoint_is_reported_as_corrupt(tmp_path: Path, damage: Callable[[Path], object]) -> None:
    write_checkpoint(tmp_path, 3, writer(b"graph bytes"), {})
    damage(tmp_path)
    with pytest.raises(CorruptCheckpoint):
        read_checkpoint(tmp_path)


def staged_table(folder: Path, content: bytes) -> Staged:
    path = folder / "table.staged"
    path.write_bytes(content)
    return Staged(path, hashlib.sha256(content).hexdigest())


def test_the_table_image_goes_in_with_the_graph_and_leaves_with_it(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, 1, writer(b"graph one"), {}, staged_table(tmp_path, b"table one"))
    manifest = read_manifest(tmp_path)
    assert manifest is not None and table_image(tmp_path, manifest) == (
        tmp_path / "table-1.bin",
        hashlib.sha256(b"table one").hexdigest(),
    )
    (tmp_path / "table-0.bin.staged").write_bytes(b"left by a crash before its checkpoint")

    def crash(path: Path) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):  # a failed checkpoint leaves the previous one whole, and no file of its own
        write_checkpoint(tmp_path, 2, crash, {}, staged_table(tmp_path, b"table two"))
    assert read_manifest(tmp_path) == manifest and (tmp_path / "table-1.bin").read_bytes() == b"table one"
    assert not (tmp_path / "table-2.bin").exists()

    write_checkpoint(tmp_path, 3, writer(b"graph three"), {}, staged_table(tmp_path, b"table three"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "hnsw-3.bin", "table-3.bin"]  # leftovers gone
    write_checkpoint(tmp_path, 4, writer(b"graph four"), {})  # one without an image names none
    manifest = read_manifest(tmp_path)
    assert manifest is not None and table_image(tmp_path, manifest) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "hnsw-4.bin"]
