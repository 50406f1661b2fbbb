"""PointTable: ids ↔ slots, payloads, the exact-search matrix and the payload indexes of one collection (no locks)."""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import orjson

from app.collections.masks import MaskCache
from app.collections.models import Point, PointId
from app.index.base import Metric
from app.index.exact import ExactIndex
from app.index.payload import FieldType, PayloadIndex, Rows
from app.storage.sqlite_store import StoredPoint


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Loading makes millions of objects and no reference cycles; each collection the allocations trigger
    walks all of them again: with it paused a 399k-point collection is ready in 1.9 s instead of 3.7 s."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _trim_heap() -> None:
    """Hand the heap's free pages back to the system: a load's chunks of rows are freed, but glibc keeps their
    pages (20 MiB of RSS after a 399k-point load; 2 ms). Looked up among the process's own symbols: finding libc
    by name runs a subprocess (2.6 ms). Other C libraries have no malloc_trim: nothing to do."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)


class PointTable:
    """Slot i holds one point: its id, payload JSON, vector and indexed payload fields.

    Deleted slots are reused by later inserts (so graph nodes are reused too). The owner serialises
    writes and guards reads; nothing here locks.
    """

    def __init__(self, dim: int, metric: Metric, schema: dict[str, FieldType], mask_cache_bytes: int = 0) -> None:
        self.ids: list[PointId | None] = []  # slot → external id
        self.slot_of: dict[PointId, int] = {}
        self.payloads: list[bytes | None] = []
        self.free: list[int] = []  # freed slots, the next one to reuse last
        self.exact = ExactIndex(dim, metric)
        self.payload_index = PayloadIndex(schema)
        self.masks = MaskCache(mask_cache_bytes)  # of filters the payload indexes answer alone

    @property
    def count(self) -> int:
        return len(self.slot_of)

    @property
    def size(self) -> int:
        """Slots in use or freed: every slot number is below this."""
        return self.exact.size

    def load(self, chunks: Iterable[list[StoredPoint]], size: int) -> np.ndarray:
        """Fill from the stored rows, chunk by chunk in slot order, every slot below `size`; returns each slot's
        write sequence number."""
        with _cyclic_gc_paused():
            seq_of_slot = self._load(chunks, size)
        _trim_heap()
        return seq_of_slot

    def _load(self, chunks: Iterable[list[StoredPoint]], size: int) -> np.ndarray:
        self.ids = [None] * size
        self.payloads = [None] * size
        self.exact.reserve(size)
        seq_of_slot = np.zeros(size, np.int64)
        for rows in chunks:
            slots = [row.slot for row in rows]
            # One orjson call per chunk for the ids and one for the payloads: a call per row cost twice as long.
            pids = orjson.loads("[" + ",".join([row.id_json for row in rows]) + "]")
            raw = [row.payload for row in rows]
            parsed = orjson.loads(b"[" + b",".join([p or b"null" for p in raw]) + b"]")
            if slots[-1] - slots[0] == len(slots) - 1:  # consecutive slots (no freed ones among them): slices
                self.ids[slots[0] : slots[-1] + 1] = pids
                self.payloads[slots[0] : slots[-1] + 1] = raw
            else:
                for slot, pid, p in zip(slots, pids, raw, strict=True):
                    self.ids[slot], self.payloads[slot] = pid, p
            self.slot_of.update(zip(pids, slots, strict=True))
            at = np.asarray(slots, np.int64)
            seq_of_slot[at] = [row.seq for row in rows]
            self.payload_index.load(slots, parsed)
            self.exact.upsert(
                at, np.frombuffer(b"".join(row.vector for row in rows), np.float32).reshape(len(rows), -1)
            )
        self.free = np.flatnonzero(~self.exact.alive)[::-1].tolist()
        return seq_of_slot

    def assign_slots(self, ids: list[PointId]) -> tuple[np.ndarray, int]:
        """Existing ids keep their slot; new ones take freed slots first (reusing graph nodes).

        Returns the slots and how many came off the end of the free stack; nothing changes yet,
        because the batch may still fail to commit.
        """
        reused, next_new = 0, len(self.ids)
        slots = []
        for pid in ids:
            slot = self.slot_of.get(pid)
            if slot is None:
                if reused < len(self.free):
                    reused += 1
                    slot = self.free[-reused]
                else:
                    slot, next_new = next_new, next_new + 1
            slots.append(slot)
        return np.asarray(slots, dtype=np.int64), reused

    def upsert(
        self,
        ids: list[PointId],
        slots: np.ndarray,
        vectors: np.ndarray,
        payload_json: list[bytes | None],
        payloads: list[dict[str, Any] | None],
        reused: int,
    ) -> None:
        for pid, slot, raw, payload in zip(ids, slots.tolist(), payload_json, payloads, strict=True):
            if slot == len(self.ids):
                self.ids.append(None)
                self.payloads.append(None)
            self.ids[slot], self.slot_of[pid], self.payloads[slot] = pid, slot, raw
            self.payload_index.set(slot, payload)
        del self.free[len(self.free) - reused :]
        self.exact.upsert(slots, vectors)
        self.masks.clear()

    def delete(self, found: list[tuple[PointId, int]]) -> np.ndarray:
        """Forget the given (id, slot) pairs; returns their slots."""
        slots = np.fromiter((s for _, s in found), np.int64, len(found))
        for pid, slot in found:
            del self.slot_of[pid]
            self.ids[slot] = self.payloads[slot] = None
            self.payload_index.remove(slot)
        self.free.extend(sorted(slots.tolist(), reverse=True))
        self.exact.delete(slots)
        self.masks.clear()
        return slots

    def mask(
        self, flt: dict[str, Any], text_slots: Callable[[str, str], np.ndarray | None], *, strict: bool
    ) -> np.ndarray:
        """One bool per slot, read-only: alive and matching the filter (conditions no index answers scan the live
        payloads). A filter the indexes answer alone is kept in `masks` until the next write."""

        def build() -> np.ndarray:
            rows = Rows(self.payloads, self._slots_of_ids, text_slots, strict)
            alive = self.exact.alive
            return self.payload_index.mask(flt, self.exact.size, rows, within=alive) & alive

        if self.payload_index.needs_scan(flt):  # a text condition reads the lexical index, which a background
            return build()  # rebuild changes between writes: only what the payload indexes answer is kept
        try:
            key = (orjson.dumps(flt, option=orjson.OPT_SORT_KEYS), strict, self.payload_index.generation)
        except TypeError:  # not JSON (only code can pass one): nothing to key it by
            return build()
        return self.masks.get(key, build)

    def _slots_of_ids(self, ids: list[Any]) -> list[int]:
        slot_of = self.slot_of
        return [slot_of[pid] for pid in ids if pid in slot_of]

    def points(self, slots: list[int], with_payload: bool, with_vector: bool) -> list[Point]:
        vectors = self.exact.vectors(np.asarray(slots, np.int64)) if with_vector else None
        return [
            Point(
                self.ids[slot],  # type: ignore[arg-type]
                self.payloads[slot] if with_payload else None,
                None if vectors is None else vectors[i],
            )
            for i, slot in enumerate(slots)
        ]

    @property
    def nbytes(self) -> int:
        return self.exact.nbytes + sum(len(p) for p in self.payloads if p)
