"""Collection: one collection's points, kept durable in SQLite and searchable in memory."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from app.core.config import Settings
from app.core.errors import (
    CollectionNotFound,
    DimensionMismatch,
    InvalidInput,
    InvalidVector,
    PointNotFound,
    WrongModality,
)
from app.embedding.base import Embedder, Modality, embed
from app.embedding.factory import EmbedderPool
from app.index.base import prepare
from app.index.exact import ExactIndex
from app.index.hnsw import HnswIndex
from app.index.payload import PayloadIndex
from app.services import graph
from app.services.feedback import Feedback
from app.services.models import CollectionConfig, Page, Point, PointId, Query, SearchResult, Source
from app.services.recall import RecallMonitor
from app.services.rwlock import RWLock
from app.services.searcher import run_queries
from app.storage.sqlite_store import PointStore

log = logging.getLogger(__name__)
DB_FILE = "points.db"


def _encode_payload(pid: PointId, payload: dict[str, Any] | None) -> bytes | None:
    if payload is None:
        return None
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError as err:  # integers past 64 bits, nesting past 254 levels
        raise InvalidInput(f"point {pid!r}: payload cannot be stored: {err}", id=pid) from None


class WouldBlock(Exception):
    """A non-blocking read found a writer in the way; retry off the event loop."""


class Collection:
    """Readers share the in-memory state; a writer commits to SQLite first, then swaps memory under
    the write lock, so a reader sees a batch entirely or not at all and an acknowledged write is on disk.
    """

    def __init__(
        self,
        folder: Path,
        config: CollectionConfig,
        store: PointStore,
        settings: Settings,
        embedder: Embedder | None = None,
    ) -> None:
        self.folder, self.config, self.store, self.settings = folder, config, store, settings
        self.embedder = embedder
        self.name = config.name
        self.rw = RWLock()
        self._write_mutex = threading.Lock()  # serialises writers, including their SQLite commit
        self.ids: list[PointId | None] = []  # slot → external id
        self.slot_of: dict[PointId, int] = {}
        self.payloads: list[bytes | None] = []
        self._free: list[int] = []
        self.exact = ExactIndex(config.dim, config.metric)
        self.payload_index = PayloadIndex(config.payload_indexes)
        self.hnsw: HnswIndex | None = None
        self.graph_state = "building"  # building → ready, or failed
        self.pending: set[int] | None = set()  # slots written while the graph was being built
        self.applied_seq = store.seq
        self.changes_since_checkpoint = 0
        self.checkpoint_lock = threading.Lock()
        self.graph_thread: threading.Thread | None = None
        self.closed = False
        self.feedback = Feedback(self)  # events, user profiles, ranker
        self.recall = RecallMonitor(self, settings.recall_sample_every)

    # ---- life cycle -------------------------------------------------------------------------
    @classmethod
    def create(
        cls, folder: Path, config: CollectionConfig, settings: Settings, embedder: Embedder | None = None
    ) -> Collection:
        folder.mkdir(parents=True)
        store = PointStore(folder / DB_FILE, durable=settings.durability == "fsync")
        store.set_meta("config", config.to_json())
        collection = cls(folder, config, store, settings, embedder)
        graph.start(collection, seq_of_slot=np.zeros(0, np.int64))
        return collection

    @classmethod
    def open(cls, folder: Path, settings: Settings, embedders: EmbedderPool) -> Collection:
        store = PointStore(folder / DB_FILE, durable=settings.durability == "fsync")
        config = CollectionConfig(**store.get_meta("config"))
        embedder = embedders.get(config.embedder) if config.embedder else None
        collection = cls(folder, config, store, settings, embedder)
        seq_of_slot = collection._load_points()
        collection.feedback.load()
        graph.start(collection, seq_of_slot=seq_of_slot)
        return collection

    def _load_points(self) -> np.ndarray:
        rows = self.store.points()
        size = rows[-1].slot + 1 if rows else 0
        self.ids = [None] * size
        self.payloads = [None] * size
        seq_of_slot = np.zeros(size, np.int64)
        for row in rows:
            pid = orjson.loads(row.id_json)
            self.ids[row.slot], self.slot_of[pid] = pid, row.slot
            self.payloads[row.slot] = None if row.payload is None else row.payload.encode()
            seq_of_slot[row.slot] = row.seq
            if row.payload is not None:
                self.payload_index.set(row.slot, orjson.loads(row.payload))
        if rows:
            slots = np.fromiter((r.slot for r in rows), np.int64, len(rows))
            vectors = np.frombuffer(b"".join(r.vector for r in rows), np.float32).reshape(len(rows), -1)
            self.exact.upsert(slots, vectors)
        self._free = sorted(set(range(size)) - set(self.slot_of.values()), reverse=True)
        return seq_of_slot

    def close(self, *, checkpoint: bool = True) -> None:
        """Checkpoint what the graph holds, then release the database. Later calls see a 404."""
        with self._write_mutex:
            if self.closed:
                return
            if checkpoint and self.changes_since_checkpoint:  # a graph still building is not waited for
                graph.checkpoint(self)
            with self.rw.write():
                self.closed = True
            self.store.close()
        self.recall.close()

    def backup(self, dest: Path) -> tuple[int, int, CollectionConfig]:
        """Copy the database to `dest` as of one batch boundary; returns (seq, count, config) it holds.

        Writers wait for the copy (it must not see half a batch); readers go on.
        """
        with self._write_mutex:
            self._check_open()
            self.store.backup(dest)
            return self.applied_seq, self.count, self.config

    # ---- writes -----------------------------------------------------------------------------
    def set_default_ef(self, ef: int) -> None:
        """The beam width searches use when they name none; kept in the stored config."""
        with self._write_mutex:
            self._check_open()
            config = replace(self.config, ef=ef)
            self.store.set_meta("config", config.to_json())
            with self.rw.write():
                self.config = config
                if self.hnsw is not None:
                    self.hnsw.ef = ef
        self.recall.reset()  # its samples describe the old ef

    def upsert(
        self,
        ids: list[PointId],
        vectors: np.ndarray,
        payloads: list[dict[str, Any] | None],
        sources: list[Source | None] | None = None,
    ) -> int:
        """Insert or replace points; all or nothing. Returns the batch's sequence number.

        `sources` (what each point was embedded from) is kept only if the collection is configured
        to keep it; a point upserted without one loses the one it had.
        """
        vectors = self.check_vectors(vectors, expected=len(ids))
        for i, payload in enumerate(payloads):
            try:
                self.payload_index.check(payload)
            except InvalidInput as err:
                raise InvalidInput(f"point {ids[i]!r}: {err.message}", id=ids[i]) from None
        last = {pid: i for i, pid in enumerate(ids)}  # a repeated id: the last one wins
        order = list(last.values())
        ids = [ids[i] for i in order]
        vectors = vectors[order]
        payload_json = [_encode_payload(ids[n], payloads[i]) for n, i in enumerate(order)]
        id_json = [orjson.dumps(pid).decode() for pid in ids]
        kept = None
        if self.config.store_source:
            given = sources or [None] * len(payloads)
            kept = [None if given[i] is None else (key, *given[i]) for key, i in zip(id_json, order, strict=True)]
        with self._write_mutex:
            self._check_open()
            slots, reused = self._assign_slots(ids)
            seq = self.store.write_batch(
                [
                    (key, slot, vec.tobytes(), None if p is None else p.decode())
                    for key, slot, vec, p in zip(id_json, slots.tolist(), vectors, payload_json, strict=True)
                ],
                [],
                kept,
            )
            with self.rw.write():
                for pid, slot, p, i in zip(ids, slots.tolist(), payload_json, order, strict=True):
                    if slot == len(self.ids):
                        self.ids.append(None)
                        self.payloads.append(None)
                    self.ids[slot], self.slot_of[pid], self.payloads[slot] = pid, slot, p
                    self.payload_index.set(slot, payloads[i])
                del self._free[len(self._free) - reused :]
                self.exact.upsert(slots, vectors)
                self._apply_graph(slots, upsert=vectors)
                self.applied_seq = seq
        self._after_write(len(ids))
        return seq

    def delete(self, ids: list[PointId]) -> tuple[int, int]:
        """Delete the given ids (unknown ones are skipped). Returns (deleted count, sequence number)."""
        with self._write_mutex:
            self._check_open()
            found = [(pid, self.slot_of[pid]) for pid in dict.fromkeys(ids) if pid in self.slot_of]
            if not found:
                return 0, self.applied_seq
            seq = self.store.write_batch([], [(orjson.dumps(pid).decode(), slot) for pid, slot in found])
            slots = np.fromiter((s for _, s in found), np.int64, len(found))
            with self.rw.write():
                for pid, slot in found:
                    del self.slot_of[pid]
                    self.ids[slot] = self.payloads[slot] = None
                    self.payload_index.remove(slot)
                self._free.extend(sorted(slots.tolist(), reverse=True))
                self.exact.delete(slots)
                self._apply_graph(slots, upsert=None)
                self.applied_seq = seq
        self._after_write(len(found))
        return len(found), seq

    def delete_by_filter(self, flt: dict[str, Any]) -> tuple[int, int]:
        with self.rw.read():
            ids = [self.ids[s] for s in np.flatnonzero(self.mask(flt)).tolist()]
        return self.delete([pid for pid in ids if pid is not None])

    def _assign_slots(self, ids: list[PointId]) -> tuple[np.ndarray, int]:
        """Existing ids keep their slot; new ones take freed slots first (reusing graph nodes).

        Returns the slots and how many came off the end of the free stack; nothing changes yet,
        because the batch may still fail to commit.
        """
        reused, next_new = 0, len(self.ids)
        slots = []
        for pid in ids:
            slot = self.slot_of.get(pid)
            if slot is None:
                if reused < len(self._free):
                    reused += 1
                    slot = self._free[-reused]
                else:
                    slot, next_new = next_new, next_new + 1
            slots.append(slot)
        return np.asarray(slots, dtype=np.int64), reused

    def _apply_graph(self, slots: np.ndarray, upsert: np.ndarray | None) -> None:
        if self.pending is not None:  # the builder thread replays these when it installs the graph
            self.pending.update(slots.tolist())
        elif self.hnsw is not None:
            self.hnsw.upsert(slots, upsert) if upsert is not None else self.hnsw.delete(slots)

    def _after_write(self, changed: int) -> None:
        self.changes_since_checkpoint += changed
        if self.changes_since_checkpoint >= self.settings.checkpoint_every and self.graph_state == "ready":
            graph.checkpoint_in_background(self)

    def embed(self, modality: Modality, items: list[Any], ids: list[PointId] | None = None) -> np.ndarray:
        """Vectors for texts, images or sequences, by the collection's embedder.

        A bad item fails the whole call; with `ids` the error names the point it came from.
        """
        if self.embedder is None:
            raise WrongModality(
                f"collection '{self.name}' has no embedder: send vectors", modality=modality, accepted=["vector"]
            )
        try:
            return embed(self.embedder, modality, items)
        except WrongModality:
            raise
        except InvalidInput as err:
            if ids is None:
                raise
            for pid, item in zip(ids, items, strict=True):  # find the culprit, only on the error path
                try:
                    embed(self.embedder, modality, [item])
                except InvalidInput as one:
                    raise type(one)(f"point {pid!r}: {one.message}", id=pid, **one.details) from None
            raise err from None

    # ---- reads ------------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return len(self.slot_of)

    def get(
        self, ids: list[PointId], *, with_payload: bool = True, with_vector: bool = False, with_source: bool = False
    ) -> list[Point]:
        with self.rw.read():
            self._check_open()
            missing = [pid for pid in ids if pid not in self.slot_of]
            if missing:
                raise PointNotFound(f"{len(missing)} point(s) not found", missing=missing[:20])
            points = self._points([self.slot_of[pid] for pid in ids], with_payload, with_vector)
            return self._with_sources(points) if with_source else points

    def count_matching(self, flt: dict[str, Any] | None) -> int:
        with self.rw.read():
            self._check_open()
            return self.count if not flt else int(np.count_nonzero(self.mask(flt)))

    def scroll(
        self,
        flt: dict[str, Any] | None,
        limit: int,
        offset: int | None,
        *,
        with_payload: bool,
        with_vector: bool,
        with_source: bool = False,
    ) -> Page:
        """Points in slot order from `offset` on; `next_offset` continues where this page stopped."""
        with self.rw.read():
            self._check_open()
            mask = self.mask(flt) if flt else self.exact.alive
            slots = np.flatnonzero(mask[offset or 0 :]) + (offset or 0)
            page = slots[: limit + 1].tolist()
            next_offset = page.pop() if len(page) > limit else None
            points = self._points(page, with_payload, with_vector)
            return Page(self._with_sources(points) if with_source else points, next_offset)

    def search(self, queries: list[Query], *, blocking: bool = True) -> list[SearchResult]:
        if not self.rw.acquire_read(blocking):
            raise WouldBlock
        try:
            self._check_open()
            return run_queries(self, queries)
        finally:
            self.rw.release_read()

    def _points(self, slots: list[int], with_payload: bool, with_vector: bool) -> list[Point]:
        vectors = self.exact.vectors(np.asarray(slots, np.int64)) if with_vector else None
        return [
            Point(
                self.ids[slot],  # type: ignore[arg-type]
                self.payloads[slot] if with_payload else None,
                None if vectors is None else vectors[i],
            )
            for i, slot in enumerate(slots)
        ]

    def _with_sources(self, points: list[Point]) -> list[Point]:
        """Sources live only in SQLite (they can be large images): read them for this page alone."""
        keys = [orjson.dumps(p.id).decode() for p in points]
        found = self.store.sources(keys)
        return [replace(p, source=found.get(key)) for p, key in zip(points, keys, strict=True)]

    def mask(self, flt: dict[str, Any]) -> np.ndarray:
        return self.payload_index.mask(flt, self.exact.size) & self.exact.alive

    def check_vectors(self, vectors: np.ndarray, expected: int) -> np.ndarray:
        if vectors.ndim != 2 or vectors.shape[1] != self.config.dim or len(vectors) != expected:
            got = vectors.shape[-1] if vectors.ndim == 2 and len(vectors) == expected else None
            raise DimensionMismatch(
                f"collection '{self.name}' holds {self.config.dim}-dimensional vectors"
                + (f", got {got}" if got is not None else f", got {vectors.size} numbers for {expected} vector(s)"),
                expected=self.config.dim,
                got=got,
            )
        if not np.isfinite(vectors).all():
            bad = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
            raise InvalidVector(f"vector #{bad} contains NaN or infinity", index=bad)
        if self.config.metric == "cosine" and not np.linalg.norm(vectors, axis=1).all():
            bad = int(np.flatnonzero(np.linalg.norm(vectors, axis=1) == 0)[0])
            raise InvalidVector(f"vector #{bad} is all zeros: a cosine collection cannot rank it", index=bad)
        return prepare(vectors, self.config.metric)

    def _check_open(self) -> None:
        if self.closed:
            raise CollectionNotFound(f"collection '{self.name}' was dropped", name=self.name)

    def info(self) -> dict[str, Any]:
        recall, samples = self.recall.estimate()
        with self.rw.read():
            return {
                **self.config.to_json(),
                "count": self.count,
                "indexed_count": self.hnsw.live_count if self.hnsw is not None and self.pending is None else 0,
                "index_state": self.graph_state,
                "memory_bytes": self.exact.nbytes
                + (self.hnsw.nbytes if self.hnsw else 0)
                + sum(len(p) for p in self.payloads if p),
                "seq": self.applied_seq,
                "recall_estimate": recall,
                "recall_samples": samples,
            }
