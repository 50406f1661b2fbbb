"""Turning an imported row into a point: which columns are the id, the text/image/vector and the payload."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.cli.rows import Row, RowError

_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


@dataclass(frozen=True)
class Columns:
    id: str | None = "id"  # None: the row's line number is its id
    text: str = "text"
    image: str = "image"  # a path to an image file, relative to the imported file's folder, or a data: URI
    sequence: str = "sequence"
    vector: str = "vector"
    payload: tuple[str, ...] | None = None  # None: every other column
    base_dir: Path = Path(".")
    from_csv: bool = False  # CSV cells are all strings: numbers are read back as numbers
    dim: int | None = None  # the collection's: a vector of another length is refused here, with its line

    def to_point(self, row: Row) -> dict[str, Any]:
        record = row.record
        point: dict[str, Any] = {"id": self._id(row)}
        inputs = (self.vector, self.text, self.image, self.sequence)
        sources = [name for name in inputs if _present(record.get(name))]
        if len(sources) != 1:
            raise RowError(f"line {row.line}: needs exactly one of the columns {', '.join(map(repr, inputs))}")
        source = sources[0]
        if source == self.vector:
            point["vector"] = _vector(record[source], row.line)
            if self.dim is not None and len(point["vector"]) != self.dim:
                raise RowError(f"line {row.line}: {len(point['vector'])} numbers, the collection holds {self.dim}")
        elif source == self.text:
            point["text"] = str(record[source])
        elif source == self.sequence:
            point["sequence"] = str(record[source])
        else:
            point["image"] = self._image(record[source], row.line)
        used = {self.id, *inputs}
        names = self.payload if self.payload is not None else [k for k in record if k not in used]
        payload = {k: self._cell(record[k]) for k in names if k in record and _present(record[k])}
        if payload:
            point["payload"] = payload
        return point

    def _id(self, row: Row) -> int | str:
        if self.id is None:
            return row.line - 1 if not self.from_csv else row.line - 2  # 0-based row numbers
        value = row.record.get(self.id)
        if not _present(value):
            raise RowError(f"line {row.line}: no {self.id!r}")
        if isinstance(value, str) and self.from_csv and _INT.fullmatch(value) and not value.startswith("-"):
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise RowError(f"line {row.line}: the id must be an unsigned integer or a string, got {value!r}")
        return value

    def _image(self, value: Any, line: int) -> bytes:
        if isinstance(value, str) and value.startswith("data:"):  # what `umbrella export` writes
            try:
                return base64.b64decode(value.partition(",")[2], validate=True)
            except binascii.Error:
                raise RowError(f"line {line}: the image's data: URI is not base64") from None
        path = Path(str(value))
        path = path if path.is_absolute() else self.base_dir / path
        try:
            return path.read_bytes()
        except OSError as err:
            raise RowError(f"line {line}: cannot read image {path}: {err.strerror}") from None

    def _cell(self, value: Any) -> Any:
        if self.from_csv and isinstance(value, str):
            if _INT.fullmatch(value):
                return int(value)
            if _FLOAT.fullmatch(value):
                return float(value)
        return value


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value)


def _vector(value: Any, line: int) -> list[float]:
    """A list (JSON/Parquet), a numpy row (.npy), or text: a JSON list or numbers split by spaces/commas."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else [float(x) for x in re.split(r"[\s,]+", text) if x]
        except ValueError:
            raise RowError(f"line {line}: the vector is not a list of numbers") from None
    try:
        numbers = [float(x) for x in value]
    except (TypeError, ValueError):
        raise RowError(f"line {line}: the vector is not a list of numbers") from None
    if not numbers:
        raise RowError(f"line {line}: the vector is empty")
    if not all(math.isfinite(x) for x in numbers):
        raise RowError(f"line {line}: the vector contains NaN or infinity")
    return numbers
