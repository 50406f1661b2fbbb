"""Personalization: one collection's events, user profiles and ranker, and recommendations for a user."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from app.collections.view import Catalog
from app.core.errors import UserNotFound
from app.personalization import ranker_store
from app.personalization.config import EVENT_TYPES, RecommendConfig
from app.personalization.events import Row, clean
from app.personalization.items import Items, item_key, shard_items, view_items
from app.personalization.profiles import EventRows, Profiles
from app.personalization.ranker_store import Ranker
from app.search.models import Hit, Query

log = logging.getLogger(__name__)
TYPE_INDEX = {name: i for i, name in enumerate(EVENT_TYPES)}
ItemsOf = Callable[[Any, RecommendConfig], AbstractContextManager[Items]]  # (collection, settings) → its items
__all__ = ["Personalization", "Recommendations", "item_key"]


@dataclass(frozen=True)
class Recommendations:
    user: str
    path: str  # ranker | similarity | popular
    hits: list[Hit]
    candidates: int  # items considered before the cut to k
    excluded: int  # items left out because the user has interacted with them


def _iso(seconds: float) -> str | None:
    return datetime.fromtimestamp(seconds, UTC).isoformat() if np.isfinite(seconds) else None


class Personalization:
    """Events go to SQLite first, then into the profiles; profiles are rebuilt from the events on open.

    Profiles hold the vectors items had when their events arrived (and on open, the vectors they have
    then); an item deleted later keeps counting until the next restart, when its events are skipped.
    """

    def __init__(self, collection: Catalog, items_of: ItemsOf = view_items) -> None:
        """`items_of`: how the collection's items are read (default: through its read views)."""
        self.collection = collection
        self.config = RecommendConfig.of(collection.config.recommendation)
        self.items = functools.partial(items_of, collection, self.config)
        self.profiles = Profiles(collection.config.dim, self.config)
        self.lock = threading.Lock()  # guards the profiles
        self.training = threading.Lock()  # one training run at a time
        self.ranker: Ranker | None = ranker_store.load(collection.folder)

    @classmethod
    def attach(cls, collection: Catalog) -> Personalization:
        """The part factory the registry calls for each collection it opens: profiles rebuilt from its events."""
        personalization = cls(collection)
        personalization.load()
        return personalization

    @classmethod
    def attach_to_shards(cls, collection: Any) -> Personalization:
        """The same for a sharded collection (a Catalog for its events and folder, Shards for its items): its
        events are kept where it is routed, its items read from the shards."""
        personalization = cls(collection, shard_items)
        personalization.load()
        return personalization

    def close(self) -> None:
        """Nothing runs in the background: training runs on the caller's thread."""

    def reload(self) -> None:
        """Profiles made again from the events with the vectors items have now (after a switch of model), then
        swapped in. An event stored while the replay reads may miss the new profiles until the next start."""
        profiles = Profiles(self.collection.config.dim, self.config)
        self._replay(profiles)
        with self.lock:
            self.profiles = profiles

    def load(self) -> None:
        """Replay the stored events into fresh profiles; called once, before the collection serves."""
        self._replay(self.profiles)

    def _replay(self, profiles: Profiles) -> None:
        started = time.perf_counter()
        for chunk in self.collection.stored_events():
            with self.items() as items:  # per chunk: a long replay never holds readers or writers
                rows = self.event_rows(items, chunk)
            profiles.apply(rows)
        if profiles.event_count:
            log.info(
                "%s: %d events of %d users replayed in %.1f s",
                self.collection.name,
                profiles.event_count,
                len(profiles.user_ids),
                time.perf_counter() - started,
            )

    # ---- events -----------------------------------------------------------------------------
    def add_events(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """Clean, store durably, then fold into the profiles; returns the cleaning report."""
        with self.items() as items:
            keys = {item: item_key(item) for item in dict.fromkeys(event["item"] for event in events)}  # each once
            present = items.present(list(keys.values()))
            known = {item: key for item, key in keys.items() if key in present}  # ids are ints or strings: 7 ≠ "7"
            rows, origin, report = clean(events, known.get, time.time())
            info = self.event_rows(items, rows)
        fresh = self.collection.add_events(rows, [events[i].get("query") for i in origin])
        report.duplicates += fresh.count(False)
        report.accepted = fresh.count(True)
        keep = np.flatnonzero(fresh)
        with self.lock:
            self.profiles.apply(_subset(info, keep))
        return report.to_json()

    def event_rows(self, items: Items, rows: list[Row]) -> EventRows:
        """The rows whose item is stored, joined with their items' vectors, categories and prices."""
        fields = items.fields([r[1] for r in rows])
        if len(fields.keys) < len(rows):
            stored = set(fields.keys)
            rows = [r for r in rows if r[1] in stored]
        return EventRows(
            users=[r[0] for r in rows],
            items=[r[1] for r in rows],
            types=np.array([TYPE_INDEX[r[2]] for r in rows], np.int64),
            values=np.array([r[3] for r in rows]),
            times=np.array([r[4] for r in rows]),
            vectors=fields.vectors,
            categories=fields.categories,
            log_prices=fields.log_prices,
        )

    # ---- users ------------------------------------------------------------------------------
    def user(self, user: str, *, with_vector: bool = False) -> dict[str, Any]:
        with self.lock:
            p = self.profiles
            row = p.user_row.get(user)
            if row is None:
                raise UserNotFound(f"user {user!r} has no events in this collection", user=user)
            taste = p.taste_of(user)
            out: dict[str, Any] = {
                "user": user,
                "events": int(p.counts[row].sum()),
                "counts": {name: int(p.counts[row, i]) for i, name in enumerate(EVENT_TYPES)},
                "first_activity": _iso(p.first[row]),
                "last_activity": _iso(p.last[row]),
                "items": len(p.seen[row]),
                "has_taste": taste is not None,
                "top_categories": p.top_categories(user),
            }
            if with_vector:
                out["taste"] = None if taste is None else taste.tolist()
        return out

    def recommend(
        self, user: str, k: int, flt: dict[str, Any] | None, *, exclude_seen: bool = True, with_payload: bool = True
    ) -> Recommendations:
        """Taste-vector candidates from the index, re-ranked by the ranker when one is trained; popular
        items for a user with no taste yet. Items the user already touched are left out unless asked.
        """
        with self.lock:
            taste = self.profiles.taste_of(user)
            row = self.profiles.user_row.get(user)
            seen = set(self.profiles.seen[row]) if row is not None and exclude_seen else set()
        ranker = self.ranker
        with self.items() as items:
            if taste is None:
                hits = [Hit(orjson.loads(key), score) for key, score in self._popular(items, k, flt, seen)]
                items_known = self._item_count()
                return Recommendations(user, "popular", _payloads(items, hits, with_payload), items_known, len(seen))
            wide = min(max(4 * k, 100) + len(seen), self.collection.settings.max_ef)
            query = Query(vector=taste, k=wide, ef=max(wide, self.collection.config.ef), filter=flt, with_payload=False)
            hits = [h for h in items.nearest(query) if item_key(h.id) not in seen]
            if ranker is None:
                top = hits[:k]
                return Recommendations(user, "similarity", _payloads(items, top, with_payload), len(hits), len(seen))
            keys = [item_key(h.id) for h in hits]
            keys += [key for key, _ in self._popular(items, wide, flt, seen | set(keys))]
            keys, scores = self._score(items, ranker, user, keys)
            order = np.argsort(-scores, kind="stable")[:k]
            top = [Hit(orjson.loads(keys[j]), float(scores[j])) for j in order.tolist()]
            return Recommendations(user, "ranker", _payloads(items, top, with_payload), len(keys), len(seen))

    def _item_count(self) -> int:
        with self.lock:
            return len(self.profiles.item_keys)

    def _popular(self, items: Items, n: int, flt: dict[str, Any] | None, exclude: set[str]) -> list[tuple[str, float]]:
        with self.lock:
            return self.profiles.popular(n, lambda keys: items.matching(keys, flt), exclude)

    def _score(self, items: Items, ranker: Ranker, user: str, keys: list[str]) -> tuple[list[str], np.ndarray]:
        """The ranker's score of each candidate still stored (one deleted meanwhile on a shard drops out)."""
        fields = items.fields(keys)
        with self.lock:
            columns = self.profiles.features(user, fields.vectors, fields.keys, fields.categories, fields.log_prices)
        return fields.keys, ranker.score(columns)


def _payloads(items: Items, hits: list[Hit], with_payload: bool) -> list[Hit]:
    return items.with_payloads(hits) if with_payload and hits else hits


def _subset(rows: EventRows, keep: np.ndarray) -> EventRows:
    picked = keep.tolist()
    return EventRows(
        users=[rows.users[i] for i in picked],
        items=[rows.items[i] for i in picked],
        types=rows.types[keep],
        values=rows.values[keep],
        times=rows.times[keep],
        vectors=rows.vectors[keep],
        categories=[rows.categories[i] for i in picked],
        log_prices=rows.log_prices[keep],
    )
