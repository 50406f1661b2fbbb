"""The items personalization reads, asked by key (an id as JSON) in batches: one collection through a read view,
or a sharded collection through its shards. A batch of keys is one call, so the shards are asked once per batch,
never once per key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import orjson

from app.collections.models import CollectionConfig, Point, PointId
from app.collections.view import Catalog, ReadView
from app.personalization.config import RecommendConfig
from app.search.models import Hit, Query, SearchResult
from app.search.recall import RecallMonitor
from app.search.searcher import run_queries


def item_key(pid: PointId) -> str:
    """An item's key in the event log: its id as JSON (so 7 and "7" stay apart)."""
    return orjson.dumps(pid).decode()


@dataclass(frozen=True)
class ItemFields:
    """What profiles and the ranker need of items: the stored ones among the keys asked, in their order."""

    keys: list[str]  # the keys asked whose item is stored (a repeated key repeated)
    vectors: np.ndarray  # (n, dim), as the collection stores them
    categories: list[str | None]
    log_prices: np.ndarray  # NaN where an item has no price


class Items(Protocol):
    def present(self, keys: list[str]) -> set[str]:
        """The keys of stored items among these."""
        ...

    def fields(self, keys: list[str]) -> ItemFields:
        """Vectors, categories and prices of the stored items among these (one read: no `present` first)."""
        ...

    def nearest(self, query: Query) -> list[Hit]:
        """The query's hits, as a search of the collection finds them."""
        ...

    def matching(self, keys: list[str], flt: dict[str, Any] | None) -> set[str]:
        """The keys of stored items among these that pass the filter (all stored ones when there is none)."""
        ...

    def with_payloads(self, hits: list[Hit]) -> list[Hit]: ...


class ViewItems:
    """Items of one collection, through one read view held for the caller's block."""

    def __init__(self, view: ReadView, config: RecommendConfig, monitor: RecallMonitor | None) -> None:
        self.view, self.config, self.monitor = view, config, monitor

    def present(self, keys: list[str]) -> set[str]:
        return {key for key in keys if orjson.loads(key) in self.view}

    def fields(self, keys: list[str]) -> ItemFields:
        """Categories and prices from the payload indexes, which creation requires for both fields (parsing every
        payload's JSON here cost 12 % of event ingest); a field not indexed (a collection made before that rule)
        is read from the JSON."""
        view = self.view
        found = [(key, slot) for key in keys if (slot := view.slot_of(orjson.loads(key))) is not None]
        slots = np.array([slot for _, slot in found], np.int64)
        cat_field, price_field = self.config.category_field, self.config.price_field
        categories = view.keywords(cat_field, slots) if cat_field else [None] * len(slots)
        prices = view.numbers(price_field, slots) if price_field else np.full(len(slots), np.nan)
        if categories is None or prices is None:
            payloads = [orjson.loads(raw) if raw else {} for raw in view.payloads(slots.tolist())]
            categories = categories if categories is not None else _categories(self.config, payloads)
            prices = prices if prices is not None else _prices(self.config, payloads)
        vectors = view.vectors(slots) if len(slots) else np.zeros((0, view.config.dim), np.float32)
        return ItemFields([key for key, _ in found], vectors, categories, _log(prices))

    def nearest(self, query: Query) -> list[Hit]:
        return list(run_queries(self.view, [query], self.monitor)[0].hits)

    def matching(self, keys: list[str], flt: dict[str, Any] | None) -> set[str]:
        mask = self.view.mask(flt) if flt else None
        found = ((key, self.view.slot_of(orjson.loads(key))) for key in keys)
        return {key for key, slot in found if slot is not None and (mask is None or bool(mask[slot]))}

    def with_payloads(self, hits: list[Hit]) -> list[Hit]:
        payloads = self.view.payloads([self.view.slot_of(h.id) for h in hits])  # type: ignore[misc]
        return [Hit(h.id, h.score, payload) for h, payload in zip(hits, payloads, strict=True)]


class Shards(Protocol):
    """What a sharded collection offers that ShardItems asks (app/cluster/sharded.py)."""

    @property
    def config(self) -> CollectionConfig: ...

    def found(self, ids: list[PointId], *, with_payload: bool, with_vector: bool) -> list[Point]: ...

    def search(self, queries: list[Query]) -> list[SearchResult]: ...

    def matching(self, ids: list[PointId], flt: dict[str, Any]) -> list[PointId]: ...


class ShardItems:
    """Items of a sharded collection: each batch of keys is one call to every shard that holds some of them."""

    def __init__(self, shards: Shards, config: RecommendConfig) -> None:
        self.shards, self.config, self.dim = shards, config, shards.config.dim

    def _points(self, keys: list[str], *, with_payload: bool, with_vector: bool) -> dict[str, Point]:
        found = self.shards.found([orjson.loads(k) for k in keys], with_payload=with_payload, with_vector=with_vector)
        return {item_key(p.id): p for p in found}

    def present(self, keys: list[str]) -> set[str]:
        return set(self._points(keys, with_payload=False, with_vector=False))

    def fields(self, keys: list[str]) -> ItemFields:
        points = self._points(keys, with_payload=True, with_vector=True)
        stored = [key for key in keys if key in points]
        payloads = [orjson.loads(raw) if (raw := points[key].payload_json) else {} for key in stored]
        vectors = np.array([points[key].vector for key in stored], np.float32).reshape(len(stored), self.dim)
        return ItemFields(stored, vectors, _categories(self.config, payloads), _log(_prices(self.config, payloads)))

    def nearest(self, query: Query) -> list[Hit]:
        return list(self.shards.search([query])[0].hits)

    def matching(self, keys: list[str], flt: dict[str, Any] | None) -> set[str]:
        if not flt:
            return self.present(keys)
        return {item_key(pid) for pid in self.shards.matching([orjson.loads(k) for k in keys], flt)}

    def with_payloads(self, hits: list[Hit]) -> list[Hit]:
        points = self._points([item_key(h.id) for h in hits], with_payload=True, with_vector=False)
        return [Hit(h.id, h.score, point.payload_json if (point := points.get(item_key(h.id))) else None) for h in hits]


def view_items(collection: Catalog, config: RecommendConfig) -> AbstractContextManager[Items]:
    """Items of one collection, through a read view held while the block runs."""

    @contextmanager
    def held() -> Iterator[Items]:
        with collection.reading() as view:
            yield ViewItems(view, config, collection.find_part(RecallMonitor))

    return held()


def shard_items(shards: Shards, config: RecommendConfig) -> AbstractContextManager[Items]:
    """Items of a sharded collection; nothing is held between calls."""
    return nullcontext(ShardItems(shards, config))


def _categories(config: RecommendConfig, payloads: list[dict[str, Any]]) -> list[str | None]:
    field = config.category_field
    return [c if field and isinstance(c := p.get(field), str) else None for p in payloads]


def _prices(config: RecommendConfig, payloads: list[dict[str, Any]]) -> np.ndarray:
    field = config.price_field
    return np.array([_number(p.get(field)) if field else np.nan for p in payloads], dtype=float).reshape(-1)


def _log(prices: np.ndarray) -> np.ndarray:
    return np.where(prices > 0, np.log(np.where(prices > 0, prices, 1.0)), np.nan)  # NaN > 0 is False


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else np.nan
