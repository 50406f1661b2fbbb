"""Personalization: one collection's events, user profiles and ranker, and recommendations for a user."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from app.collections.models import PointId
from app.collections.view import Catalog, ReadView
from app.core.errors import UserNotFound
from app.personalization import ranker_store
from app.personalization.config import EVENT_TYPES, RecommendConfig
from app.personalization.events import Row, clean
from app.personalization.profiles import EventRows, Profiles
from app.personalization.ranker_store import Ranker
from app.search.models import Hit, Query
from app.search.recall import RecallMonitor
from app.search.searcher import run_queries

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


class Personalization:
    """Events go to SQLite first, then into the profiles; profiles are rebuilt from the events on open.

    Profiles hold the vectors items had when their events arrived (and on open, the vectors they have
    then); an item deleted later keeps counting until the next restart, when its events are skipped.
    """

    def __init__(self, collection: Catalog) -> None:
        self.collection = collection
        self.config = RecommendConfig.of(collection.config.recommendation)
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
            with self.collection.reading() as view:  # per chunk: a long replay never holds readers or writers
                rows = self.event_rows(view, [row for row in chunk if orjson.loads(row[1]) in view])
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
        with self.collection.reading() as view:
            rows, origin, report = clean(events, lambda item: item_key(item) if item in view else None, now=time.time())
            info = self.event_rows(view, rows)
        fresh = self.collection.add_events(rows, [events[i].get("query") for i in origin])
        report.duplicates += fresh.count(False)
        report.accepted = fresh.count(True)
        keep = np.flatnonzero(fresh)
        with self.lock:
            self.profiles.apply(_subset(info, keep))
        return report.to_json()

    def event_rows(self, view: ReadView, rows: list[Row]) -> EventRows:
        """Join rows (of items in the view) with their items' vectors, categories and prices."""
        slots = np.array([view.slot_of(orjson.loads(r[1])) for r in rows], np.int64)
        categories, log_prices = self.item_fields(view, slots)
        return EventRows(
            users=[r[0] for r in rows],
            items=[r[1] for r in rows],
            types=np.array([TYPE_INDEX[r[2]] for r in rows], np.int64),
            values=np.array([r[3] for r in rows]),
            times=np.array([r[4] for r in rows]),
            vectors=view.vectors(slots) if len(slots) else np.zeros((0, view.config.dim), np.float32),
            categories=categories,
            log_prices=log_prices,
        )

    def item_fields(self, view: ReadView, slots: np.ndarray) -> tuple[list[str | None], np.ndarray]:
        """Each item's category and log price (None / NaN where it has none).

        Read from the payload indexes, which creation requires for both fields: parsing every payload's
        JSON here cost 12 % of event ingest. A field that is not indexed (a collection made before that
        rule) is read from the JSON.
        """
        cat_field, price_field = self.config.category_field, self.config.price_field
        categories = view.keywords(cat_field, slots) if cat_field else [None] * len(slots)
        prices = view.numbers(price_field, slots) if price_field else np.full(len(slots), np.nan)
        if categories is None or prices is None:
            payloads = [orjson.loads(raw) if raw else {} for raw in view.payloads(slots.tolist())]
            if categories is None:
                categories = [c if isinstance(c := p.get(cat_field), str) else None for p in payloads]
            if prices is None:
                prices = np.array([_number(p.get(price_field)) for p in payloads], dtype=float).reshape(-1)
        log_prices = np.where(prices > 0, np.log(np.where(prices > 0, prices, 1.0)), np.nan)  # NaN > 0 is False
        return categories, log_prices

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
        monitor = self.collection.find_part(RecallMonitor)
        with self.collection.reading() as view:
            mask = view.mask(flt) if flt else None
            if taste is None:
                return self._popular(view, user, k, mask, seen, with_payload)
            wide = min(max(4 * k, 100) + len(seen), view.settings.max_ef)
            query = Query(vector=taste, k=wide, ef=max(wide, view.config.ef), filter=flt, with_payload=False)
            hits = [h for h in run_queries(view, [query], monitor)[0].hits if item_key(h.id) not in seen]
            if ranker is None:
                top = hits[:k]
                return Recommendations(
                    user, "similarity", _with_payloads(view, top, with_payload), len(hits), len(seen)
                )
            keys = [item_key(h.id) for h in hits]
            keys += [key for key, _ in self._popular_keys(view, wide, mask, seen | set(keys))]
            scores = self._score(view, ranker, user, keys)
            order = np.argsort(-scores, kind="stable")[:k]
            top = [Hit(orjson.loads(keys[j]), float(scores[j])) for j in order.tolist()]
            return Recommendations(user, "ranker", _with_payloads(view, top, with_payload), len(keys), len(seen))

    def _popular(
        self, view: ReadView, user: str, k: int, mask: np.ndarray | None, seen: set[str], with_payload: bool
    ) -> Recommendations:
        popular = self._popular_keys(view, k, mask, seen)
        hits = [Hit(orjson.loads(key), score) for key, score in popular]
        items = len(self.profiles.item_keys)
        return Recommendations(user, "popular", _with_payloads(view, hits, with_payload), items, len(seen))

    def _popular_keys(
        self, view: ReadView, n: int, mask: np.ndarray | None, exclude: set[str]
    ) -> list[tuple[str, float]]:
        def accept(key: str) -> bool:
            slot = view.slot_of(orjson.loads(key))
            return slot is not None and (mask is None or bool(mask[slot]))

        with self.lock:
            return self.profiles.popular(n, accept, exclude)

    def _score(self, view: ReadView, ranker: Ranker, user: str, keys: list[str]) -> np.ndarray:
        slots = np.array([view.slot_of(orjson.loads(key)) for key in keys], np.int64)
        categories, log_prices = self.item_fields(view, slots)
        with self.lock:
            columns = self.profiles.features(user, view.vectors(slots), keys, categories, log_prices)
        return ranker.score(columns)


def item_key(pid: PointId) -> str:
    """An item's key in the event log: its id as JSON (so 7 and "7" stay apart)."""
    return orjson.dumps(pid).decode()


def _with_payloads(view: ReadView, hits: list[Hit], with_payload: bool) -> list[Hit]:
    if not with_payload:
        return hits
    payloads = view.payloads([view.slot_of(h.id) for h in hits])  # type: ignore[misc]
    return [Hit(h.id, h.score, payload) for h, payload in zip(hits, payloads, strict=True)]


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
