"""Feedback: one collection's events, user profiles and ranker, and recommendations for a user."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from app.core.errors import UserNotFound
from app.services import ranker as ranker_store
from app.services.events import Row, clean
from app.services.models import EVENT_TYPES, Hit, PointId, Query
from app.services.profiles import EventRows, Profiles
from app.services.searcher import run_queries

if TYPE_CHECKING:
    from app.services.collection import Collection
    from app.services.ranker import Ranker

log = logging.getLogger(__name__)
TYPE_INDEX = {name: i for i, name in enumerate(EVENT_TYPES)}


@dataclass(frozen=True)
class Recommendations:
    user: str
    path: str  # ranker | similarity | popular
    hits: list[Hit]
    candidates: int  # items considered before the cut to k
    excluded: int  # items left out because the user has interacted with them


def _iso(seconds: float) -> str | None:
    return datetime.fromtimestamp(seconds, UTC).isoformat() if np.isfinite(seconds) else None


class Feedback:
    """Events go to SQLite first, then into the profiles; profiles are rebuilt from the events on open.

    Profiles hold the vectors items had when their events arrived (and on open, the vectors they have
    then); an item deleted later keeps counting until the next restart, when its events are skipped.
    """

    def __init__(self, collection: Collection) -> None:
        self.c = collection
        self.config = collection.config.recommend_config()
        self.profiles = Profiles(collection.config.dim, self.config)
        self.lock = threading.Lock()  # guards the profiles
        self.training = threading.Lock()  # one training run at a time
        self.ranker: Ranker | None = ranker_store.load(collection.folder)

    def load(self) -> None:
        """Replay the stored events into fresh profiles; called once, before the collection serves."""
        started = time.perf_counter()
        for chunk in self.c.store.events():
            with self.c.rw.read():
                rows = self.event_rows([row for row in chunk if self._alive(row[1])])
            self.profiles.apply(rows)
        if self.profiles.event_count:
            log.info(
                "%s: %d events of %d users replayed in %.1f s",
                self.c.name,
                self.profiles.event_count,
                len(self.profiles.user_ids),
                time.perf_counter() - started,
            )

    # ---- events -----------------------------------------------------------------------------
    def add_events(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """Clean, store durably, then fold into the profiles; returns the cleaning report."""
        with self.c.rw.read():
            self.c._check_open()
            rows, _, report = clean(events, self._item_key, now=time.time())
            info = self.event_rows(rows)
        fresh = self.c.store.add_events(rows)
        report.duplicates += fresh.count(False)
        report.accepted = fresh.count(True)
        keep = np.flatnonzero(fresh)
        with self.lock:
            self.profiles.apply(_subset(info, keep))
        return report.to_json()

    def event_rows(self, rows: list[Row]) -> EventRows:
        """Join rows with their items' vectors, categories and prices; the caller holds the read lock."""
        slots = np.array([self.c.slot_of[orjson.loads(r[1])] for r in rows], np.int64)
        categories, log_prices = self.item_fields(slots)
        return EventRows(
            users=[r[0] for r in rows],
            items=[r[1] for r in rows],
            types=np.array([TYPE_INDEX[r[2]] for r in rows], np.int64),
            values=np.array([r[3] for r in rows]),
            times=np.array([r[4] for r in rows]),
            vectors=self.c.exact.vectors(slots) if len(slots) else np.zeros((0, self.c.config.dim), np.float32),
            categories=categories,
            log_prices=log_prices,
        )

    def item_fields(self, slots: np.ndarray) -> tuple[list[str | None], np.ndarray]:
        """Each item's category and log price (None / NaN where it has none); the caller holds the read lock.

        Read from the payload indexes, which creation requires for both fields: parsing every payload's
        JSON here cost 12 % of event ingest. A field that is not indexed (a collection made before that
        rule) is read from the JSON.
        """
        cat_field, price_field = self.config.category_field, self.config.price_field
        index = self.c.payload_index
        categories = index.keywords(cat_field, slots) if cat_field else [None] * len(slots)
        prices = index.numbers(price_field, slots) if price_field else np.full(len(slots), np.nan)
        if categories is None or prices is None:
            payloads = [orjson.loads(raw) if (raw := self.c.payloads[slot]) else {} for slot in slots.tolist()]
            if categories is None:
                categories = [c if isinstance(c := p.get(cat_field), str) else None for p in payloads]
            if prices is None:
                prices = np.array([_number(p.get(price_field)) for p in payloads], dtype=float).reshape(-1)
        log_prices = np.where(prices > 0, np.log(np.where(prices > 0, prices, 1.0)), np.nan)  # NaN > 0 is False
        return categories, log_prices

    def _item_key(self, item: PointId) -> str | None:
        return orjson.dumps(item).decode() if item in self.c.slot_of else None

    def _alive(self, key: str) -> bool:
        return orjson.loads(key) in self.c.slot_of

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
        with self.c.rw.read():
            self.c._check_open()
            mask = self.c.mask(flt) if flt else None
            if taste is None:
                return self._popular(user, k, mask, seen, with_payload)
            wide = min(max(4 * k, 100) + len(seen), self.c.settings.max_ef)
            query = Query(vector=taste, k=wide, ef=max(wide, self.c.config.ef), filter=flt, with_payload=False)
            hits = [h for h in run_queries(self.c, [query])[0].hits if self._key(h.id) not in seen]
            if ranker is None:
                top = hits[:k]
                return Recommendations(user, "similarity", self._hits(top, with_payload), len(hits), len(seen))
            keys = [self._key(h.id) for h in hits]
            keys += [key for key, _ in self._popular_keys(wide, mask, seen | set(keys))]
            scores = self._score(ranker, user, keys)
            order = np.argsort(-scores, kind="stable")[:k]
            top = [Hit(orjson.loads(keys[j]), float(scores[j])) for j in order.tolist()]
            return Recommendations(user, "ranker", self._hits(top, with_payload), len(keys), len(seen))

    def _popular(
        self, user: str, k: int, mask: np.ndarray | None, seen: set[str], with_payload: bool
    ) -> Recommendations:
        popular = self._popular_keys(k, mask, seen)
        hits = [Hit(orjson.loads(key), score) for key, score in popular]
        return Recommendations(user, "popular", self._hits(hits, with_payload), len(self.profiles.item_keys), len(seen))

    def _popular_keys(self, n: int, mask: np.ndarray | None, exclude: set[str]) -> list[tuple[str, float]]:
        def accept(key: str) -> bool:
            slot = self.c.slot_of.get(orjson.loads(key))
            return slot is not None and (mask is None or bool(mask[slot]))

        with self.lock:
            return self.profiles.popular(n, accept, exclude)

    def _score(self, ranker: Ranker, user: str, keys: list[str]) -> np.ndarray:
        slots = np.array([self.c.slot_of[orjson.loads(key)] for key in keys], np.int64)
        categories, log_prices = self.item_fields(slots)
        with self.lock:
            columns = self.profiles.features(user, self.c.exact.vectors(slots), keys, categories, log_prices)
        return ranker.score(columns)

    def _hits(self, hits: list[Hit], with_payload: bool) -> list[Hit]:
        """Hits with payloads attached; the caller holds the collection's read lock."""
        if not with_payload:
            return hits
        return [Hit(h.id, h.score, self.c.payloads[self.c.slot_of[h.id]]) for h in hits]

    @staticmethod
    def _key(pid: PointId) -> str:
        return orjson.dumps(pid).decode()


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


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else np.nan
