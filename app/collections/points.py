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
from app.storage.sqlite_store import POINTS_CHUNK, StoredPoint

IMAGE_VERSION = 1  # of the image a checkpoint keeps of the table (`PointTable.image`)
FIELD_PREFIX = "field:"  # an image's array of one indexed payload field


class ImageMismatch(Exception):
    """A checkpoint's image of the table that does not fit the collection or itself."""


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


def _parsed(payloads: list[bytes | None]) -> list[Any]:
    """The payloads' JSON parsed with one orjson call (a call per payload cost twice as long); None stays None."""
    return orjson.loads(b"[" + b",".join([p or b"null" for p in payloads]) + b"]")  # type: ignore[no-any-return]


def _filter_key(flt: dict[str, Any]) -> bytes | None:
    """A filter as canonical JSON, to key what the mask cache keeps for it; None for one that is not JSON (only
    code can pass one: nothing to key it by)."""
    try:
        return orjson.dumps(flt, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None


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
        """Fill an empty table from the stored rows, chunk by chunk in slot order, every slot below `size`; returns
        each slot's write sequence number."""
        return self._fill([], chunks, size, replacing=False)

    def replay(self, deleted: list[int], chunks: Iterable[list[StoredPoint]], size: int) -> np.ndarray:
        """Bring a table restored from an image level with the store: forget the slots freed after the image
        (`deleted`), then take the rows written after it. `size`: one past the highest slot a stored point
        holds. Returns each slot's write sequence number (0 where the image has the point as it is)."""
        return self._fill(deleted, chunks, size, replacing=True)

    def _fill(
        self, deleted: list[int], chunks: Iterable[list[StoredPoint]], size: int, *, replacing: bool
    ) -> np.ndarray:
        size = max(size, self.size)
        with _cyclic_gc_paused():
            self.ids += [None] * (size - len(self.ids))
            self.payloads += [None] * (size - len(self.payloads))
            self.exact.reserve(size)
            seq_of_slot = np.zeros(size, np.int64)
            for slot in deleted:
                self.forget(slot)
            for rows in chunks:
                self._load_rows(rows, seq_of_slot, replacing=replacing)
            self.free = np.flatnonzero(~self.exact.alive)[::-1].tolist()
        _trim_heap()
        return seq_of_slot

    def _load_rows(self, rows: list[StoredPoint], seq_of_slot: np.ndarray, *, replacing: bool = False) -> None:
        """One chunk of stored rows into their slots; `replacing` first forgets what those slots, and the rows'
        ids, held (rows written after a checkpoint's image)."""
        slots = [row.slot for row in rows]
        # One orjson call per chunk for the ids (and one for the payloads): a call per row cost twice as long.
        pids = orjson.loads("[" + ",".join([row.id_json for row in rows]) + "]")
        raw = [row.payload for row in rows]
        parsed = _parsed(raw)
        if replacing:
            for slot, pid in zip(slots, pids, strict=True):
                self.forget(slot)
                if (elsewhere := self.slot_of.get(pid)) is not None:
                    self.forget(elsewhere)
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
        self.exact.upsert(at, np.frombuffer(b"".join(row.vector for row in rows), np.float32).reshape(len(rows), -1))

    # ---- a checkpoint's image: the table without reading every stored row ---------------------------------
    def image(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Everything `restore` needs to stand for the stored rows as of now, as a header and arrays; writers may
        go on once it is made (the owner keeps them away meanwhile). All is a copy but the vectors, which are the
        live matrix: a row written after this moment may reach the file, but only in a slot that the batch
        writing it, numbered after the image, also put in the database, so an opening replays it over the row.
        Copying them instead would hold a second matrix in memory for the length of the write."""
        size = self.size
        payloads = self.payloads[:size]
        vectors, alive = self.exact.image()
        alive = alive.copy()
        fields, columns = self.payload_index.image(size)
        header = {
            "version": IMAGE_VERSION,
            "dim": self.exact.dim,
            "metric": self.exact.metric,
            "size": size,
            "count": self.count,
            "fields": fields,
        }
        arrays = {
            "vectors": vectors,
            "alive": alive,
            "ids": np.frombuffer(orjson.dumps(self.ids[:size]), np.uint8),
            # One line each (compact JSON has no newline): one split makes them all again, twice as fast as
            # slicing by offsets. An empty line is a slot without one, or with a null payload (`absent` says).
            "payloads": np.frombuffer(b"\n".join([p or b"" for p in payloads]), np.uint8),
            "absent": np.fromiter((p is None for p in payloads), bool, size),
            **{FIELD_PREFIX + key: column for key, column in columns.items()},
        }
        return header, arrays

    def restore(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Fill an empty table from a checkpoint's image, to be brought level by `replay`; ImageMismatch when it does
        not fit this collection or itself (the caller then drops the table). Fields the image lacks are indexed
        from its payloads."""
        size, count = header.get("size"), header.get("count")
        fits = (header.get("version"), header.get("dim"), header.get("metric")) == (
            IMAGE_VERSION,
            self.exact.dim,
            self.exact.metric,
        )
        try:
            vectors, alive, absent = arrays["vectors"], arrays["alive"], arrays["absent"]
            ids = orjson.loads(memoryview(arrays["ids"]))
        except (KeyError, ValueError) as err:
            raise ImageMismatch(f"a part is missing or unreadable: {err}") from err
        shapes = (vectors.shape, alive.shape, absent.shape, len(ids))
        if not fits or not isinstance(size, int) or shapes != ((size, self.exact.dim), (size,), (size,), size):
            raise ImageMismatch("made for another collection, or its parts disagree")
        with _cyclic_gc_paused():
            payloads: list[bytes | None] = arrays["payloads"].tobytes().split(b"\n") if size else []
            slot_of = dict(zip(ids, range(size), strict=True))
            slot_of.pop(None, None)  # the freed slots
            if len(payloads) != size or len(slot_of) != count or np.count_nonzero(alive) != count:
                raise ImageMismatch("its parts disagree")
            for slot in np.flatnonzero(absent).tolist():
                payloads[slot] = None
            self.ids, self.slot_of, self.payloads = ids, slot_of, payloads
            self.exact.restore(vectors, alive.astype(bool, copy=False))
            columns = {key[len(FIELD_PREFIX) :]: a for key, a in arrays.items() if key.startswith(FIELD_PREFIX)}
            missing = self.payload_index.restore(header.get("fields") or {}, columns, size)
            if missing:  # an index declared after the image was made: from the payloads, as a full load does
                self._index_from_payloads(missing)

    def _index_from_payloads(self, keys: list[str]) -> None:
        slots = [slot for slot, p in enumerate(self.payloads) if p is not None]
        for start in range(0, len(slots), POINTS_CHUNK):
            chunk = slots[start : start + POINTS_CHUNK]
            self.payload_index.load(chunk, _parsed([self.payloads[s] for s in chunk]), keys)

    def forget(self, slot: int) -> None:
        """Empty one slot, whatever it holds (an opening that replays writes)."""
        if slot < len(self.ids) and (pid := self.ids[slot]) is not None:
            if self.slot_of.get(pid) == slot:
                del self.slot_of[pid]
            self.ids[slot] = self.payloads[slot] = None
            self.payload_index.remove(slot)
            self.exact.delete(np.array([slot], np.int64))

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
        text = _filter_key(flt)
        return build() if text is None else self.masks.get((text, strict, self.payload_index.generation), build)

    def selection(self, flt: dict[str, Any], most: int) -> np.ndarray | None:
        """The live slots (ascending) that pass the filter, read-only, when the payload indexes give them without a
        mask (`PayloadIndex.slots`: a keyword holding at most `most` points narrows it); None otherwise. Kept, as
        masks are, until the next write."""
        text = _filter_key(flt)
        if text is None:
            return None
        key = ("slots", text, most, self.payload_index.generation)
        if (kept := self.masks.find(key)) is not None:
            return kept
        slots = self.payload_index.slots(flt, self.exact.size, most)
        return None if slots is None else self.masks.keep(key, slots[self.exact.alive[slots]])

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
