"""MaskCache: the slot masks of recent filters (and their slots), kept until the points or the indexes change."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np


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
        self._masks: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._slots: dict[int, np.ndarray] = {}  # id of a kept mask → its slots (the mask is kept, so is its id)
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], np.ndarray]) -> np.ndarray:
        """The mask kept under `key`, or the one `build` makes (kept if it fits the budget)."""
        with self._lock:
            found = self._masks.get(key)
            if found is not None:
                self._masks.move_to_end(key)
                return found
        mask = build()
        mask.flags.writeable = False
        with self._lock:
            if key not in self._masks and self._fits(mask.nbytes):
                self._masks[key] = mask
        return mask

    def slots(self, mask: np.ndarray) -> np.ndarray:
        """`np.flatnonzero(mask)`, kept beside the mask when the mask is one of ours."""
        with self._lock:
            found = self._slots.get(id(mask))
        if found is not None:
            return found
        slots = np.flatnonzero(mask)
        slots.flags.writeable = False
        with self._lock:
            kept = any(m is mask for m in self._masks.values())
            if kept and id(mask) not in self._slots and self._fits(slots.nbytes, keep=mask):
                self._slots[id(mask)] = slots
        return slots

    def clear(self) -> None:
        with self._lock:
            self._masks.clear()
            self._slots.clear()
            self._bytes = 0

    def _fits(self, nbytes: int, keep: np.ndarray | None = None) -> bool:
        """Room for `nbytes` more, made by dropping the least recently used masks other than `keep`; False (and
        nothing dropped) when it cannot fit."""
        others = sum(m.nbytes + self._slots[id(m)].nbytes if id(m) in self._slots else m.nbytes
                     for m in self._masks.values() if m is not keep)  # fmt: skip
        if self._bytes - others + nbytes > self.budget:
            return False
        self._bytes += nbytes
        for key in [k for k, m in self._masks.items() if m is not keep]:  # oldest first
            if self._bytes <= self.budget:
                break
            old = self._masks.pop(key)
            dropped = self._slots.pop(id(old), None)
            self._bytes -= old.nbytes + (0 if dropped is None else dropped.nbytes)
        return True
