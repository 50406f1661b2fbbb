"""The interfaces the layers above use: ReadView (one consistent read of a collection) and Catalog.

Search, recall, tune, recommendations and personalization talk to a collection only through these,
never through its fields or locks, so a sharded collection can stand in by implementing the same two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import orjson

from app.collections.models import CollectionConfig, Point, PointId, Source
from app.collections.points import PointTable
from app.core.config import Settings
from app.core.errors import DimensionMismatch, InvalidVector
from app.embedding.base import Embedder, Modality
from app.index.base import prepare, row_norms
from app.index.hnsw import HnswIndex
from app.index.payload import FacetValue
from app.index.tokens import match_expression

T = TypeVar("T")
EventRow = tuple[str, str, str, float, float]  # user, item key, type, value, time — as the store keeps them
QueriedEvent = tuple[str, str, str, float, str]  # user, item key, type, time, the search words behind it
LexicalSearch = Callable[[str, int | None], list[tuple[int, str, float]]]  # FTS5 query, limit → (slot, id, BM25)


class WouldBlock(Exception):
    """A non-blocking read found a writer in the way; retry off the event loop."""


# Components up to this keep every score finite in float32 (3.4e38) at any dim the API allows (≤ 8192):
# |a·b| ≤ |a||b| ≤ 8192 × 1e15² ≈ 8e33, and squared L2 distances at most four times that.
MAX_COMPONENT = 1e15


def prepare_vectors(config: CollectionConfig, vectors: np.ndarray, expected: int) -> np.ndarray:
    """Check shape and values against the collection and normalise for its metric; 400s for bad vectors."""
    if vectors.ndim != 2 or vectors.shape[1] != config.dim or len(vectors) != expected:
        got = vectors.shape[-1] if vectors.ndim == 2 and len(vectors) == expected else None
        raise DimensionMismatch(
            f"collection '{config.name}' holds {config.dim}-dimensional vectors"
            + (f", got {got}" if got is not None else f", got {vectors.size} numbers for {expected} vector(s)"),
            expected=config.dim,
            got=got,
        )
    peaks = np.abs(vectors).max(axis=1) if vectors.size else np.zeros(len(vectors), np.float32)
    if not (peaks <= MAX_COMPONENT).all():  # NaN compares false, so NaN lands here too
        bad = int(np.flatnonzero(~(peaks <= MAX_COMPONENT))[0])
        if np.isfinite(peaks[bad]):
            raise InvalidVector(
                f"vector #{bad} has a component beyond ±{MAX_COMPONENT:.0e}: its scores would overflow float32",
                index=bad,
            )
        raise InvalidVector(f"vector #{bad} contains NaN or infinity", index=bad)
    if config.metric != "cosine":
        return prepare(vectors, config.metric)
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = row_norms(out)  # once, for the check and the division (what `prepare` does)
    if not norms.all():
        bad = int(np.flatnonzero(norms == 0)[0])
        raise InvalidVector(f"vector #{bad} is all zeros: a cosine collection cannot rank it", index=bad)
    return out / norms


class ReadView:
    """What a reader may see of a collection while it holds a read (or quiesced) view: nothing changes under it.

    Points are addressed by slot (an int per live point, stable while the view is held). `graph` is the
    HNSW index when it is ready, else None (the planner then answers exactly). Valid only inside its `with`.
    """

    def __init__(
        self,
        config: CollectionConfig,
        settings: Settings,
        table: PointTable,
        graph: HnswIndex | None,
        seq: int,
        lexical: LexicalSearch,
    ) -> None:
        self.config, self.settings, self.graph, self.seq = config, settings, graph, seq
        self._table, self._lexical = table, lexical

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def count(self) -> int:
        return self._table.count

    def slot_of(self, pid: PointId) -> int | None:
        return self._table.slot_of.get(pid)

    def __contains__(self, pid: PointId) -> bool:
        return pid in self._table.slot_of

    def live_slots(self) -> np.ndarray:
        return np.fromiter(self._table.slot_of.values(), np.int64, self._table.count)

    def ids(self, slots: list[int]) -> list[PointId]:
        ids = self._table.ids
        return [ids[s] for s in slots]  # type: ignore[misc]

    def payloads(self, slots: list[int]) -> list[bytes | None]:
        payloads = self._table.payloads
        return [payloads[s] for s in slots]

    def vectors(self, slots: np.ndarray) -> np.ndarray:
        """Stored vectors of the slots, as prepared for the metric (unit length for cosine)."""
        return self._table.exact.vectors(np.asarray(slots, np.int64))

    def points(self, slots: list[int], *, with_payload: bool, with_vector: bool) -> list[Point]:
        return self._table.points(slots, with_payload, with_vector)

    def mask(self, flt: dict[str, Any] | None) -> np.ndarray:
        """One bool per slot: a live point matching the filter (every live point without one); read-only."""
        if flt:
            return self._table.mask(flt, self._text_slots, strict=self.config.strict)
        alive = self._table.exact.alive.view()  # no copy of every slot for an unfiltered page
        alive.flags.writeable = False
        return alive

    def selection(self, flt: dict[str, Any]) -> np.ndarray | None:
        """The live slots that pass the filter (ascending, read-only) when the payload indexes list them without a
        mask: a keyword's match or any narrows it to no more points than the planner searches exactly. None for
        any other filter: use `mask`."""
        return self._table.selection(flt, self.settings.filtered_exact_max_floats // max(self.config.dim, 1))

    def mask_of(self, slots: np.ndarray) -> np.ndarray:
        """The mask (read-only) of the given slots, as `mask` makes it for the filter they came from."""
        out = np.zeros(self._table.size, dtype=bool)
        out[slots] = True
        out.flags.writeable = False
        return out

    def selected(self, mask: np.ndarray) -> np.ndarray:
        """The slots a mask made by `mask()` selects (`np.flatnonzero`), kept beside the mask while it is cached."""
        return self._table.masks.slots(mask)

    def scans(self, flt: dict[str, Any] | None) -> bool:
        """Whether the filter reads payloads (a field without an index, is_null, text) rather than indexes alone."""
        return bool(flt) and self._table.payload_index.needs_scan(flt)  # type: ignore[arg-type]

    def facet(self, key: str, selected: np.ndarray, limit: int) -> list[tuple[FacetValue, int]]:
        """The most frequent values of a payload field among the selected slots, with counts (a field without an
        index is counted from the payloads, unless the collection is strict)."""
        payloads = None if self.config.strict else self._table.payloads
        return self._table.payload_index.facet(key, selected, limit, payloads)

    def _text_slots(self, key: str, text: str) -> np.ndarray | None:
        """A bool per slot: the keyword document holds every word of the text; None when the keyword index does
        not hold the field (no index, or other fields), so every point must be checked."""
        if key not in self.config.lexical_fields:
            return None
        match = match_expression(text, every=True)
        out = np.zeros(self._table.size, dtype=bool)
        if match is not None:
            out[[slot for slot, _ in self._visible(self._lexical(match, None), None)]] = True
        return out

    def keywords(self, key: str, slots: np.ndarray) -> list[str | None] | None:
        """A keyword-indexed field's values at the slots; None when the field has no keyword index."""
        return self._table.payload_index.keywords(key, slots)

    def numbers(self, key: str, slots: np.ndarray) -> np.ndarray | None:
        """A numeric-indexed field's values at the slots (NaN where absent); None without such an index."""
        return self._table.payload_index.numbers(key, slots)

    def exact_search(
        self, vectors: np.ndarray, k: int, candidates: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(slots, scores) of the k best among `candidates` (every live point when None), best first."""
        return self._table.exact.search(vectors, k, candidates)

    def lexical_search(self, text: str, k: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(slots, BM25 scores) of the k best keyword matches for the text among the points the mask keeps,
        best first; empty when the text has no words or the collection keeps no keyword index."""
        match = match_expression(text)
        if match is None or not self.config.lexical:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        limit: int | None = k if mask is None else 4 * k
        while True:
            rows = self._lexical(match, limit)
            kept = self._visible(rows, mask)
            if len(kept) >= k or limit is None or len(rows) < limit:
                break
            limit = None  # a selective filter left too few: read every match
        kept = kept[:k]
        return np.array([s for s, _ in kept], np.int64), np.array([v for _, v in kept], np.float32)

    def _visible(self, rows: list[tuple[int, str, float]], mask: np.ndarray | None) -> list[tuple[int, float]]:
        """The rows of points this view holds (and the mask keeps). The index is read from SQLite, which a writer
        commits to before it swaps memory: a row whose id is not the one this view holds at its slot belongs to
        a batch the view cannot see yet."""
        ids = self._table.ids
        return [
            (slot, score)
            for slot, key, score in rows
            if slot < len(ids)
            and ids[slot] is not None
            and orjson.dumps(ids[slot]).decode() == key
            and (mask is None or mask[slot])
        ]

    def check_vectors(self, vectors: np.ndarray, expected: int) -> np.ndarray:
        return prepare_vectors(self.config, vectors, expected)


class Part(Protocol):
    """Something an upper layer keeps per collection (a recall monitor, personalization); closed with it."""

    def close(self) -> None: ...


class Catalog(Protocol):
    """A collection as the layers above see it: a name, a config, views, and the few writes they make."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> CollectionConfig: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def folder(self) -> Path: ...

    @property
    def embedder(self) -> Embedder | None: ...

    def reading(self) -> AbstractContextManager[ReadView]:
        """A read view: writers wait for it, and it waits for a writer already queued (short reads)."""
        ...

    def try_reading(self) -> AbstractContextManager[ReadView]:
        """A read view at once, or WouldBlock when a writer holds or awaits the lock."""
        ...

    def quiesced(self) -> AbstractContextManager[ReadView]:
        """A view of a collection at rest: writers wait, other readers go on (long reads)."""
        ...

    def embed(self, modality: Modality, items: list[Any], ids: list[PointId] | None = None) -> np.ndarray: ...

    def wait_for_graph(self, timeout: float) -> bool:
        """Block until the graph is up (or its build failed), at most `timeout` seconds; False if still building."""
        ...

    def set_default_ef(self, ef: int) -> None: ...

    def part(self, kind: type[T]) -> T: ...

    def find_part(self, kind: type[T]) -> T | None: ...

    def stored_events(self) -> Iterator[list[EventRow]]: ...

    def add_events(self, rows: list[EventRow], queries: list[str | None] | None = None) -> list[bool]: ...

    def queried_events(self) -> list[QueriedEvent]: ...

    def log_searches(self, searches: list[tuple[str, list[PointId]]]) -> None: ...

    def search_log(self) -> list[tuple[float, str, list[PointId]]]: ...

    def stored_sources(self, keys: list[str]) -> dict[str, Source]: ...

    def source_kinds(self, keys: list[str]) -> dict[str, str]: ...

    def live_ids(self) -> tuple[Any, list[PointId]]:
        """(where the collection stood, to give switch_embedder as `as_of`; the id of every stored point then)."""
        ...

    def found(self, ids: list[PointId], *, with_payload: bool, with_vector: bool) -> list[Point]: ...

    def embedder_for(self, spec: dict[str, Any]) -> Embedder: ...

    def switch_embedder(
        self, spec: dict[str, Any], embedder: Embedder, vectors: dict[PointId, np.ndarray], as_of: Any
    ) -> Any: ...
