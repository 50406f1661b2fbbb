"""HnswIndex: the one place that knows hnswlib's quirks."""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import hnswlib
import numpy as np

from app.index.base import IncompleteResult, Metric

_SHORTFALL = "Cannot return the results in a contiguous 2D array"
_ABSENT, _LIVE, _DELETED = 0, 1, 2
# A graph node's label is its slot in the low 32 bits and the slot's generation above them: a point given a
# new vector gets a new node (its old one marked deleted) instead of hnswlib's in-place update, which repairs
# every neighbour's links and inserts 10x slower (benchmarks/RESULTS.md, "Re-upserting stored points").
_SLOT_BITS = 32
_SLOT_INT_MASK = (1 << _SLOT_BITS) - 1  # for the Python ints hnswlib hands a filter
_SLOT_MASK = np.uint64(_SLOT_INT_MASK)
_NEXT_GENERATION = np.uint64(1 << _SLOT_BITS)


class HnswIndex:
    """An hnswlib graph whose nodes belong to our slots.

    Quirks handled here: capacity grows geometrically (hnswlib has a fixed maximum), `k` is clamped
    to the live count (hnswlib raises otherwise), `ef` is kept ≥ k and remembered (hnswlib does not
    save it), deleting twice is harmless (hnswlib raises), replacing a vector adds a node under a new
    label and retires the old one (`dead_count` says how many such nodes the graph still carries), and
    the distances hnswlib returns become the metric's scores.
    """

    def __init__(
        self,
        dim: int,
        metric: Metric,
        *,
        m: int,
        ef_construction: int,
        ef: int,
        capacity: int = 1024,
        threads: int = 1,
        graph: hnswlib.Index | None = None,
    ) -> None:
        self.dim, self.metric, self.m, self.ef_construction, self.ef = dim, metric, m, ef_construction, ef
        self.threads = threads
        if graph is None:
            graph = hnswlib.Index(space=metric, dim=dim)
            graph.init_index(max_elements=capacity, M=m, ef_construction=ef_construction, random_seed=100)
        self._graph = graph
        self._graph.set_ef(ef)
        # Per slot: whether it has a live node (hnswlib cannot tell us whether a label is deleted), and the
        # label of its newest node.
        self._state = np.zeros(capacity, dtype=np.int8)
        self._label = np.zeros(capacity, dtype=np.uint64)
        self._dead: list[int] = []  # labels of the nodes marked deleted
        self._live = 0
        # set_ef + knn_query must be one step: hnswlib keeps ef in the shared index object.
        self._query_lock = threading.Lock()

    @classmethod
    def load(
        cls, path: Path, dim: int, metric: Metric, *, deleted: list[int], max_capacity: int, **params: int
    ) -> HnswIndex:
        """Open a checkpoint written by `save`; `deleted` lists the labels marked deleted in it. ValueError
        for a file whose header does not describe such a graph with room for at most `max_capacity` elements
        (checked before hnswlib allocates by it)."""
        check_graph_file(path, dim, params["m"], max_capacity)
        graph = hnswlib.Index(space=metric, dim=dim)
        graph.load_index(str(path))
        labels = np.asarray(graph.get_ids_list(), dtype=np.uint64)
        slots = (labels & _SLOT_MASK).astype(np.int64)
        index = cls(dim, metric, graph=graph, capacity=int(slots.max(initial=-1)) + 1, **params)
        np.maximum.at(index._label, slots, labels)  # a slot's newest node has the highest generation
        dead = np.isin(labels, np.asarray(deleted, dtype=np.uint64))
        index._state[slots[dead]] = _DELETED
        index._state[slots[~dead]] = _LIVE  # only a slot's newest node can be live
        index._dead = labels[dead].tolist()
        index._live = int(np.count_nonzero(~dead))
        return index

    def save(self, path: Path) -> None:
        self._graph.save_index(str(path))

    def deleted_labels(self) -> list[int]:
        return list(self._dead)

    @property
    def live_count(self) -> int:
        return self._live

    @property
    def dead_count(self) -> int:
        """Nodes marked deleted that the graph still holds (searches step over them; a rebuild drops them)."""
        return len(self._dead)

    @property
    def nbytes(self) -> int:
        return int(self._graph.index_file_size()) + self._state.nbytes + self._label.nbytes

    def upsert(self, slots: np.ndarray, vectors: np.ndarray) -> None:
        """Add or replace `vectors` as `prepare` made them; `slots` must be unique within the call."""
        if len(slots) == 0:
            return
        slots = np.asarray(slots, dtype=np.int64)
        self._ensure_slots(int(slots.max()) + 1)
        state = self._state[slots]
        self._retire(slots[state == _LIVE])
        labels = np.where(state == _ABSENT, slots.astype(np.uint64), self._label[slots] + _NEXT_GENERATION)
        self._ensure_nodes(self._graph.get_current_count() + len(slots))
        self._graph.add_items(np.ascontiguousarray(vectors, np.float32), labels, num_threads=self.threads)
        self._label[slots] = labels
        self._live += int(np.count_nonzero(state != _LIVE))
        self._state[slots] = _LIVE

    def delete(self, slots: np.ndarray) -> None:
        slots = np.unique(np.asarray(slots, dtype=np.int64))
        slots = slots[slots < len(self._state)]
        slots = slots[self._state[slots] == _LIVE]
        self._retire(slots)
        self._state[slots] = _DELETED
        self._live -= len(slots)

    def _retire(self, slots: np.ndarray) -> None:
        """Mark the live nodes of `slots` deleted (the caller updates their state)."""
        for label in self._label[slots].tolist():
            self._graph.mark_deleted(label)
            self._dead.append(label)

    def search(
        self, queries: np.ndarray, k: int, *, ef: int | None = None, allowed: bytearray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best k slots and scores per query; `allowed[slot]` truthy admits a slot (filter in the graph)."""
        q = np.atleast_2d(queries)
        k = min(k, self._live)
        if k == 0:
            return np.empty((len(q), 0), np.int64), np.empty((len(q), 0), np.float32)
        admit = None
        if allowed is not None:  # hnswlib passes labels; a slot's later nodes carry its generation above it
            admit = allowed.__getitem__ if not self._dead else lambda label: allowed[label & _SLOT_INT_MASK]
        with self._query_lock:
            self._graph.set_ef(max(ef or self.ef, k))
            try:
                labels, distances = self._graph.knn_query(q, k=k, filter=admit, num_threads=self.threads)
            except RuntimeError as err:
                if _SHORTFALL in str(err):
                    raise IncompleteResult(str(err)) from err
                raise
        return (labels & _SLOT_MASK).astype(np.int64), _scores(distances, self.metric)

    def _ensure_slots(self, needed: int) -> None:
        if needed <= len(self._state):
            return
        capacity = max(needed, 2 * len(self._state))
        self._state = np.concatenate([self._state, np.zeros(capacity - len(self._state), np.int8)])
        self._label = np.concatenate([self._label, np.zeros(capacity - len(self._label), np.uint64)])

    def _ensure_nodes(self, needed: int) -> None:
        capacity = self._graph.get_max_elements()
        if needed > capacity:
            self._graph.resize_index(max(needed, 2 * capacity))


# hnswlib 0.8's saveIndex header: offsetLevel0, max_elements, cur_element_count, size_data_per_element,
# label_offset, offsetData (size_t each), maxlevel (int), enterpoint_node (uint32), maxM, maxM0, M (size_t),
# mult (double), ef_construction (size_t).
_HEADER = struct.Struct("<QQQQQQiIQQQdQ")


def check_graph_file(path: Path, dim: int, m: int, max_capacity: int) -> None:
    """Refuse a graph file whose header disagrees with the collection or with its own size. hnswlib trusts
    the header: a crafted max_elements makes it allocate that many elements' memory before reading a thing."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise ValueError(f"{path.name}: {size} bytes, shorter than a graph header")
    level0, capacity, count, per_element, label_at, data_at, top_level, entry, max_m, max_m0, links, _, _ = (
        _HEADER.unpack(head)
    )
    links0 = 2 * m * 4 + 4  # level-0 link list: a count, then up to 2m neighbours (uint32)
    expected = {
        "M": (links, m),
        "maxM": (max_m, m),
        "maxM0": (max_m0, 2 * m),
        "offsetLevel0": (level0, 0),
        "offsetData": (data_at, links0),
        "label_offset": (label_at, links0 + 4 * dim),
        "size_data_per_element": (per_element, links0 + 4 * dim + 8),
    }
    wrong = [name for name, (got, want) in expected.items() if got != want]
    if wrong:
        raise ValueError(f"{path.name}: header fields {wrong} do not match a {dim}-d graph with m={m}")
    if not count <= capacity <= max_capacity:
        raise ValueError(f"{path.name}: header says {count} elements in room for {capacity} (at most {max_capacity})")
    if size < _HEADER.size + count * (per_element + 4) or (count and not (entry < count and 0 <= top_level < 64)):
        raise ValueError(f"{path.name}: header does not fit the file ({count} elements in {size} bytes)")


def _scores(distances: np.ndarray, metric: Metric) -> np.ndarray:
    if metric == "l2":  # hnswlib returns the squared Euclidean distance
        return np.sqrt(np.maximum(distances, 0)).astype(np.float32)
    return (1.0 - distances).astype(np.float32)  # cosine and ip: hnswlib returns 1 - dot
