"""GraphManager: a collection's HNSW graph — loaded or built in the background, kept level, checkpointed."""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.collections.models import CollectionConfig
from app.collections.points import PointTable
from app.collections.rwlock import RWLock
from app.core.config import Settings
from app.core.errors import is_disk_full
from app.index.hnsw import HnswIndex
from app.storage.arrays import write_arrays
from app.storage.checkpoint import CorruptCheckpoint, Staged, read_checkpoint, write_checkpoint
from app.storage.sqlite_store import PointStore

log = logging.getLogger(__name__)
BUILD_CHUNK = 10_000  # points per add_items call while building: memory stays flat, a close can cut in between
COMPACT_AFTER = 1_000  # dead nodes a graph may carry whatever its size; past that, up to as many as it has live


Checked = Future[tuple[Path, dict[str, Any]] | None]  # what `read_checkpoint` returns, or raises


def check_checkpoint(folder: Path) -> Checked:
    """`read_checkpoint` in a thread of its own, started now: its SHA-256 of the graph file releases the GIL, so an
    opening checks the graph while it loads the table (399k points: 0.09 s of 0.7 s to ready)."""
    checked: Checked = Future()

    def run() -> None:
        try:
            checked.set_result(read_checkpoint(folder))
        except BaseException as err:  # handed to whoever asks for the result
            checked.set_exception(err)

    threading.Thread(target=run, name=f"check-{folder.name}", daemon=True).start()
    return checked


@dataclass(frozen=True)
class _Staged:
    """A graph saved aside, not yet a checkpoint."""

    seq: int  # the last write batch it covers
    path: Path
    info: dict[str, object]
    changes: int  # the changed points it covers
    table: tuple[dict[str, Any], dict[str, np.ndarray]]  # the point table's image as of the same batch


