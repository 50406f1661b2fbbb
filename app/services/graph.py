"""The graph's life cycle for a collection: load a checkpoint or build anew, replay, checkpoint."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np

from app.index.hnsw import HnswIndex
from app.storage.checkpoint import CorruptCheckpoint, read_checkpoint, write_checkpoint

if TYPE_CHECKING:
    from app.services.collection import Collection

log = logging.getLogger(__name__)


def start(c: Collection, seq_of_slot: np.ndarray) -> None:
    """Bring the graph up in a background thread; until then the planner answers exactly."""
    thread = threading.Thread(target=_bring_up, args=(c, seq_of_slot), name=f"graph-{c.name}", daemon=True)
    c.graph_thread = thread
    thread.start()


def wait(c: Collection, timeout: float | None = None) -> bool:
    """Block until the graph is up (or failed); False when `timeout` ran out first."""
    if c.graph_thread is not None:
        c.graph_thread.join(timeout)
    return c.graph_state != "building"


def _params(c: Collection) -> dict[str, int]:
    cfg = c.config
    return {"m": cfg.m, "ef_construction": cfg.ef_construction, "ef": cfg.ef, "threads": c.settings.index_threads}


def _bring_up(c: Collection, seq_of_slot: np.ndarray) -> None:
    try:
        index, replay = _from_checkpoint(c, seq_of_slot)
        source = "loaded from its checkpoint"
        if index is None:
            index, replay, source = _build(c), set(), "built from the database"
        rebuilt = index.live_count > 0 and source != "loaded from its checkpoint"
        with c.rw.write():
            if c.closed or c.pending is None:
                return
            _replay(c, index, replay | c.pending)
            c.hnsw, c.pending, c.graph_state = index, None, "ready"
        log.info("collection %s: graph ready, %d points, %s", c.name, index.live_count, source)
        if rebuilt or len(replay) >= c.settings.checkpoint_every:
            checkpoint(c)  # so the next start loads instead of rebuilding
    except Exception:
        log.exception("collection %s: graph could not be built; exact search only", c.name)
        c.graph_state = "failed"


def _from_checkpoint(c: Collection, seq_of_slot: np.ndarray) -> tuple[HnswIndex | None, set[int]]:
    try:
        found = read_checkpoint(c.folder)
    except CorruptCheckpoint as err:
        log.warning("collection %s: %s; rebuilding the graph from the database", c.name, err)
        return None, set()
    if found is None:
        return None, set()
    path, manifest = found
    cfg = c.config
    if (manifest.get("dim"), manifest.get("metric"), manifest.get("m")) != (cfg.dim, cfg.metric, cfg.m):
        log.warning("collection %s: checkpoint parameters differ from the collection's; rebuilding", c.name)
        return None, set()
    index = HnswIndex.load(path, cfg.dim, cfg.metric, deleted=manifest["deleted"], **_params(c))
    covered = int(manifest["seq"])
    replay = set(np.flatnonzero(seq_of_slot > covered).tolist()) | set(c.store.tombstones_after(covered))
    return index, replay


def _build(c: Collection) -> HnswIndex:
    with c.rw.read():  # a snapshot; writes after it land in c.pending and are replayed
        slots = np.flatnonzero(c.exact.alive)
        vectors = c.exact.vectors(slots)
    index = HnswIndex(c.config.dim, c.config.metric, capacity=max(1024, len(c.exact.alive)), **_params(c))
    chunk = 10_000  # chunks keep memory flat and let a shutdown interrupt between them
    for start_at in range(0, len(slots), chunk):
        if c.closed:
            break
        index.upsert(slots[start_at : start_at + chunk], vectors[start_at : start_at + chunk])
    return index


def _replay(c: Collection, index: HnswIndex, slots: set[int]) -> None:
    """Bring the graph level with memory for the slots written after its snapshot (write lock held)."""
    if not slots:
        return
    touched = np.fromiter(slots, np.int64, len(slots))
    alive = np.zeros(len(touched), bool)
    inside = touched < c.exact.size
    alive[inside] = c.exact.alive[touched[inside]]
    index.delete(touched[~alive])
    index.upsert(touched[alive], c.exact.vectors(touched[alive]))


def checkpoint(c: Collection) -> None:
    """Save the graph so that a restart loads it; readers continue, writers wait."""
    with c.checkpoint_lock, c.rw.read():
        if c.closed or c.hnsw is None or c.pending is not None:
            return
        seq = c.applied_seq
        info = {
            "dim": c.config.dim,
            "metric": c.config.metric,
            "m": c.config.m,
            "ef_construction": c.config.ef_construction,
            "count": c.hnsw.live_count,
            "deleted": c.hnsw.deleted_slots(),
        }
        write_checkpoint(c.folder, seq, c.hnsw.save, info)
        c.changes_since_checkpoint = 0
        c.store.prune_tombstones(seq)


def checkpoint_in_background(c: Collection) -> None:
    if c.checkpoint_lock.locked():
        return
    threading.Thread(target=checkpoint, args=(c,), name=f"checkpoint-{c.name}", daemon=True).start()
