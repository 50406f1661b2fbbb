"""Array files: named numpy arrays and a JSON header in one file, written once and read back whole, hash-checked."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Collection
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson

MAGIC = b"UMBRELLA-ARRAYS\x001"
_LENGTH = struct.Struct("<Q")
ALIGN = 64  # each array starts at a multiple of this in the file, so a mapped one is aligned for SIMD loads


class CorruptArrays(Exception):
    """The file is not an array file, is cut short, or does not match its hash."""


def write_arrays(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """Write the arrays (C order) after the header, which also records each one's dtype and shape; returns the
    file's sha256, for the caller to keep where it names the file. The caller fsyncs."""
    layout = {name: {"dtype": a.dtype.str, "shape": list(a.shape)} for name, a in arrays.items()}
    head = orjson.dumps({"header": header, "arrays": layout})
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for part in (MAGIC, _LENGTH.pack(len(head)), head):
            f.write(part)
            digest.update(part)
        for array in arrays.values():
            for data in (bytes(-f.tell() % ALIGN), _bytes(np.ascontiguousarray(array))):
                f.write(data)
                digest.update(data)
    return digest.hexdigest()


def read_arrays(path: Path, sha256: str, mapped: Collection[str] = ()) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and the arrays, after checking the whole file's hash: each in memory of its own, or for those
    named in `mapped`, mapped from the file copy-on-write (writable; a page is read when touched, and a write
    stays in this process). Replacing or removing the file later does not change what was mapped."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            start = f.read(len(MAGIC) + _LENGTH.size)
            if len(start) != len(MAGIC) + _LENGTH.size or not start.startswith(MAGIC):
                raise CorruptArrays(f"{path.name} is not an array file")
            (length,) = _LENGTH.unpack(start[len(MAGIC) :])
            if length > path.stat().st_size:
                raise CorruptArrays(f"{path.name} is cut short")
            head = f.read(length)
            digest.update(start)
            digest.update(head)
            described = orjson.loads(head)
            specs = {name: (np.dtype(s["dtype"]), tuple(s["shape"])) for name, s in described["arrays"].items()}
            if sum(dtype.itemsize * int(np.prod(shape)) for dtype, shape in specs.values()) > path.stat().st_size:
                raise CorruptArrays(f"{path.name} is cut short")  # checked before a crafted shape is allocated
            arrays = {}
            for name, (dtype, shape) in specs.items():
                digest.update(f.read(-f.tell() % ALIGN))
                if name in mapped:
                    arrays[name] = _mapped(f, path, dtype, shape, digest)
                    continue
                array = np.empty(shape, dtype)
                data = _bytes(array)
                if f.readinto(data) != len(data):
                    raise CorruptArrays(f"{path.name} is cut short")
                digest.update(data)
                arrays[name] = array
            if f.read(1):
                raise CorruptArrays(f"{path.name} has bytes past its last array")
    except (OSError, ValueError, KeyError, TypeError) as err:  # orjson's errors are ValueErrors
        raise CorruptArrays(f"{path.name} is unreadable: {err}") from err
    if digest.hexdigest() != sha256:
        raise CorruptArrays(f"{path.name} does not match its checksum")
    return described["header"], arrays


def _bytes(array: np.ndarray) -> memoryview:
    """A C-contiguous array's memory as bytes (a memoryview cast refuses shapes with a zero in them)."""
    return memoryview(array.reshape(-1).view(np.uint8))


def _mapped(f: BinaryIO, path: Path, dtype: np.dtype, shape: tuple[int, ...], digest: Any) -> np.ndarray:
    """The array at the file's position, mapped; its bytes hashed through a small buffer (so hashing leaves them
    in the page cache, not in this process's memory) and the file left past it."""
    offset, left = f.tell(), dtype.itemsize * int(np.prod(shape))
    while left:
        chunk = f.read(min(left, 1 << 20))
        if not chunk:
            raise CorruptArrays(f"{path.name} is cut short")
        digest.update(chunk)
        left -= len(chunk)
    if not np.prod(shape):  # nothing to map (mmap refuses an empty length)
        return np.empty(shape, dtype)
    return np.memmap(path, dtype, mode="c", offset=offset, shape=shape).view(np.ndarray)
