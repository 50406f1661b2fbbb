"""`umbrella import` without a server: every format's rows, column mapping, rejected lines, resuming."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.cli.importer import Rejected, import_file, state_path
from app.cli.mapping import Columns
from app.cli.rows import count_rows, detect_format, read_rows


class Recorder:
    """Stands in for the server: keeps what it got, refuses ids it is told to, can fail after n batches."""

    def __init__(self, refuse: set[Any] = frozenset(), fail_after: int | None = None) -> None:
        self.points: dict[Any, dict] = {}
        self.batches = 0
        self.refuse, self.fail_after = refuse, fail_after

    def __call__(self, points: list[dict]) -> None:
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise ConnectionError("the server went away")
        for p in points:
            if p["id"] in self.refuse:
                raise Rejected(p["id"], f"point {p['id']!r}: vector contains NaN")
        self.batches += 1
        self.points.update({p["id"]: p for p in points})


def _jsonl(tmp_path: Path, records: list[Any]) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return path


def test_jsonl_rows_become_points_and_bad_lines_are_reported(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path,
        [
            {"id": "a", "vector": [1, 2], "category": "shoes", "price": 5},
            "{not json",
            {"id": "b", "text": "red bag"},
            {"vector": [1, 2]},
            {"id": "c", "vector": [1, 2], "text": "both"},
            {"id": "d", "vector": [3, 4]},
        ],
    )
    server = Recorder(refuse={"d"})
    report = import_file(path, "jsonl", Columns(), server, collection="c", batch_size=10, progress=False)
    assert set(server.points) == {"a", "b"}
    assert server.points["a"]["vector"] == [1.0, 2.0]
    assert server.points["a"]["payload"] == {"category": "shoes", "price": 5}
    assert server.points["b"] == {"id": "b", "text": "red bag"}
    assert [line for line, _ in report.rejected] == [2, 4, 5, 6]
    assert "NaN" in report.rejected[-1][1] and report.imported == 2 and report.rows == 6
    assert not state_path(path).exists()


def test_csv_numbers_come_back_as_numbers(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text('id,vector,category,price,note\n17,"[0.5, 1]",shoes,59.5,\nsku-2,0.1 0.2,bags,3,x\n')
    server = Recorder()
    import_file(path, "csv", Columns(from_csv=True), server, collection="c", progress=False)
    assert server.points[17]["payload"] == {"category": "shoes", "price": 59.5}
    assert server.points["sku-2"]["payload"] == {"category": "bags", "price": 3, "note": "x"}
    assert server.points["sku-2"]["vector"] == pytest.approx([0.1, 0.2])


def test_npy_and_parquet(tmp_path: Path) -> None:
    matrix = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "v.npy", matrix)
    server = Recorder()
    import_file(tmp_path / "v.npy", "npy", Columns(id=None), server, collection="c", batch_size=3, progress=False)
    assert sorted(server.points) == [0, 1, 2, 3] and server.points[3]["vector"] == [9.0, 10.0, 11.0]
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    table = pa.table({"id": ["x", "y"], "text": ["a shoe", "a bag"], "price": [1.5, 2.5]})
    pq.write_table(table, tmp_path / "t.parquet")
    assert count_rows(tmp_path / "t.parquet", "parquet") == 2
    server = Recorder()
    fmt = detect_format(tmp_path / "t.parquet")
    import_file(tmp_path / "t.parquet", fmt, Columns(), server, collection="c", progress=False)
    assert server.points["y"] == {"id": "y", "text": "a bag", "payload": {"price": 2.5}}


def test_images_are_read_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(b"\x89PNG fake")
    path = _jsonl(tmp_path, [{"id": 1, "image": "img/a.png"}, {"id": 2, "image": "img/missing.png"}])
    server = Recorder()
    report = import_file(path, "jsonl", Columns(base_dir=tmp_path), server, collection="c", progress=False)
    assert server.points[1]["image"] == b"\x89PNG fake"
    assert report.rejected[0][0] == 2 and "cannot read image" in report.rejected[0][1]


def test_an_interrupted_import_resumes_where_it_stopped(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, [{"id": i, "vector": [i, 1]} for i in range(10)])
    first = Recorder(fail_after=2)
    with pytest.raises(ConnectionError):
        import_file(path, "jsonl", Columns(), first, collection="c", batch_size=3, progress=False)
    assert sorted(first.points) == list(range(6)) and state_path(path).exists()
    second = Recorder()
    report = import_file(path, "jsonl", Columns(), second, collection="c", batch_size=3, progress=False)
    assert report.skipped == 6 and sorted(second.points) == [6, 7, 8, 9]
    third = Recorder()  # a finished import leaves no state: the next run is a fresh one
    assert import_file(path, "jsonl", Columns(), third, collection="c", progress=False).skipped == 0
    # progress recorded for one collection is not taken up by an import into another
    with pytest.raises(ConnectionError):
        import_file(path, "jsonl", Columns(), Recorder(fail_after=1), collection="c", batch_size=3, progress=False)
    other = import_file(path, "jsonl", Columns(), Recorder(), collection="d", progress=False)
    assert other.skipped == 0 and other.imported == 10


def test_row_iteration_skips_for_resume(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, [{"id": i, "vector": [i]} for i in range(5)])
    assert [r.line for r in read_rows(path, "jsonl", skip=3)] == [4, 5]
    with pytest.raises(ValueError, match="format"):
        detect_format(tmp_path / "x.txt")
