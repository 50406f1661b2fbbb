"""Profiles: what events say about users and items — decayed taste vectors, popularity, seen items, features."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.personalization.config import EVENT_TYPES, RecommendConfig

DAY = 86_400.0
FRESH_DAYS = 7.0  # an item's freshness falls by e every week after its first event


@dataclass(frozen=True)
class EventRows:
    """A batch of clean events with what profiles need of their items, as parallel arrays."""

    users: list[str]
    items: list[str]  # item keys (the point id as JSON)
    types: np.ndarray  # index into EVENT_TYPES
    values: np.ndarray
    times: np.ndarray  # epoch seconds
    vectors: np.ndarray  # (n, dim) the items' vectors, as the collection stores them
    categories: list[str | None]
    log_prices: np.ndarray  # NaN where the item has no price


def _grow(array: np.ndarray, rows: int, fill: float = 0.0) -> np.ndarray:
    if rows <= len(array):
        return array
    grown = np.full((max(rows, 2 * len(array)), *array.shape[1:]), fill, array.dtype)
    grown[: len(array)] = array
    return grown


class Profiles:
    """Running sums, decayed by a half-life, so each event costs O(dim) and order does not matter.

    A user's sums are kept as of their last event time T: an event at time t adds w·2^(−(T−t)/h), and a
    later event first scales the sums by 2^(−(t_new−T)/h). The taste vector is Σ w·decay·v / Σ |w|·decay.
    Item popularity is kept the same way against one clock: the newest event time seen.
    Callers serialise writes; reads of a consistent snapshot are the caller's lock too.
    """

    def __init__(self, dim: int, config: RecommendConfig) -> None:
        self.dim, self.config = dim, config
        self.half_life = config.half_life_days * DAY
        self.user_row: dict[str, int] = {}
        self.user_ids: list[str] = []
        self.taste = np.zeros((0, dim), np.float64)
        self.weight = np.zeros(0)
        self.last = np.zeros(0)  # the time each user's sums are decayed to: their last activity
        self.first = np.zeros(0)
        self.counts = np.zeros((0, len(EVENT_TYPES)), np.int64)
        self.price_sum = np.zeros(0)  # Σ w·decay·log(price) over priced items
        self.price_weight = np.zeros(0)
        self.category_col: dict[str, int] = {}
        self.category_weight = np.zeros((0, 0))
        self.seen: list[set[str]] = []
        self.item_row: dict[str, int] = {}
        self.item_keys: list[str] = []
        self.popularity = np.zeros(0)  # decayed to self.clock
        self.first_seen = np.zeros(0)
        self.clock = -math.inf  # the newest event time applied

    @property
    def event_count(self) -> int:
        return int(self.counts.sum())

    def apply(self, rows: EventRows) -> None:
        if not rows.users:
            return
        u = self._user_rows(rows.users)
        i = self._item_rows(rows.items)
        w = np.array([self.config.weight(EVENT_TYPES[t], v) for t, v in zip(rows.types, rows.values, strict=True)])
        pull = np.maximum(w, 0.0)  # dislikes steer the taste vector away but add no affinity or popularity
        t = rows.times

        new_last = self.last.copy()
        np.maximum.at(new_last, u, t)
        touched = np.unique(u)
        old = self.last[touched]
        scale = np.where(np.isfinite(old), np.exp2(-(new_last[touched] - old) / self.half_life), 0.0)
        for array in (self.taste, self.weight, self.price_sum, self.price_weight, self.category_weight):
            array[touched] *= scale.reshape(-1, *[1] * (array.ndim - 1))
        decay = np.exp2(-(new_last[u] - t) / self.half_life)
        np.add.at(self.taste, u, (w * decay)[:, None] * rows.vectors)
        np.add.at(self.weight, u, np.abs(w) * decay)
        priced = np.isfinite(rows.log_prices)
        np.add.at(self.price_sum, u[priced], (pull * decay * rows.log_prices)[priced])
        np.add.at(self.price_weight, u[priced], (pull * decay)[priced])
        cats = [self._category_col(c) for c in rows.categories]
        has_cat = np.array([c >= 0 for c in cats])
        if has_cat.any():
            cols = np.array(cats)[has_cat]
            np.add.at(self.category_weight, (u[has_cat], cols), (pull * decay)[has_cat])
        self.last = new_last
        np.minimum.at(self.first, u, t)
        np.add.at(self.counts, (u, rows.types), 1)
        for row, item in zip(u.tolist(), rows.items, strict=True):
            self.seen[row].add(item)

        clock = max(self.clock, float(t.max()))
        if math.isfinite(self.clock):
            self.popularity *= math.exp2(-(clock - self.clock) / self.half_life)
        np.add.at(self.popularity, i, pull * np.exp2(-(clock - t) / self.half_life))
        np.minimum.at(self.first_seen, i, t)
        self.clock = clock

    # ---- reads ------------------------------------------------------------------------------
    def taste_of(self, user: str) -> np.ndarray | None:
        """The user's taste vector, or None for an unknown user or one whose events cancel out."""
        row = self.user_row.get(user)
        if row is None or self.weight[row] <= 0:
            return None
        vector = self.taste[row] / self.weight[row]
        return vector.astype(np.float32) if np.linalg.norm(vector) > 1e-9 else None

    def popular(
        self, n: int, accept: Callable[[list[str]], set[str]] | None = None, exclude: set[str] | None = None
    ) -> list[tuple[str, float]]:
        """The n most popular item keys with their popularity, best first, skipping `exclude` and what `accept`
        refuses (it is given the candidates in one batch and returns those it takes). Looks at a few times n of
        the top first, and at everything only if those run out.
        """
        exclude = exclude or set()
        scores = self.popularity[: len(self.item_keys)]
        live = int(np.count_nonzero(scores > 0))
        out: list[tuple[str, float]] = []
        for width in dict.fromkeys((min(live, 4 * n + len(exclude)), live)):
            if width == 0:
                break
            top = np.argpartition(-scores, width - 1)[:width]
            rows = [row for row in top[np.argsort(-scores[top], kind="stable")].tolist()
                    if self.item_keys[row] not in exclude]  # fmt: skip
            taken = None if accept is None else accept([self.item_keys[row] for row in rows])
            out = [(self.item_keys[row], float(scores[row])) for row in rows
                   if taken is None or self.item_keys[row] in taken][:n]  # fmt: skip
            if len(out) == n:
                return out
        return out

    def top_categories(self, user: str, n: int = 5) -> list[dict[str, float]]:
        row = self.user_row.get(user)
        if row is None or not self.category_col:
            return []
        weights = self.category_weight[row]
        total = weights.sum()
        names = list(self.category_col)
        order = np.argsort(-weights)[:n]
        return [{"category": names[c], "share": float(weights[c] / total)} for c in order if weights[c] > 0]

    def features(
        self, user: str, vectors: np.ndarray, items: list[str], categories: list[str | None], log_prices: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Feature columns for one user against candidate items (vectors as the collection stores them)."""
        n = len(items)
        row = self.user_row.get(user)
        taste = self.taste_of(user)
        if taste is None:
            similarity = np.zeros(n)
        else:
            unit = taste / np.linalg.norm(taste)
            norms = np.linalg.norm(vectors, axis=1)
            similarity = vectors @ unit / np.where(norms == 0, 1, norms)
        popularity, age_days = np.zeros(n), np.zeros(n)
        for j, key in enumerate(items):  # items nobody touched yet: no popularity, brand new
            r = self.item_row.get(key)
            if r is not None:
                popularity[j], age_days[j] = self.popularity[r], (self.clock - self.first_seen[r]) / DAY
        columns = {
            "similarity": similarity,
            "popularity": np.log1p(popularity),
            "freshness": np.exp(-np.maximum(age_days, 0.0) / FRESH_DAYS),  # 1 for a new item, → 0 with age
        }
        if self.config.category_field:
            affinity = np.zeros(n)
            if row is not None and self.category_weight[row].sum() > 0:
                shares = self.category_weight[row] / self.category_weight[row].sum()
                cols = [self.category_col.get(c, -1) if c is not None else -1 for c in categories]
                affinity = np.array([shares[c] if c >= 0 else 0.0 for c in cols])
            # On a log scale too: a category with 1 % of a user's attention is far from one with 10 %,
            # while 60 % and 70 % are nearly the same; a linear model needs both shapes offered.
            columns["category_affinity"] = affinity
            columns["log_category_affinity"] = np.log(affinity + 0.01)
        if self.config.price_field:
            gap = np.zeros(n)
            if row is not None and self.price_weight[row] > 0:
                usual = self.price_sum[row] / self.price_weight[row]
                gap = np.where(np.isfinite(log_prices), log_prices - usual, 0.0)
            columns["price_gap"] = gap  # log(price / the user's usual price): signed, and its size below
            columns["price_distance"] = np.abs(gap)
        return columns

    # ---- growth -----------------------------------------------------------------------------
    def _user_rows(self, users: list[str]) -> np.ndarray:
        for user in users:
            if user not in self.user_row:
                self.user_row[user] = len(self.user_ids)
                self.user_ids.append(user)
                self.seen.append(set())
        size = len(self.user_ids)
        self.taste = _grow(self.taste, size)
        self.weight = _grow(self.weight, size)
        self.last = _grow(self.last, size, -math.inf)
        self.first = _grow(self.first, size, math.inf)
        self.counts = _grow(self.counts, size)
        self.price_sum = _grow(self.price_sum, size)
        self.price_weight = _grow(self.price_weight, size)
        self.category_weight = _grow(self.category_weight, size)
        return np.array([self.user_row[user] for user in users])

    def _item_rows(self, items: list[str]) -> np.ndarray:
        for item in items:
            if item not in self.item_row:
                self.item_row[item] = len(self.item_keys)
                self.item_keys.append(item)
        self.popularity = _grow(self.popularity, len(self.item_keys))
        self.first_seen = _grow(self.first_seen, len(self.item_keys), math.inf)
        return np.array([self.item_row[item] for item in items])

    def _category_col(self, category: str | None) -> int:
        if category is None:
            return -1
        if category not in self.category_col:
            self.category_col[category] = len(self.category_col)
            rows, cols = self.category_weight.shape
            grown = np.zeros((rows, max(len(self.category_col), 2 * cols)))
            grown[:, :cols] = self.category_weight
            self.category_weight = grown
        return self.category_col[category]
