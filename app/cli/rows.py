"""Reading rows to import: JSON Lines, CSV, Parquet and .npy files, each row with its line number."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("jsonl", "csv", "parquet", "npy")


class RowError(ValueError):
    """A row that cannot become a point; the importer reports it with its line number and goes on."""


@dataclass(frozen=True)
class Row:
    line: int  # 1-based: the line in a text file (the CSV header is line 1), the row number otherwise
    record: dict[str, Any]


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    fmt = {"jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl", "csv": "csv", "parquet": "parquet", "npy": "npy"}.get(
        suffix
    )
    if fmt is None:
        raise ValueError(f"cannot tell the format of {path.name}: use --format {'|'.join(FORMATS)}")
    return fmt


def count_rows(path: Path, fmt: str) -> int:
    """How many rows the file holds, for the progress bar (a quick pass over text files)."""
    if fmt == "npy":
        import numpy as np

        return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
    if fmt == "parquet":
        return int(_parquet(path).metadata.num_rows)
    with path.open("rb") as f:
        lines = sum(1 for line in f if line.strip())
    return lines - 1 if fmt == "csv" else lines


def read_rows(path: Path, fmt: str, skip: int = 0) -> Iterator[Row | RowError]:
    """Rows after the first `skip`; a row that cannot be parsed comes as a RowError naming its line."""
    rows = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet_rows, "npy": _npy}[fmt](path)
    for n, row in enumerate(rows):
        if n >= skip:
            yield row


def _jsonl(path: Path) -> Iterator[Row | RowError]:
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                yield RowError(f"line {line_no}: not JSON ({err.msg})")
                continue
            yield Row(line_no, record) if isinstance(record, dict) else RowError(f"line {line_no}: not a JSON object")


def _csv(path: Path) -> Iterator[Row | RowError]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        for record in reader:
            yield Row(reader.line_num, {k: v for k, v in record.items() if k is not None})


def _parquet(path: Path) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("reading Parquet needs pyarrow: pip install pyarrow") from None
    return pq.ParquetFile(path)


def _parquet_rows(path: Path) -> Iterator[Row | RowError]:
    line = 0
    for batch in _parquet(path).iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            line += 1
            yield Row(line, record)


def _npy(path: Path) -> Iterator[Row | RowError]:
    import numpy as np

    matrix = np.load(path, mmap_mode="r", allow_pickle=False)  # never unpickle a file someone handed us
    if matrix.ndim != 2:
        raise ValueError(f"{path.name}: expected a 2-d array of vectors, got shape {matrix.shape}")
    for n in range(matrix.shape[0]):
        yield Row(n + 1, {"vector": np.asarray(matrix[n], dtype=np.float32)})
