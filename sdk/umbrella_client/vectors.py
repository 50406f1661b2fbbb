"""Vectors on the wire: base64 of little-endian float32 out, numpy arrays (or lists) in; numpy stays optional."""

from __future__ import annotations

import array
import base64
import importlib
import sys
from collections.abc import Iterable, Sequence
from typing import Any

Vector = Sequence[float] | Any  # a list of numbers or a 1-D numpy array
"""One vector: a sequence of numbers, or a 1-D numpy array."""


def _numpy_if_imported() -> Any:
    """numpy, only when the caller already imported it (an array can only come from there)."""
    return sys.modules.get("numpy")


def numpy_or_none() -> Any:
    """numpy when it is installed, else None: vectors then come back as lists."""
    try:
        return importlib.import_module("numpy")
    except ImportError:
        return None


def is_array(value: Any) -> bool:
    np = _numpy_if_imported()
    return np is not None and isinstance(value, np.ndarray)


def _float32_bytes(values: Iterable[float]) -> bytes:
    packed = array.array("f", values)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def encode_vector(vector: Any) -> str:
    """One vector as base64 float32 (what the API accepts wherever it takes a vector)."""
    if is_array(vector):
        if vector.ndim != 1:
            raise ValueError(f"a vector must be 1-D, got an array of shape {vector.shape}")
        return base64.b64encode(vector.astype("<f4", copy=False).tobytes()).decode()
    return base64.b64encode(_float32_bytes(vector)).decode()


def encode_matrix(rows: Any) -> tuple[str, int]:
    """Rows of equal length as one base64 float32 block, and how many rows there were."""
    if is_array(rows):
        if rows.ndim != 2:
            raise ValueError(f"vectors must be a 2-D array (n × dim), got shape {rows.shape}")
        np = _numpy_if_imported()
        return base64.b64encode(np.ascontiguousarray(rows, dtype="<f4").tobytes()).decode(), rows.shape[0]
    chunks, dim = [], None
    for row in rows:
        chunk = row.astype("<f4", copy=False).tobytes() if is_array(row) else _float32_bytes(row)
        if dim is None:
            dim = len(chunk)
        elif len(chunk) != dim:
            raise ValueError(f"vectors differ in length: {dim // 4} and {len(chunk) // 4}")
        chunks.append(chunk)
    return base64.b64encode(b"".join(chunks)).decode(), len(chunks)


def vector_list(vector: Any) -> list[float]:
    """A vector as a plain list, for the fields that take numbers only (recommendation examples)."""
    return [float(x) for x in (vector.tolist() if is_array(vector) else vector)]


def decode_vector(values: list[float] | None) -> Any:
    """A vector from a response: a float32 numpy array when numpy is installed, else the list."""
    if values is None:
        return None
    np = numpy_or_none()
    return np.asarray(values, dtype=np.float32) if np is not None else values
