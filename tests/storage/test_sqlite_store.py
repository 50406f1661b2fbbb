"""PointStore: batches are atomic and numbered, points, sources, events and tombstones round trip."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.storage.sqlite_store import PointStore, StoredPoint


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PointStore]:
    s = PointStore(tmp_path / "points.db", durable=False)
    yield s
    s.close()


def vec(*values: float) -> bytes:
    return np.array(values, dtype="<f4").tobytes()


def test_batches_get_increasing_sequence_numbers_that_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "points.db"
    store = PointStore(path)
    assert store.seq == 0
    assert store.write_batch([('"a"', 0, vec(1, 2), None)], []) == 1
    assert store.write_batch([('"b"', 1, vec(3, 4), '{"x":1}')], []) == 2
    assert store.write_batch([], [('"a"', 0)]) == 3
    assert store.seq == 3
    store.close()

    store = PointStore(path)
    try:
        assert store.seq == store.get_meta("seq") == 3
        assert store.write_batch([('"c"', 2, vec(5, 6), None)], []) == 4
    finally:
        store.close()


def stored(store: PointStore) -> list[StoredPoint]:
    return [point for chunk in store.points() for point in chunk]


def test_points_round_trip_in_slot_order_with_their_batch(store: PointStore) -> None:
    store.write_batch([('"z"', 2, vec(1, 0), '{"n":2}'), ("5", 0, vec(0, 1), None)], [])
    store.write_batch([('"5"', 1, vec(2, 2), '{"s":"five"}')], [])  # the string "5" is not the integer 5
    store.write_batch([('"z"', 2, vec(9, 9), None)], [])  # replaced: new vector, payload gone, new seq
    assert [point for chunk in store.points(chunk=2) for point in chunk] == [
        StoredPoint("5", 0, vec(0, 1), None, 1),
        StoredPoint('"5"', 1, vec(2, 2), b'{"s":"five"}', 2),  # payloads read back as UTF-8 bytes
        StoredPoint('"z"', 2, vec(9, 9), None, 3),
    ]


def test_a_failing_batch_leaves_nothing_behind(store: PointStore) -> None:
    store.write_batch([('"a"', 0, vec(1, 1), None), ('"b"', 1, vec(2, 2), None)], [], [('"a"', "text", b"x"), None])
    before = stored(store)
    # the delete and the first upsert are fine, the second upsert breaks a NOT NULL column: none of it may stay
    with pytest.raises(sqlite3.IntegrityError):
        store.write_batch(
            [('"c"', 2, vec(3, 3), None), ('"d"', 3, None, None)],  # type: ignore[list-item]
            [('"a"', 0)],
            [('"c"', "text", b"c"), None],
        )
    assert store.seq == 1 and store.get_meta("seq") == 1
    assert stored(store) == before
    assert store.tombstones_after(0) == []
    assert store.sources(['"a"', '"c"']) == {'"a"': ("text", b"x")}
    assert store.write_batch([('"c"', 2, vec(3, 3), None)], []) == 2  # the store still works, the seq was not used up


def test_a_batch_with_a_bad_source_is_undone_too(store: PointStore) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.write_batch([('"a"', 0, vec(1, 1), None)], [], [('"a"', None, b"x")])  # type: ignore[list-item]
    assert [point for chunk in store.points(chunk=2) for point in chunk] == [] and store.seq == 0


def test_sources_are_replaced_kept_or_deleted_with_their_point(store: PointStore) -> None:
    store.write_batch(
        [('"t"', 0, vec(1, 0), None), ('"i"', 1, vec(0, 1), None), ('"v"', 2, vec(1, 1), None)],
        [],
        [('"t"', "text", "héllo".encode()), ('"i"', "image", b"\x89PNG\x00\xff"), None],
    )
    assert store.sources(['"t"', '"i"', '"v"', '"absent"']) == {
        '"t"': ("text", "héllo".encode()),
        '"i"': ("image", b"\x89PNG\x00\xff"),
    }
    store.write_batch([('"t"', 0, vec(2, 0), None)], [], [('"t"', "sequence", b"ACGT")])  # replaced
    store.write_batch([('"i"', 1, vec(0, 2), None)], [])  # no sources given: the table is not touched
    store.write_batch([('"v"', 2, vec(2, 2), None)], [], [None])  # sent as a vector: loses any source
    assert store.sources(['"t"', '"i"']) == {'"t"': ("sequence", b"ACGT"), '"i"': ("image", b"\x89PNG\x00\xff")}
    store.write_batch([], [('"t"', 0)])
    assert store.sources(['"t"', '"i"']) == {'"i"': ("image", b"\x89PNG\x00\xff")}


def test_sources_are_read_past_sqlites_parameter_limit(store: PointStore) -> None:
    n = 1203  # more than two chunks of 500 bound parameters
    keys = [f'"p{i}"' for i in range(n)]
    upserts = [(k, i, vec(i, 1), None) for i, k in enumerate(keys)]
    store.write_batch(upserts, [], [(k, "text", str(i).encode()) for i, k in enumerate(keys)])
    found = store.sources([*keys, '"nope"'])
    assert len(found) == n
    assert found['"p0"'] == ("text", b"0") and found[f'"p{n - 1}"'] == ("text", str(n - 1).encode())


def test_events_report_duplicates_and_come_back_oldest_first_in_batches(store: PointStore) -> None:
    rows = [
        ("u1", '"a"', "view", 1.0, 30.0),
        ("u1", '"b"', "click", 1.0, 10.0),
        ("u1", '"a"', "view", 1.0, 30.0),  # the same event twice in one call
        ("u2", '"a"', "rating", 4.5, 20.0),
    ]
    assert store.add_events(rows) == [True, True, False, True]
    assert store.add_events([("u2", '"a"', "rating", 4.5, 20.0), ("u2", '"a"', "rating", 3.0, 20.0)]) == [False, True]
    batches = list(store.events(batch=2))
    assert [len(b) for b in batches] == [2, 2]
    assert [row for b in batches for row in b] == [
        ("u1", '"b"', "click", 1.0, 10.0),
        ("u2", '"a"', "rating", 4.5, 20.0),
        ("u2", '"a"', "rating", 3.0, 20.0),
        ("u1", '"a"', "view", 1.0, 30.0),
    ]


def test_a_failing_event_batch_stores_none_of_it(store: PointStore) -> None:
    store.add_events([("u0", '"a"', "view", 1.0, 0.5)])
    with pytest.raises(sqlite3.ProgrammingError):  # the second row is one value short
        store.add_events([("u1", '"a"', "view", 1.0, 1.0), ("u1", '"a"', "view", 1.0)])  # type: ignore[list-item]
    assert list(store.events()) == [[("u0", '"a"', "view", 1.0, 0.5)]]
    assert store.add_events([("u1", '"a"', "view", 1.0, 1.0)]) == [True]  # it was not kept: new now


def test_tombstones_remember_deletes_until_a_checkpoint_prunes_them(store: PointStore) -> None:
    store.write_batch([(f'"{i}"', i, vec(i, 0), None) for i in range(4)], [])  # seq 1
    store.write_batch([], [('"0"', 0), ('"1"', 1)])  # seq 2
    store.write_batch([('"4"', 0, vec(4, 0), None)], [])  # seq 3 reuses slot 0
    store.write_batch([], [('"3"', 3)])  # seq 4
    assert sorted(store.tombstones_after(0)) == [0, 1, 3]
    assert sorted(store.tombstones_after(2)) == [3]
    assert store.tombstones_after(4) == []
    store.prune_tombstones(2)
    assert sorted(store.tombstones_after(0)) == [3]
    store.prune_tombstones(4)
    assert store.tombstones_after(0) == []
    assert [p.id_json for p in stored(store)] == ['"4"', '"2"']


def test_meta_round_trips_json(store: PointStore) -> None:
    assert store.get_meta("config") is None
    config = {"name": "c", "dim": 3, "payload_indexes": {"k": "keyword"}, "embedder": None}
    store.set_meta("config", config)
    assert store.get_meta("config") == config


def test_backup_is_one_self_contained_file_with_every_point(store: PointStore, tmp_path: Path) -> None:
    store.write_batch([('"a"', 0, vec(1, 2), '{"x":1}')], [])
    store.add_events([("u", '"a"', "view", 1.0, 1.0)])
    dest = tmp_path / "copy.db"
    store.backup(dest)
    assert not (tmp_path / "copy.db-wal").exists()
    copy = PointStore(dest)
    try:
        assert stored(copy) == stored(store) and copy.seq == 1
        assert list(copy.events()) == [[("u", '"a"', "view", 1.0, 1.0)]]
    finally:
        copy.close()
