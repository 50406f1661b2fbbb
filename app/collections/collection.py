"""Collection: one collection's points, durable in SQLite and searchable in memory; it owns the state and locks."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import orjson

from app.collections.backfill import Backfill
from app.collections.graph import Checked, GraphManager, check_checkpoint
from app.collections.ingest import PointInput, embed_items, vectors_of
from app.collections.layout import DB_FILE, MODELS_DIR
from app.collections.lexical import documents
from app.collections.models import CollectionConfig, Page, Point, PointId, Source
from app.collections.points import ImageMismatch, PointTable
from app.collections.reembed import brought_up_to_date
from app.collections.rwlock import RWLock
from app.collections.view import EventRow, Part, QueriedEvent, ReadView, WouldBlock, prepare_vectors
from app.core.config import Settings
from app.core.errors import CollectionNotFound, InvalidInput, PointNotFound
from app.embedding.base import Embedder, Modality
from app.embedding.factory import EmbedderPool
from app.index.payload import FieldType
from app.storage.arrays import CorruptArrays, read_arrays
from app.storage.checkpoint import CorruptCheckpoint, read_manifest, table_image
from app.storage.sqlite_store import PointStore

log = logging.getLogger(__name__)
T = TypeVar("T")
LEXICAL_OWED = "lexical_rebuild_owed"  # meta key: true while the keyword index lags its fields
IMAGE, ROWS = "checkpoint image", "stored rows"  # where an opening found the points
# Mapped from the image, not read: the graph holds the vectors too, and the exact matrix's pages then cost memory
# only once searches read them, as page cache the system can take back (399k × 50-d: 76 MiB less after opening).
MAPPED = ("vectors",)
PartFactory = Callable[["Collection"], Part]  # builds a part for a collection that has just opened


def _encode_payload(pid: PointId, payload: dict[str, Any] | None) -> bytes | None:
    if payload is None:
        return None
    try:
        # Kept in memory for as long as the point lives: orjson's bytes hold on to their 4 KiB output buffer
        # (tracemalloc: 4,097 bytes for a 28-byte payload), so a copy of exactly its size is what is kept.
        return bytes(memoryview(orjson.dumps(payload)))
    except orjson.JSONEncodeError as err:  # integers past 64 bits, nesting past 254 levels
        raise InvalidInput(f"point {pid!r}: payload cannot be stored: {err}", id=pid) from None


def _empty_table(config: CollectionConfig, settings: Settings) -> PointTable:
    return PointTable(config.dim, config.metric, config.payload_indexes, settings.mask_cache_mb << 20)


def _load_table(
    folder: Path, config: CollectionConfig, settings: Settings, store: PointStore
) -> tuple[PointTable, np.ndarray, str]:
    """The stored points in memory, each slot's write sequence number (for the graph's replay) and where they
    came from: the last checkpoint's image of the table with the writes after it replayed, or, without a usable
    one, every stored row."""
    try:
        manifest = read_manifest(folder)
        found = None if manifest is None else table_image(folder, manifest)
        if manifest is not None and found is not None:
            covered = int(manifest["seq"])
            if covered > store.seq:  # relaxed durability lost the last commits (power loss): the image has more
                raise ImageMismatch(f"it covers write {covered}, the database ends at {store.seq}")
            table = _empty_table(config, settings)
            table.restore(*read_arrays(*found, mapped=MAPPED))
            seq_of_slot = table.replay(
                store.tombstones_after(covered), store.points(since=covered), store.max_slot() + 1
            )
            if table.count != store.count():  # the image and the database disagree: trust the database
                raise ImageMismatch(f"it holds {table.count} points after replay, the database {store.count()}")
            return table, seq_of_slot, IMAGE
    except (CorruptCheckpoint, CorruptArrays, ImageMismatch, KeyError, TypeError, ValueError) as err:
        log.warning("collection %s: table image unusable (%s); loading every stored point", config.name, err)
    table = _empty_table(config, settings)
    return table, table.load(store.points(), store.max_slot() + 1), ROWS


class Collection:
    """Readers share the in-memory state; a writer commits to SQLite first, then swaps memory under
    the write lock, so a reader sees a batch entirely or not at all and an acknowledged write is on disk.

    Two locks: the write mutex serialises writers (their commit included) and anything that needs the
    collection at rest (checkpoints, backups, tune's ground truth); the reader/writer lock is held by
    readers and, briefly, by a writer swapping memory. So a long quiesced read holds writers back
    without holding back readers.
    """

    def __init__(
        self,
        folder: Path,
        config: CollectionConfig,
        store: PointStore,
        settings: Settings,
        embedder: Embedder | None = None,
        embedders: EmbedderPool | None = None,
        table: PointTable | None = None,
    ) -> None:
        self._folder, self._config, self._store, self._settings = folder, config, store, settings
        self.embedder = embedder
        self._embedders = embedders  # where another model comes from when the collection switches to it
        self._rw = RWLock()
        self._write_mutex = threading.Lock()
        self._table = table or _empty_table(config, settings)
        self.graph = GraphManager(folder, config, settings, store, self._table, self._rw, self._write_mutex)
        self._field_builds: dict[str, tuple[int, Backfill]] = {}  # payload indexes added while serving
        self._lexical = Backfill(f"{config.name}-lexical", self._live_slots, self._rewrite_lexical, self._lexical_built)
        self._parts: dict[type, Part] = {}
        self.closed = False
        self.loaded_from = ROWS  # IMAGE when an opening took the checkpoint's image of the table

    # ---- identity (the Catalog protocol) -------------------------------------------------------
    @property
    def name(self) -> str:
        return self._config.name

    @property
    def config(self) -> CollectionConfig:
        return self._config

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def folder(self) -> Path:
        return self._folder

    @property
    def count(self) -> int:
        return self._table.count

    @property
    def failures(self) -> dict[str, int]:
        """Failures of this collection's background work by task (build, checkpoint), for /metrics."""
        return {"build": 0, "checkpoint": 0, **self.graph.failures}

    @property
    def seq(self) -> int:
        """The sequence number of the last write batch applied."""
        return self._store.seq

    # ---- life cycle -------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        folder: Path,
        config: CollectionConfig,
        settings: Settings,
        embedder: Embedder | None = None,
        parts: Sequence[PartFactory] = (),
        embedders: EmbedderPool | None = None,
    ) -> Collection:
        folder.mkdir(parents=True)
        store = PointStore(folder / DB_FILE, durable=settings.durability == "fsync")
        try:
            store.set_meta("config", config.to_json())
            collection = cls(folder, config, store, settings, embedder, embedders)
        except BaseException:
            store.close()
            raise
        collection._start(np.zeros(0, np.int64), parts)
        return collection

    @classmethod
    def open(
        cls, folder: Path, settings: Settings, embedders: EmbedderPool, parts: Sequence[PartFactory] = ()
    ) -> Collection:
        store = PointStore(folder / DB_FILE, durable=settings.durability == "fsync")
        try:
            config = CollectionConfig.from_json(store.get_meta("config"))
            embedder = embedders.get(config.embedder, folder / MODELS_DIR) if config.embedder else None
            checked = check_checkpoint(folder)  # beside the table's load
            table, seq_of_slot, source = _load_table(folder, config, settings, store)
            collection = cls(folder, config, store, settings, embedder, embedders, table)
            collection.loaded_from = source
            log.info("collection %s: %d points from its %s", config.name, table.count, source)
        except BaseException:
            store.close()
            raise
        collection._start(seq_of_slot, parts, checked)
        return collection

    def _start(self, seq_of_slot: np.ndarray, parts: Sequence[PartFactory], checked: Checked | None = None) -> None:
        try:
            for make in parts:  # before the graph: a part may read every point (personalization replays events)
                part = make(self)
                self._parts[type(part)] = part
            self.graph.start(seq_of_slot, checked)
            if self._store.get_meta(LEXICAL_OWED):  # a rebuild a stop or crash cut short
                self._lexical.request()
        except BaseException:
            self.close(checkpoint=False)  # closes the parts made so far and the database
            raise

    def part(self, kind: type[T]) -> T:
        """The part of this kind that the registry attached (personalization, a recall monitor)."""
        found = self.find_part(kind)
        if found is None:
            raise LookupError(f"collection '{self.name}' has no {kind.__name__}")
        return found

    def find_part(self, kind: type[T]) -> T | None:
        return self._parts.get(kind)  # type: ignore[return-value]

    def close(self, *, checkpoint: bool = True) -> None:
        """Refuse new calls (404), stop and join the graph's threads, checkpoint what the graph holds, release
        the database. The threads are joined outside the mutex (the checkpointer takes it), so no background
        checkpoint is half done when the last one is written.
        """
        with self._write_mutex:
            if self.closed:
                return
            with self._rw.write():
                self.closed = True
        backfills = [self._lexical, *(build for _, build in self._field_builds.values())]
        self.graph.stop()
        for backfill in backfills:
            backfill.stop()
        self.graph.join()
        for backfill in backfills:
            backfill.join()
        with self._write_mutex:
            if checkpoint and self.graph.changed:  # a graph still building is not waited for
                self.graph.checkpoint_or_count()  # a failure must not keep the database open
            self._store.close()
        for part in self._parts.values():
            part.close()

    def backup(self, dest: Path) -> tuple[int, int, CollectionConfig]:
        """Copy the database to `dest` as of one batch boundary; returns (seq, count, config) it holds."""
        with self.quiesced() as view:
            self._store.backup(dest)
            return view.seq, view.count, view.config

    # ---- views ------------------------------------------------------------------------------
    def _view(self) -> ReadView:
        if self.closed:
            raise CollectionNotFound(f"collection '{self.name}' was dropped", name=self.name)
        return ReadView(
            self._config, self._settings, self._table, self.graph.reader, self._store.seq, self._store.lexical_search
        )

    def wait_for_graph(self, timeout: float) -> bool:
        return self.graph.wait(timeout)

    @contextmanager
    def reading(self) -> Iterator[ReadView]:
        with self._rw.read():
            yield self._view()

    @contextmanager
    def try_reading(self) -> Iterator[ReadView]:
        """A read view without waiting; raises WouldBlock when a writer holds or awaits the lock."""
        if not self._rw.acquire_read(blocking=False):
            raise WouldBlock
        try:
            yield self._view()
        finally:
            self._rw.release_read()

    @contextmanager
    def quiesced(self) -> Iterator[ReadView]:
        with self._write_mutex:
            yield self._view()

    # ---- writes -----------------------------------------------------------------------------
    def set_default_ef(self, ef: int) -> None:
        """The beam width searches use when they name none; kept in the stored config."""
        with self._write_mutex:
            self._view()  # 404 once dropped
            config = replace(self._config, ef=ef)
            self._store.set_meta("config", config.to_json())
            with self._rw.write():
                self._config = config
                self.graph.set_ef(config)

    def set_lexical(self, lexical: dict[str, Any] | None) -> None:
        """Change which fields the keyword index holds (None: keep none); every point's document is rewritten
        in the background, and the debt is kept in the database so a restart finishes it."""
        with self._write_mutex:
            self._view()
            config = replace(self._config, lexical=lexical)
            if lexical:
                self._store.set_meta(LEXICAL_OWED, True)  # before the config: a crash in between rebuilds twice
            self._store.set_meta("config", config.to_json())
            with self._rw.write():
                self._config = config
            if not lexical:
                self._store.clear_lexical()
                self._store.set_meta(LEXICAL_OWED, False)
        if lexical:
            self._lexical.request()

    def index_field(self, key: str, kind: FieldType) -> None:
        """Add (or retype) a payload index while the collection serves: writes go into it at once, the stored
        points in the background; filters scan the field until it is complete. A restart builds it at load."""
        with self._write_mutex:
            self._view()
            if self._config.payload_indexes.get(key) == kind:
                return
            config = self._config.with_index(key, kind)
            self._store.set_meta("config", config.to_json())
            with self._rw.write():
                self._config = config
                self._table.payload_index.begin(key, kind)
            generation = self._field_builds[key][0] + 1 if key in self._field_builds else 1
            if key in self._field_builds:
                self._field_builds[key][1].stop()
            build = Backfill(
                f"{self.name}-index-{key}",
                self._live_slots,
                functools.partial(self._fill_field, key),
                functools.partial(self._field_built, key, generation),
            )
            self._field_builds[key] = (generation, build)
        build.request()

    def drop_field_index(self, key: str) -> None:
        """Stop indexing a payload field; filters on it scan from now on."""
        with self._write_mutex:
            self._view()
            config = self._config.without_index(key)
            self._store.set_meta("config", config.to_json())
            with self._rw.write():
                self._config = config
                self._table.payload_index.drop(key)
            if key in self._field_builds:
                self._field_builds.pop(key)[1].stop()

    def _fill_field(self, key: str, slots: list[int]) -> None:
        with self._write_mutex:
            payloads = self._table.payloads
            for slot in slots:
                raw = payloads[slot]
                self._table.payload_index.fill(key, slot, None if raw is None else orjson.loads(raw))

    def _field_built(self, key: str, generation: int) -> None:
        with self._write_mutex:
            if self._field_builds.get(key, (None,))[0] == generation:  # not dropped or retyped meanwhile
                with self._rw.write():
                    self._table.payload_index.finish(key)
                del self._field_builds[key]

    def _live_slots(self) -> list[int]:
        with self.reading():
            return sorted(self._table.slot_of.values())

    def _rewrite_lexical(self, slots: list[int]) -> None:
        """One chunk of a rebuild: the documents of these slots as the current fields make them."""
        with self._write_mutex:
            if self.closed:
                return
            live = [s for s in slots if self._table.ids[s] is not None] if self._config.lexical else []
            keys = [orjson.dumps(self._table.ids[s]).decode() for s in live]
            payloads = [None if (raw := self._table.payloads[s]) is None else orjson.loads(raw) for s in live]
            found = self._store.sources(keys) if self._config.lexical_source else {}
            docs = documents(self._config, payloads, [found.get(key) for key in keys])
            self._store.rewrite_lexical(list(zip(live, keys, docs, strict=True)))

    def _lexical_built(self) -> None:
        with self._write_mutex:
            if not self.closed:
                self._store.set_meta(LEXICAL_OWED, False)

    def upsert(
        self,
        ids: list[PointId],
        vectors: np.ndarray,
        payloads: list[dict[str, Any] | None],
        sources: list[Source | None] | None = None,
        seq: int | None = None,
    ) -> int:
        """Insert or replace points; all or nothing. Returns the batch's sequence number (`seq` when the caller
        numbers its batches: a shard copy).

        `sources` (what each point was embedded from) is kept only if the collection is configured
        to keep it; a point upserted without one loses the one it had.
        """
        vectors = prepare_vectors(self._config, vectors, expected=len(ids))
        for i, payload in enumerate(payloads):
            try:
                self._table.payload_index.check(payload)
            except InvalidInput as err:
                raise InvalidInput(f"point {ids[i]!r}: {err.message}", id=ids[i]) from None
        last = {pid: i for i, pid in enumerate(ids)}  # a repeated id: the last one wins
        order = list(last.values())
        ids = [ids[i] for i in order]
        vectors = vectors[order]
        payload_json = [_encode_payload(ids[n], payloads[i]) for n, i in enumerate(order)]
        id_json = [orjson.dumps(pid).decode() for pid in ids]
        given = sources or [None] * len(payloads)
        kept = None
        if self._config.store_source:
            kept = [None if given[i] is None else (key, *given[i]) for key, i in zip(id_json, order, strict=True)]
        with self._write_mutex:
            self._view()
            config = self._config  # read under the mutex: a change of lexical fields is not half seen
            docs = (
                documents(config, [payloads[i] for i in order], [given[i] for i in order]) if config.lexical else None
            )
            slots, reused = self._table.assign_slots(ids)
            moved = self._moved(ids, slots, vectors)
            rows = [
                (key, slot, vec.tobytes(), None if p is None else p.decode())
                for key, slot, vec, p in zip(id_json, slots.tolist(), vectors, payload_json, strict=True)
            ]
            seq = self._store.write_batch(rows, [], kept, docs, seq=seq)
            with self._rw.write():
                self._table.upsert(ids, slots, vectors, payload_json, [payloads[i] for i in order], reused)
                self.graph.apply(slots[moved], vectors[moved])
            self.graph.note_changes(int(np.count_nonzero(moved)))
        return seq

    def _moved(self, ids: list[PointId], slots: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Which points of a batch the graph must take in: new ones, and stored ones whose vector changed. A point
        re-sent with the same vector (a price update, an import run again) keeps its graph node as it is: hnswlib
        replaces a node by repairing its neighbours' links, ten times the cost of an insert."""
        slot_of = self._table.slot_of
        stored = np.fromiter((pid in slot_of for pid in ids), bool, len(ids))
        moved = np.ones(len(ids), dtype=bool)
        if stored.any():
            same = (self._table.exact.vectors(slots[stored]) == vectors[stored]).all(axis=1)
            moved[np.flatnonzero(stored)[same]] = False
        return moved

    def upsert_inputs(self, points: list[PointInput]) -> int:
        """Upsert points given as vectors, texts, sequences or images: the embedding happens here, off the loop."""
        vectors, sources = vectors_of(self.embedder, self.name, self._config.dim, points)
        return self.upsert([p.id for p in points], vectors, [p.payload for p in points], sources)

    def delete(self, ids: list[PointId], seq: int | None = None) -> tuple[int, int]:
        """Delete the given ids (unknown ones are skipped). Returns (deleted count, sequence number); a batch the
        caller numbers (`seq`) is recorded even when it deletes nothing, so every copy of a shard counts alike."""
        with self._write_mutex:
            self._view()
            slot_of = self._table.slot_of
            found = [(pid, slot_of[pid]) for pid in dict.fromkeys(ids) if pid in slot_of]
            if not found and seq is None:
                return 0, self._store.seq
            seq = self._store.write_batch([], [(orjson.dumps(pid).decode(), slot) for pid, slot in found], seq=seq)
            with self._rw.write():
                slots = self._table.delete(found)
                self.graph.apply(slots, None)
            self.graph.note_changes(len(found))
        return len(found), seq

    def delete_by_filter(self, flt: dict[str, Any], seq: int | None = None) -> tuple[int, int]:
        with self.reading() as view:
            ids = view.ids(np.flatnonzero(view.mask(flt)).tolist())
        return self.delete(ids, seq)

    def changes_since(self, seq: int) -> tuple[int, list[Point], list[PointId]]:
        """(the last batch number, every point that batches after `seq` wrote, with vector, payload and source,
        and the id of every stored point) as of one batch boundary: what a copy that stopped at `seq` lacks."""
        with self.quiesced() as view:
            written = {orjson.loads(key) for key in self._store.ids_written_since(seq)}
            slots = [view.slot_of(pid) for pid in written]
            points = view.points(slots, with_payload=True, with_vector=True)  # type: ignore[arg-type]
            return view.seq, self._with_sources(points), view.ids(view.live_slots().tolist())

    def embedder_for(self, spec: dict[str, Any]) -> Embedder:
        """The embedder a spec names (a fine-tuned version among this collection's models), from the shared pool."""
        if self._embedders is None:
            raise InvalidInput(f"collection '{self.name}' cannot load another model")
        return self._embedders.get(spec, self._folder / MODELS_DIR)

    def switch_embedder(
        self, spec: dict[str, Any], embedder: Embedder, vectors: dict[PointId, np.ndarray], as_of: int
    ) -> int:
        """Put another model of the same kind in place, with the vectors it made from the points' texts as of
        batch `as_of`: texts written since are embedded again here (writers wait for those few), points with no
        source or a photo keep their vectors. The config and every new vector commit in one batch, so a crash
        leaves the collection wholly on one model; the graph is rebuilt in the background while exact search
        answers."""
        if embedder.dim != self._config.dim:
            raise InvalidInput(f"the new model makes {embedder.dim}-dimensional vectors, not {self._config.dim}")
        with self._write_mutex:
            self._view()
            since = self._store.ids_written_since(as_of)
            vectors = brought_up_to_date(vectors, since, self._store.source_kinds, self._store.sources, embedder)
            seq = self._replace_vectors(vectors, replace(self._config, embedder=spec))
            self.embedder = embedder
        return seq

    def replace_vectors(self, vectors: dict[PointId, np.ndarray], *, seq: int | None = None) -> int:
        """Give stored points new vectors, their payloads and sources as they are, in one batch (numbered `seq`
        when a sharded collection's router numbers it); the graph is rebuilt in the background while exact
        search answers. Points not stored (deleted meanwhile) are left out."""
        with self._write_mutex:
            self._view()
            return self._replace_vectors(vectors, self._config, seq)

    def _replace_vectors(
        self, vectors: dict[PointId, np.ndarray], config: CollectionConfig, seq: int | None = None
    ) -> int:
        """Under the write mutex: new vectors and `config` committed in one batch, then put in memory."""
        slot_of = self._table.slot_of
        ids = [pid for pid in vectors if pid in slot_of]
        slots = np.asarray([slot_of[pid] for pid in ids], np.int64)
        stacked = np.asarray([vectors[pid] for pid in ids], np.float32).reshape(len(ids), config.dim)
        matrix = prepare_vectors(config, stacked, len(ids))
        payloads = self._table.payloads
        rows = [
            (orjson.dumps(pid).decode(), slot, vec.tobytes(), None if (p := payloads[slot]) is None else p.decode())
            for pid, slot, vec in zip(ids, slots.tolist(), matrix, strict=True)
        ]
        seq = self._store.write_batch(rows, [], meta={"config": config.to_json()}, seq=seq)
        with self._rw.write():
            if len(ids):
                self._table.exact.upsert(slots, matrix)
            self._config = config
            self.graph.rebuild()
        self.graph.note_changes(len(ids))
        return seq

    def ids_written_since(self, seq: int) -> list[str]:
        """The keys (ids as JSON) of the points that batches after `seq` wrote."""
        return self._store.ids_written_since(seq)

    def live_ids(self) -> tuple[int, list[PointId]]:
        """(the last batch's number, the id of every stored point as of it)."""
        with self.reading() as view:
            return view.seq, view.ids(view.live_slots().tolist())

    def found(self, ids: list[PointId], *, with_payload: bool, with_vector: bool) -> list[Point]:
        """The stored points among the ids, in their order (the others left out, not an error)."""
        with self.reading() as view:
            slots = [slot for pid in ids if (slot := view.slot_of(pid)) is not None]
            return view.points(slots, with_payload=with_payload, with_vector=with_vector)

    def embed(self, modality: Modality, items: list[Any], ids: list[PointId] | None = None) -> np.ndarray:
        """Vectors for texts, images or sequences by the collection's embedder; a bad item fails the call."""
        return embed_items(self.embedder, self.name, modality, items, ids)

    # ---- events (personalization's log, kept in the same database) ------------------------------------
    def stored_events(self) -> Iterator[list[EventRow]]:
        return self._store.events()

    def add_events(self, rows: list[EventRow], queries: list[str | None] | None = None) -> list[bool]:
        """Store events durably, with the search words behind each where known; True for each one that was new."""
        return self._store.add_events(rows, queries)

    def queried_events(self) -> list[QueriedEvent]:
        """(user, item key, type, time, query) of the stored events that name their search, oldest first."""
        return self._store.queried_events()

    def log_searches(self, searches: list[tuple[str, list[PointId]]]) -> None:
        """Keep (query words, ids shown) of searches asked with "log", now, durably."""
        self._store.log_searches(searches, time.time())

    def stored_sources(self, keys: list[str]) -> dict[str, Source]:
        """What the points with these keys (ids as JSON) were embedded from, where kept; the others are absent."""
        return self._store.sources(keys)

    def source_kinds(self, keys: list[str]) -> dict[str, str]:
        """The kind of source ("text", "image", "sequence") kept for each of these keys that has one."""
        return self._store.source_kinds(keys)

    def search_log(self) -> list[tuple[float, str, list[PointId]]]:
        """(time, query words, ids shown) of every logged search, oldest first."""
        return self._store.search_log()

    # ---- reads ------------------------------------------------------------------------------
    def get(
        self, ids: list[PointId], *, with_payload: bool = True, with_vector: bool = False, with_source: bool = False
    ) -> list[Point]:
        with self.reading() as view:
            missing = [pid for pid in ids if pid not in view]
            if missing:
                raise PointNotFound(f"{len(missing)} point(s) not found", missing=missing[:20])
            slots = [view.slot_of(pid) for pid in ids]
            points = view.points(slots, with_payload=with_payload, with_vector=with_vector)  # type: ignore[arg-type]
            return self._with_sources(points) if with_source else points

    def count_matching(self, flt: dict[str, Any] | None) -> int:
        with self.reading() as view:
            return view.count if not flt else int(np.count_nonzero(view.mask(flt)))

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
        with self.reading() as view:
            mask = view.mask(flt)
            start = min(offset or 0, len(mask))  # an offset past every slot (any size JSON allows) is the end
            slots = np.flatnonzero(mask[start:]) + start
            page = slots[: limit + 1].tolist()
            next_offset = page.pop() if len(page) > limit else None
            points = view.points(page, with_payload=with_payload, with_vector=with_vector)
            return Page(self._with_sources(points) if with_source else points, next_offset)

    def _with_sources(self, points: list[Point]) -> list[Point]:
        """Sources live only in SQLite (they can be large images): read them for this page alone."""
        keys = [orjson.dumps(p.id).decode() for p in points]
        found = self._store.sources(keys)
        return [replace(p, source=found.get(key)) for p, key in zip(points, keys, strict=True)]

    def _lexical_state(self, config: CollectionConfig) -> str:
        if not config.lexical:
            return "off"
        return "building" if self._lexical.running else "failed" if self._lexical.failed else "ready"

    def info(self) -> dict[str, Any]:
        with self.reading() as view:
            return {
                **view.config.to_json(),
                "count": view.count,
                "indexed_count": self.graph.live_count,
                "index_state": self.graph.state,
                "memory_bytes": self._table.nbytes + self.graph.nbytes,
                "seq": view.seq,
                "lexical_state": self._lexical_state(view.config),
                "lexical_progress": self._lexical.progress,
                "payload_index_builds": {key: build.progress for key, (_, build) in self._field_builds.items()},
            }
