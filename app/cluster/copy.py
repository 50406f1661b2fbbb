"""ShardCopy: one copy of one shard, a whole single-node Collection in its own folder, run as a Ray actor.

Everything a copy stores goes through Collection (SQLite with fsync first, then memory), so a copy is as
durable as a single-node collection, and a copy that restarts (its node came back) opens what it had.
The copy never embeds: the router embeds once and sends vectors, so every copy holds the same numbers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from app.collections.collection import Collection
from app.collections.layout import DB_FILE
from app.collections.models import CollectionConfig, Page, Point, PointId, Source
from app.core.config import Settings
from app.core.errors import NotReady
from app.embedding.factory import EmbedderPool
from app.search import searcher
from app.search.facets import Facets, facets
from app.search.models import Query, SearchResult
from app.search.tune import graph_answers


class ShardCopy:
    """The calls a sharded collection makes on one copy (Ray runs them on the node the copy was placed on)."""

    def __init__(self, folder: str, config: dict[str, Any], settings: dict[str, Any]) -> None:
        where, own = Path(folder), Settings(**settings)
        if (where / DB_FILE).exists():
            self.collection = Collection.open(where, own, EmbedderPool(None))
        else:
            self.collection = Collection.create(where, CollectionConfig.from_json(config), own)

    def upsert(
        self,
        seq: int,
        ids: list[PointId],
        vectors: np.ndarray,
        payloads: list[dict[str, Any] | None],
        sources: list[Source | None] | None,
    ) -> int:
        return self.collection.upsert(ids, vectors, payloads, sources, seq=seq)

    def delete(self, seq: int, ids: list[PointId]) -> tuple[int, int]:
        return self.collection.delete(ids, seq)

    def delete_by_filter(self, seq: int, flt: dict[str, Any]) -> tuple[int, int]:
        return self.collection.delete_by_filter(flt, seq)

    def changes_since(self, seq: int) -> tuple[int, list[Point], list[PointId]]:
        return self.collection.changes_since(seq)

    def catch_up(self, seq: int, points: list[Point], ids: list[PointId]) -> int:
        """Become what a fresh copy was at batch `seq`: take the points it wrote after this copy's last batch and
        drop what it no longer holds. Batches are one kind (upsert or delete), so a gap holding both spans at
        least two numbers and the deletes can take one below `seq`."""
        held = set(ids)
        with self.collection.reading() as view:
            gone = [pid for pid in view.ids(view.live_slots().tolist()) if pid not in held]
        if gone and points:
            self.collection.delete(gone)
        if points:
            vectors = np.stack([p.vector for p in points])
            payloads = [None if p.payload_json is None else orjson.loads(p.payload_json) for p in points]
            sources = [p.source for p in points]
            return self.collection.upsert([p.id for p in points], vectors, payloads, sources, seq=seq)
        return self.collection.delete(gone, seq)[1]

    def get(self, ids: list[PointId], with_payload: bool, with_vector: bool, with_source: bool) -> list[Point]:
        """The stored points among the ids (the router says which are missing: it asked every shard)."""
        with self.collection.reading() as view:
            held = [pid for pid in ids if pid in view]
        return self.collection.get(held, with_payload=with_payload, with_vector=with_vector, with_source=with_source)

    def matching(self, ids: list[PointId], flt: dict[str, Any]) -> list[PointId]:
        """The stored points among the ids that pass the filter."""
        with self.collection.reading() as view:
            mask = view.mask(flt)
            return [pid for pid in ids if (slot := view.slot_of(pid)) is not None and bool(mask[slot])]

    def count(self, flt: dict[str, Any] | None) -> int:
        return self.collection.count_matching(flt)

    def scroll(self, flt: dict[str, Any] | None, limit: int, offset: int | None, **wanted: bool) -> Page:
        return self.collection.scroll(flt, limit, offset, **wanted)

    def facets(self, key: str, flt: dict[str, Any] | None, limit: int) -> Facets:
        return facets(self.collection, key, flt, limit)

    def search(self, queries: list[Query]) -> list[SearchResult]:
        """Vector queries (the router embedded them), each answered by this copy's planner and index."""
        return searcher.search(self.collection, queries)

    def sample(self, n: int, seed: int) -> tuple[list[PointId], np.ndarray]:
        """Up to n stored points (ids, vectors as stored), drawn at random: queries for tune."""
        with self.collection.reading() as view:
            live = view.live_slots()
            chosen = np.random.default_rng(seed).choice(live, size=min(n, len(live)), replace=False)
            return view.ids(chosen.tolist()), view.vectors(chosen)

    def graph_search(self, vectors: np.ndarray, want: int, ef: int) -> list[list[tuple[float, PointId]]]:
        """Each query's `want` best (score, id) straight from the graph at this ef (no planner): what tune
        measures. 503 while the graph is not up."""
        with self.collection.reading() as view:
            if view.graph is None:
                raise NotReady(f"a copy of '{view.name}' has no graph yet (being built)")
            slots, scores = graph_answers(view.graph, vectors, want, ef)
            return [
                [(float(score), pid) for slot, score in zip(row, row_scores, strict=True) if slot >= 0
                 for pid in view.ids([int(slot)])]
                for row, row_scores in zip(slots.tolist(), scores.tolist(), strict=True)
            ]  # fmt: skip

    def set_default_ef(self, ef: int) -> None:
        self.collection.set_default_ef(ef)

    def live_ids(self) -> tuple[int, list[PointId]]:
        return self.collection.live_ids()

    def ids_written_since(self, seq: int) -> list[str]:
        """The keys of the points batches after `seq` wrote (a model switch embeds their texts again)."""
        return self.collection.ids_written_since(seq)

    def source_kinds(self, keys: list[str]) -> dict[str, str]:
        return self.collection.source_kinds(keys)

    def stored_sources(self, keys: list[str]) -> dict[str, Source]:
        return self.collection.stored_sources(keys)

    def replace_vectors(self, seq: int, ids: list[PointId], vectors: np.ndarray) -> int:
        """New vectors for stored points (a switch of model), in one batch numbered `seq`."""
        return self.collection.replace_vectors(dict(zip(ids, vectors, strict=True)), seq=seq)

    def configure(self, payload_indexes: dict[str, Any], lexical: dict[str, Any] | None) -> None:
        """Make this copy's payload indexes and keyword fields what the router's config says (each change built in
        the background, as on one node); nothing to do when they are already. Called in the write order."""
        config = self.collection.config
        for key in set(config.payload_indexes) - set(payload_indexes):
            self.collection.drop_field_index(key)
        for key, kind in payload_indexes.items():
            self.collection.index_field(key, kind)  # no-op when it has that type already
        if config.lexical != lexical:
            self.collection.set_lexical(lexical)

    def state(self) -> dict[str, Any]:
        import ray

        info = self.collection.info()
        return {
            "seq": info["seq"],  # the last batch applied: its shard's number
            "count": info["count"],
            "index_state": info["index_state"],
            "lexical_state": info["lexical_state"],
            "lexical_progress": info["lexical_progress"],
            "payload_index_builds": info["payload_index_builds"],
            "payload_indexes": info["payload_indexes"],
            "lexical": info["lexical"],
            "failures": self.collection.failures,
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
        }

    def close(self) -> None:
        self.collection.close()
