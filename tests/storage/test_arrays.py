"""Array files: what is written reads back bit for bit, mapped or not; anything else is CorruptArrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from app.storage.arrays import ALIGN, MAGIC, CorruptArrays, read_arrays, write_arrays

ARRAYS = {
    "ids": np.frombuffer(b'[1,"a",null]', np.uint8),
    "vectors": np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32),
    "empty": np.zeros((0, 50), np.float32),
    "alive": np.array([True, False, True]),
}


@pytest.mark.parametrize("mapped", [(), ("vectors", "empty")])
def test_arrays_read_back_as_written(tmp_path: Path, mapped: tuple[str, ...]) -> None:
    path = tmp_path / "a.bin"
    digest = write_arrays(path, {"size": 10}, ARRAYS)
    header, arrays = read_arrays(path, digest, mapped)
    assert header == {"size": 10} and list(arrays) == list(ARRAYS)
    for name, array in arrays.items():
        assert array.dtype == ARRAYS[name].dtype and array.tobytes() == ARRAYS[name].tobytes()
    if mapped:  # the file keeps each array aligned
        assert arrays["vectors"].ctypes.data % ALIGN == 0
    arrays["vectors"][0] = 7  # writable, and a write to a mapped array stays in this process
    assert read_arrays(path, digest)[1]["vectors"].tobytes() == ARRAYS["vectors"].tobytes()


def test_a_file_that_differs_from_its_hash_or_its_own_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    digest = write_arrays(path, {}, ARRAYS)
    data = path.read_bytes()
    for broken in (data[:-1], data + b"x", data[:20], b"something else", data[:-5] + b"12345"):
        path.write_bytes(broken)
        with pytest.raises(CorruptArrays):
            read_arrays(path, digest, ("vectors",))
    # A header claiming more than the file holds is refused before anything that size is allocated.
    head = orjson.dumps({"header": {}, "arrays": {"v": {"dtype": "<f4", "shape": [10**12, 1000]}}})
    path.write_bytes(MAGIC + len(head).to_bytes(8, "little") + head)
    with pytest.raises(CorruptArrays, match="cut short"):
        read_arrays(path, digest)