class GraphManager:
    """Owns the graph's state (`building` → `ready`, or `failed`) and its two threads.

    The builder thread loads the newest checkpoint (or builds from the points) and replays what was
    written meanwhile; until it installs the graph, writes only note their slots in `pending` and the
    planner answers exactly. One long-lived checkpointer thread saves the graph when enough points
    changed, and first rebuilds it without its dead nodes (the old nodes of replaced or deleted points)
    when there are as many as live ones; the old graph serves until the new one is installed. Both are
    started by `start` and stopped by `stop` + `join`, which the collection calls.

    Locks are the collection's: writes reach the graph under its write lock; installing the graph and
    checkpointing hold its write mutex, so the graph they see cannot change while readers go on.
    """

    def __init__(
        self,
        folder: Path,
        config: CollectionConfig,
        settings: Settings,
        store: PointStore,
        table: PointTable,
        rw: RWLock,
        write_mutex: threading.Lock,
    ) -> None:
        self._folder, self.config, self._settings, self._store, self._table = folder, config, settings, store, table
        self._rw, self._write_mutex = rw, write_mutex
        self.index: HnswIndex | None = None
        self.pending: set[int] | None = set()  # slots written while the graph was being built
        self._rebuilt: set[int] | None = None  # slots written while a compaction rebuilds the graph
        self.state = "building"
        self.failures: Counter[str] = Counter()  # by task: build, checkpoint, compact (on /metrics)
        self._changes = 0  # points changed since the last checkpoint; only touched under the write mutex
        self._after_build = False  # a graph built or replayed at start that no checkpoint covers yet
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---- life cycle -------------------------------------------------------------------------
    def start(self, seq_of_slot: np.ndarray, checked: Checked | None = None) -> None:
        """Start the builder and the checkpointer; until the graph is installed the planner answers exactly.
        `checked`: the checkpoint, already being checked (`check_checkpoint`)."""
        name = self.config.name
        self._threads = [
            threading.Thread(target=self._bring_up, args=(seq_of_slot, checked), name=f"graph-{name}", daemon=True),
            threading.Thread(target=self._checkpointer, name=f"checkpoint-{name}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Tell both threads to finish: the builder installs nothing after this, the checkpointer starts no save."""
        self._stopping.set()
        self._wake.set()

    def join(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the graph is up (or failed); False when `timeout` ran out first."""
        if self._threads:
            self._threads[0].join(timeout)
        return self.state != "building"

    # ---- reads and writes (the caller holds the collection's locks) --------------------------------
    @property
    def reader(self) -> HnswIndex | None:
        """The graph when it is installed and level with the points, else None."""
        return self.index if self.pending is None else None

    def apply(self, slots: np.ndarray, vectors: np.ndarray | None) -> None:
        """Bring a write into the graph (write lock held): upsert `vectors` at `slots`, or delete them when None."""
        if self.pending is not None:  # the builder replays these when it installs the graph
            self.pending.update(slots.tolist())
        elif self.index is not None:
            self.index.upsert(slots, vectors) if vectors is not None else self.index.delete(slots)
            if self._rebuilt is not None:
                self._rebuilt.update(slots.tolist())
            elif self._compaction_due:
                self._wake.set()

    def rebuild(self) -> None:
        """Every vector changed (a switch of model): drop the graph and build it again from the points in the
        background; the planner answers exactly until it is installed. The caller holds the write lock."""
        self.index, self.pending, self.state = None, set(), "building"
        builder = threading.Thread(target=self._bring_up, args=(None,), name=f"graph-{self.config.name}", daemon=True)
        self._threads[0] = builder  # `wait` and `join` follow the builder that runs now
        builder.start()

    def note_changes(self, changed: int) -> None:
        """Count changed points (write mutex held); wake the checkpointer once enough have changed."""
        self._changes += changed
        if self._changes >= self._settings.checkpoint_every and self.state == "ready":
            self._wake.set()

    def set_ef(self, config: CollectionConfig) -> None:
        self.config = config
        if self.index is not None:
            self.index.ef = config.ef

    @property
    def changed(self) -> bool:
        return self._changes > 0

    # ---- checkpoints ------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Save the graph so that a restart loads it, all at once (write mutex held: writers wait, readers go on)."""
        staged = self._stage()
        if staged is not None:
            self._finish(staged)
            self._settle(staged)

    def checkpoint_or_count(self) -> None:
        """`checkpoint`, with a failure counted and logged instead of raised; the next try may work."""
        try:
            self.checkpoint()
        except Exception as err:
            self._count_failure(err)

    def _checkpointer(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping.is_set():
                return
            if self._compaction_due:
                try:
                    self._compact()
                except Exception:  # the old graph still serves; the next write past the mark tries again
                    self.failures["compact"] += 1
                    log.exception("collection %s: compaction failed", self.config.name)
            try:
                self._checkpoint_beside_writers()
            except Exception as err:  # the next wake tries again
                self._count_failure(err)

    def _checkpoint_beside_writers(self) -> None:
        """Only hnswlib's save holds writers back; the fsync, checksum and manifest run while they write."""
        with self._write_mutex:
            # Writes that landed between the wake and the mutex woke it again: one save covers them.
            if self._stopping.is_set() or not (self._after_build or self._due):
                return
            staged = self._stage()
        if staged is None:
            return
        self._finish(staged)
        with self._write_mutex:
            self._settle(staged)

    @property
    def _due(self) -> bool:
        return self._changes >= self._settings.checkpoint_every

    def _stage(self) -> _Staged | None:
        """Save the graph to a staging file (write mutex held: the graph cannot change under hnswlib's save)."""
        index = self.reader
        if index is None:
            return None
        seq, cfg = self._store.seq, self.config
        info = {
            "dim": cfg.dim,
            "metric": cfg.metric,
            "m": cfg.m,
            "ef_construction": cfg.ef_construction,
            "count": index.live_count,
            "deleted": index.deleted_labels(),
        }
        path = self._folder / f"hnsw-{seq}.bin.staged"  # removed by the next checkpoint if a crash leaves it
        try:
            index.save(path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        # The table's image too, so that an opening reads it instead of every stored row (399k points: ready in
        # 0.6 s instead of 1.5, benchmarks/RESULTS.md, "Opening a collection"). Made here (ids, payloads, columns
        # copied; 0.05 s for 399k points), written by `_finish` while writers go on (0.3 s).
        return _Staged(seq, path, info, self._changes, self._table.image())

    def _finish(self, staged: _Staged) -> None:
        """Make the staged files the checkpoint: the table's image, fsync, checksum, manifest (no lock needed)."""
        table_path = self._folder / f"table-{staged.seq}.bin.staged"  # removed by the next checkpoint after a crash
        try:
            table = Staged(table_path, write_arrays(table_path, *staged.table))
            write_checkpoint(self._folder, staged.seq, lambda tmp: os.replace(staged.path, tmp), staged.info, table)
        finally:  # moved in on success; on a failure, their space back
            staged.path.unlink(missing_ok=True)
            table_path.unlink(missing_ok=True)

    def _settle(self, staged: _Staged) -> None:
        """After the checkpoint is on disk (write mutex held): forget what it covers."""
        self._changes -= staged.changes
        self._after_build = False
        self._store.prune_tombstones(staged.seq)

    def _count_failure(self, err: Exception) -> None:
        self.failures["checkpoint"] += 1
        if is_disk_full(err):  # expected on a full disk, and said by the 507s too: no traceback
            log.warning("collection %s: checkpoint failed, disk full; the database has every write", self.config.name)
        else:
            log.exception("collection %s: checkpoint failed", self.config.name)

    # ---- bringing the graph up ----------------------------------------------------------------
    def _params(self) -> dict[str, int]:
        cfg = self.config
        return {
            "m": cfg.m,
            "ef_construction": cfg.ef_construction,
            "ef": cfg.ef,
            "threads": self._settings.index_threads,
        }

    def _bring_up(self, seq_of_slot: np.ndarray | None, checked: Checked | None = None) -> None:
        """Load the checkpoint and replay what it lacks, or (no checkpoint, or None: a rebuild) build anew."""
        name = self.config.name
        try:
            index, replay = (None, set()) if seq_of_slot is None else self._from_checkpoint(seq_of_slot, checked)
            loaded = index is not None
            if index is None:
                index, replay = self._build(), set()
            with self._write_mutex, self._rw.write():
                if self._stopping.is_set() or self.pending is None:
                    return
                self._replay(index, replay | self.pending)
                self.index, self.pending, self.state = index, None, "ready"
                # What no checkpoint covers yet: a close checkpoints it even before the checkpointer wakes.
                self._changes += len(replay) if loaded else index.live_count
                self._after_build = (not loaded and index.live_count > 0) or self._due
            log.info(
                "collection %s: graph ready, %d points, %s",
                name,
                index.live_count,
                "loaded from its checkpoint" if loaded else "built from the database",
            )
            if self._after_build:
                self._wake.set()  # so the next start loads instead of rebuilding
        except Exception:
            self.failures["build"] += 1
            log.exception("collection %s: graph could not be built; exact search only", name)
            self.state = "failed"

    def _from_checkpoint(self, seq_of_slot: np.ndarray, checked: Checked | None) -> tuple[HnswIndex | None, set[int]]:
        """The checkpoint's graph and the slots to replay into it; (None, ∅) when it must be built. `checked`: the
        checkpoint as `check_checkpoint` read it, when the opening started that."""
        name, cfg = self.config.name, self.config
        try:
            found = read_checkpoint(self._folder) if checked is None else checked.result()
        except CorruptCheckpoint as err:
            log.warning("collection %s: %s; rebuilding the graph from the database", name, err)
            return None, set()
        if found is None:
            return None, set()
        path, manifest = found
        if (manifest.get("dim"), manifest.get("metric"), manifest.get("m")) != (cfg.dim, cfg.metric, cfg.m):
            log.warning("collection %s: checkpoint parameters differ from the collection's; rebuilding", name)
            return None, set()
        if not isinstance(manifest.get("seq"), int) or manifest["seq"] > self._store.seq:
            # Relaxed durability can lose the last commits to a power loss and keep a checkpoint that covers them:
            # its graph would hold points the database no longer has, and nothing would replay them away.
            log.warning("collection %s: checkpoint covers writes the database lacks; rebuilding", name)
            return None, set()
        try:
            # Graph capacity grows by doubling up to the nodes in use (a slot's, and dead ones), built ones start
            # at the exact matrix's (itself at most twice the slots): a file we wrote never exceeds this.
            room = max(1024, 4 * (len(seq_of_slot) + len(manifest["deleted"])))
            index = HnswIndex.load(
                path, cfg.dim, cfg.metric, deleted=manifest["deleted"], max_capacity=room, **self._params()
            )
            covered = int(manifest["seq"])
        except (ValueError, TypeError, KeyError, IndexError, RuntimeError, MemoryError) as err:  # a checksummed file
            # that hnswlib still refuses: crafted, or written by something else. The database has every point.
            log.warning("collection %s: checkpoint unusable (%s); rebuilding the graph from the database", name, err)
            return None, set()
        replay = set(np.flatnonzero(seq_of_slot > covered).tolist()) | set(self._store.tombstones_after(covered))
        return index, replay

    @property
    def _compaction_due(self) -> bool:
        index = self.reader
        return index is not None and index.dead_count >= max(COMPACT_AFTER, index.live_count)

    def _compact(self) -> None:
        """Rebuild the graph from the points, without dead nodes, while the old one serves; install it with
        the writes made meanwhile replayed (they reached the old graph too), and have it checkpointed."""
        old = self.index
        assert old is not None
        try:
            index = self._build(compacting=True)
            with self._write_mutex, self._rw.write():
                if self._stopping.is_set() or self.index is not old:
                    return
                self._replay(index, self._rebuilt or set())
                self.index, self._after_build = index, True
        finally:
            with self._rw.write():
                self._rebuilt = None
        log.info("collection %s: graph rebuilt without %d dead nodes", self.config.name, old.dead_count)

    def _build(self, *, compacting: bool = False) -> HnswIndex:
        exact = self._table.exact
        with self._rw.read():  # a snapshot; writes after it land in `pending` (or `_rebuilt`) and are replayed
            if compacting:
                self._rebuilt = set()
            slots = np.flatnonzero(exact.alive)
            vectors = exact.vectors(slots)
        cfg = self.config
        index = HnswIndex(cfg.dim, cfg.metric, capacity=max(1024, len(exact.alive)), **self._params())
        for start_at in range(0, len(slots), BUILD_CHUNK):
            if self._stopping.is_set():
                break
            index.upsert(slots[start_at : start_at + BUILD_CHUNK], vectors[start_at : start_at + BUILD_CHUNK])
        return index

    def _replay(self, index: HnswIndex, slots: set[int]) -> None:
        """Bring the graph level with the points for the slots written after its snapshot (write lock held)."""
        if not slots:
            return
        exact = self._table.exact
        touched = np.fromiter(slots, np.int64, len(slots))
        alive = np.zeros(len(touched), bool)
        inside = touched < exact.size
        alive[inside] = exact.alive[touched[inside]]
        index.delete(touched[~alive])
        index.upsert(touched[alive], exact.vectors(touched[alive]))

    @property
    def live_count(self) -> int:
        return self.index.live_count if self.reader is not None else 0  # type: ignore[union-attr]

    @property
    def nbytes(self) -> int:
        return self.index.nbytes if self.index is not None else 0
