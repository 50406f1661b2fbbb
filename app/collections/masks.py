"""MaskCache: the slot masks of recent filters (and their slots), kept until the points or the indexes change."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np


@dataclass
class _Kept:
    mask: np.ndarray
    slots: np.ndarray | None = None  # np.flatnonzero(mask), once someone asked for it

    @property
    def nbytes(self) -> int:
        return self.mask.nbytes + (0 if self.slots is None else self.slots.nbytes)


class MaskCache:
    """Least recently used masks, at most `budget` bytes of them and of their slot lists; all read-only.

    A shop asks the same few filters (a category, a brand, a price band) again and again; between two writes
    their masks do not change, and making one and listing its slots can cost more than the search it narrows
    (399k points, 5 % kept: 0.3 ms for the slots alone, an AND of a keyword and a range ~0.4 ms more;
    benchmarks/RESULTS.md, "Filtered search across the selectivity band"). The table clears it at every
    write, under the write lock, so no reader keeps a mask of points that changed. Readers run in parallel,
    hence the lock.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._kept: OrderedDict[Hashable, _Kept] = OrderedDict()  # oldest use first
        self._key_of: dict[int, Hashable] = {}  # id of a kept mask → its key (the mask is kept, so is its id)
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], np.ndarray]) -> np.ndarray:
        """The mask kept under `key`, or the one `build` makes (kept if it fits the budget). A filter's list of
        slots (`PointTable.selection`) is kept the same way, under a key of its own."""
        kept = self.find(key)
        return kept if kept is not None else self.keep(key, build())

    def keep(self, key: Hashable, mask: np.ndarray) -> np.ndarray:
        """Keep `mask` (made read-only) under `key` if it fits the budget; returns it."""
        mask.flags.writeable = False
        with self._lock:
            if key not in self._kept and self._room(mask.nbytes):
                self._kept[key], self._key_of[id(mask)] = _Kept(mask), key
                self._bytes += mask.nbytes
        return mask

    def find(self, key: Hashable) -> np.ndarray | None:
        """The array kept under `key`, if any."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return None
            self._kept.move_to_end(key)
            return kept.mask

    def slots(self, mask: np.ndarray) -> np.ndarray:
        """`np.flatnonzero(mask)`, kept beside the mask when the mask is one of ours."""
        with self._lock:
            kept = self._owner(mask)
            if kept is not None and kept.slots is not None:
                return kept.slots
        slots = np.flatnonzero(mask)
        slots.flags.writeable = False
        with self._lock:
            kept = self._owner(mask)
            if kept is not None and kept.slots is None:
                key = self._key_of[id(mask)]
                self._kept.move_to_end(key)  # so that making room drops the others first
                if self._room(slots.nbytes, keep=kept):
                    kept.slots = slots
                    self._bytes += slots.nbytes
        return slots

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._key_of.clear()
            self._bytes = 0

    def _owner(self, mask: np.ndarray) -> _Kept | None:
        kept = self._kept.get(self._key_of.get(id(mask)))  # type: ignore[arg-type]
        return kept if kept is not None and kept.mask is mask else None

    def _room(self, nbytes: int, keep: _Kept | None = None) -> bool:
        """Room for `nbytes` more, made by dropping the least recently used entries (never `keep`, the newest);
        False, with nothing dropped, when even that would not make enough."""
        if nbytes > self.budget - (0 if keep is None else keep.nbytes):
            return False
        while self._bytes + nbytes > self.budget:
            _, old = self._kept.popitem(last=False)
            del self._key_of[id(old.mask)]
            self._bytes -= old.nbytes
        return True
