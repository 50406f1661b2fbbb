"""A seeded synthetic shop (items, users, event log) whose hidden truth is known, for testing and benchmarking rankers.

The truth (every number below is drawn from `seed`):

- Categories have random unit centroids. An item's vector is normalise(centroid + `item_noise` · gaussian / √dim):
  close to its category (cosine ≈ 0.6) but not on it, so similarity carries the category imperfectly.
- Item log-price = its category's log price level + N(0, 0.5); quality ~ N(0, 1) drives clicks (hence popularity)
  and is invisible in the vector. Some items exist before the log starts, the rest are released uniformly over it;
  items are numbered in release order and none is shown before its release.
- A user has 1–3 favourite categories (85 % of a Dirichlet taste, the rest spread thinly), a preferred log-price
  (taste-weighted category levels + N(0, 0.4)) and a latent vector: normalise(taste-weighted centroids + noise).
- utility(u, i, t) = 0.45·log taste[u, cat i] + 2·cos(latent u, vector i) − 0.9·|log price i − preferred log-price u|
  + 0.6·quality i + 0.5·exp(−age of i at t / 5 days)   (see `UtilityWeights`).
- Sessions come at uniform random times, Poisson per user (activity ~ Gamma, so some users are much busier). Each
  shows a slate of released items mixed from popular-so-far (decayed clicks and purchases), nearest to the user's
  latent vector (each the best of 64 random items) and uniform picks; the order is random, so position is not
  confounded with the source.
  Every shown item logs a "view"; position p is examined with probability 1 / log2(p + 2); an examined item is
  clicked with probability sigmoid(utility + click_bias), plus rare random clicks; click → cart and cart →
  purchase follow sigmoid(utility + bias) too, and some purchases are rated 1–5. The biases are calibrated on a
  pilot run so the click-through rate lands near `ctr`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

DAY = 86_400.0
KINDS = ("view", "click", "cart", "purchase", "rating")
VIEW, CLICK, CART, PURCHASE, RATING = range(len(KINDS))
NEAR_GROUPS = 32  # "similar" candidates per session, each the best of its own random pool
POPULARITY_HALF_LIFE_DAYS = 7.0
BAD_TIME_STRINGS = ("not-a-time", "", "yesterday", "2025-13-45T99:00:00", "NaN o'clock")


@dataclass(frozen=True)
class LoggingPolicy:
    """What the shop showed while the log was recorded: slates mixed from three sources.

    A "similar" pick is the best of `near_pool` random released items by the user's latent vector, like a
    nearest-neighbour recommender (top ~6 % with 16; a cost that does not grow with the shop). The default
    is a browsing shop. A log recorded under a similarity-driven policy, e.g. mix (0.3, 0.4, 0.3) with
    near_pool 64, is dominated by exposure: held-out clicks then mostly mark what similarity put on
    screen, and no ranker (not even the true utility) beats similarity by much on them.
    """

    mix: tuple[float, float, float] = (0.3, 0.2, 0.5)  # popular-so-far, similar to the user, uniform
    near_pool: int = 16


@dataclass(frozen=True)
class UtilityWeights:
    # Utility is the click log-odds itself (plus a bias), so these set how noisy clicks are: with them the true
    # utility separates clicked from shown items with AUC ≈ 0.83, cosine to the latent vector alone ≈ 0.78.
    category: float = 0.45  # times log(taste share): a thin-taste category costs ~2 against a favourite
    similarity: float = 2.0
    price: float = 0.9  # per unit of |log price − preferred log price|
    quality: float = 0.6
    newness: float = 0.5
    newness_days: float = 5.0


@dataclass(frozen=True)
class ClickModel:
    """p(click | examined) = sigmoid(utility + click_bias); cart and purchase likewise, each given the step before."""

    click_bias: float
    cart_bias: float
    purchase_bias: float
    random_click: float  # chance that any shown item is clicked regardless of position and utility
    utility_mean: float  # of shown items in the pilot: ratings are utility in these units
    utility_std: float


@dataclass(frozen=True, eq=False)  # eq on numpy arrays is ambiguous
class Truth:
    """The hidden parameters; rows are item and user indices (item-17 is row 17)."""

    centroids: np.ndarray  # (n_categories, dim)
    item_vectors: np.ndarray  # (n_items, dim), the same array as Shop.vectors
    item_category: np.ndarray  # (n_items,) int
    item_log_price: np.ndarray
    item_quality: np.ndarray
    item_released: np.ndarray  # epoch seconds, non-decreasing
    user_taste: np.ndarray  # (n_users, n_categories), rows sum to 1
    user_log_price: np.ndarray
    user_latent: np.ndarray  # (n_users, dim), unit rows
    weights: UtilityWeights
    policy: LoggingPolicy = LoggingPolicy()
    clicks: ClickModel | None = None

    def utility(self, user_index: Any, item_indices: Any, at: Any = None) -> np.ndarray:
        """True preference of users for items (broadcast together); `at` (epoch seconds) adds the newness bonus."""
        users, items, w = np.asarray(user_index), np.asarray(item_indices), self.weights
        taste = np.maximum(self.user_taste[users, self.item_category[items]], 1e-4)
        cos = (self.user_latent[users] * self.item_vectors[items]).sum(axis=-1, dtype=np.float64)
        gap = np.abs(self.item_log_price[items] - self.user_log_price[users])
        u = w.category * np.log(taste) + w.similarity * cos - w.price * gap + w.quality * self.item_quality[items]
        if at is not None:
            age_days = np.maximum(np.asarray(at, dtype=np.float64) - self.item_released[items], 0.0) / DAY
            u = u + w.newness * np.exp(-age_days / w.newness_days)
        return u


@dataclass(frozen=True, eq=False)
class EventLog:
    """The events as columns, sorted by time; `position` and `session` are those of the slate the item was shown in."""

    user: np.ndarray
    item: np.ndarray
    kind: np.ndarray  # index into KINDS
    time: np.ndarray
    position: np.ndarray
    session: np.ndarray
    value: np.ndarray  # rating 1–5, 0 for other kinds

    def __len__(self) -> int:
        return len(self.time)


@dataclass(frozen=True, eq=False)
class Shop:
    item_ids: list[str]
    vectors: np.ndarray  # (n_items, dim) float32, unit rows
    payloads: list[dict[str, Any]]  # category, price, released
    user_ids: list[str]
    log: EventLog
    truth: Truth
    start_time: float
    end_time: float

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        """The log as ingestible dicts {user, item, type, time} (+ value for ratings), sorted by time."""
        users, items, kinds = self.user_ids, self.item_ids, KINDS
        out = [
            {"user": users[u], "item": items[i], "type": kinds[k], "time": t}
            for u, i, k, t in zip(
                self.log.user.tolist(),
                self.log.item.tolist(),
                self.log.kind.tolist(),
                self.log.time.tolist(),
                strict=True,
            )
        ]
        for row in np.flatnonzero(self.log.kind == RATING).tolist():
            out[row]["value"] = int(self.log.value[row])
        return out

    def points(self) -> Iterator[dict[str, Any]]:
        for item_id, vector, payload in zip(self.item_ids, self.vectors, self.payloads, strict=True):
            yield {"id": item_id, "vector": vector.tolist(), "payload": dict(payload)}

    def event_batches(self, batch_size: int) -> Iterator[list[dict[str, Any]]]:
        for start in range(0, len(self.events), batch_size):
            yield self.events[start : start + batch_size]


@dataclass(frozen=True)
class Dirt:
    """How many events of each kind add_dirt inserted; every one is extra, none replaces a clean event."""

    duplicates: int
    unknown_items: int
    bad_time_strings: int
    future_times: int

    @property
    def total(self) -> int:
        return self.duplicates + self.unknown_items + self.bad_time_strings + self.future_times


def generate_shop(
    n_items: int = 2000,
    n_users: int = 300,
    *,
    dim: int = 32,
    n_categories: int = 12,
    days: float = 60.0,
    sessions_per_user: float = 8.0,
    slate_size: int = 10,
    start_time: float = 1_750_000_000.0,
    ctr: float = 0.08,
    item_noise: float = 1.2,
    policy: LoggingPolicy | None = None,
    seed: int = 0,
) -> Shop:
    """A shop and `days` of its event log; the same arguments always give the same shop."""
    if n_items < slate_size:
        raise ValueError(f"n_items ({n_items}) must be at least slate_size ({slate_size})")
    rng = np.random.default_rng(seed)
    end_time = start_time + days * DAY
    truth = _items(rng, n_items, dim, n_categories, item_noise, slate_size, start_time, end_time)
    truth = replace(_users(rng, truth, n_users), policy=policy or LoggingPolicy())
    sess_user, sess_time = _sessions(rng, n_users, sessions_per_user, start_time, end_time)
    truth = replace(truth, clicks=_calibrate(rng, truth, sess_user, sess_time, slate_size, ctr))
    log = _simulate(rng, truth, sess_user, sess_time, slate_size, (start_time, end_time))
    payloads = [
        {"category": f"cat-{c}", "price": round(math.exp(p), 2), "released": r}
        for c, p, r in zip(
            truth.item_category.tolist(), truth.item_log_price.tolist(), truth.item_released.tolist(), strict=True
        )
    ]
    return Shop(
        item_ids=[f"item-{i}" for i in range(n_items)],
        vectors=truth.item_vectors,
        payloads=payloads,
        user_ids=[f"user-{u}" for u in range(n_users)],
        log=log,
        truth=truth,
        start_time=start_time,
        end_time=end_time,
    )


def _items(
    rng: np.random.Generator, n: int, dim: int, n_cat: int, noise: float, slate: int, start: float, end: float
) -> Truth:
    centroids = _normalise(rng.standard_normal((n_cat, dim)))
    sizes = rng.dirichlet(np.full(n_cat, 3.0))  # categories of uneven size, none empty in practice
    category = rng.choice(n_cat, size=n, p=sizes)
    vectors = _normalise(centroids[category] + noise * rng.standard_normal((n, dim)) / math.sqrt(dim))
    level = math.log(25.0) + 0.8 * rng.standard_normal(n_cat)
    n_initial = min(n, max(slate, n // 2))  # a full slate is available from the first session on
    released = np.sort(
        np.concatenate([start - rng.uniform(30, 365, n_initial) * DAY, rng.uniform(start, end, n - n_initial)])
    )
    return Truth(
        centroids=centroids.astype(np.float32),
        item_vectors=vectors.astype(np.float32),
        item_category=category,
        item_log_price=level[category] + 0.5 * rng.standard_normal(n),
        item_quality=rng.standard_normal(n),
        item_released=released,
        user_taste=np.zeros((0, n_cat)),
        user_log_price=np.zeros(0),
        user_latent=np.zeros((0, dim), dtype=np.float32),
        weights=UtilityWeights(),
    )


def _users(rng: np.random.Generator, truth: Truth, n: int) -> Truth:
    n_cat, dim = truth.centroids.shape
    taste = 0.15 * rng.dirichlet(np.full(n_cat, 0.5), size=n)
    n_fav = rng.choice([1, 2, 3], size=n, p=[0.4, 0.4, 0.2])
    for k in (1, 2, 3):  # per favourite count, so Dirichlet draws stay vectorised
        rows = np.flatnonzero(n_fav == k)
        favs = np.argsort(rng.random((len(rows), n_cat)), axis=1)[:, :k]
        taste[rows[:, None], favs] += 0.85 * rng.dirichlet(np.full(k, 2.0), size=len(rows))
    # Category log-price levels, recovered from the items (the truth keeps no separate table of them).
    counts = np.maximum(np.bincount(truth.item_category, minlength=n_cat), 1)
    level = np.bincount(truth.item_category, weights=truth.item_log_price, minlength=n_cat) / counts
    latent = _normalise(_normalise(taste @ truth.centroids) + 0.8 * rng.standard_normal((n, dim)) / math.sqrt(dim))
    return replace(
        truth,
        user_taste=taste,
        user_log_price=taste @ level + 0.4 * rng.standard_normal(n),
        user_latent=latent.astype(np.float32),
    )


def _sessions(
    rng: np.random.Generator, n_users: int, per_user: float, start: float, end: float
) -> tuple[np.ndarray, np.ndarray]:
    activity = rng.gamma(2.0, per_user / 2.0, size=n_users)
    users = np.repeat(np.arange(n_users), rng.poisson(activity))
    times = rng.uniform(start, end, size=len(users))
    order = np.argsort(times, kind="stable")
    return users[order], times[order]


def _calibrate(
    rng: np.random.Generator, truth: Truth, users: np.ndarray, times: np.ndarray, slate: int, ctr: float
) -> ClickModel:
    """Solve the three biases on a pilot of slates, so the funnel rates hold whatever the weights and sizes."""
    pick = rng.choice(len(users), size=min(len(users), 2000), replace=False)
    items, valid = _show(rng, truth, users[pick], times[pick], slate, popularity=None)
    u = truth.utility(users[pick][:, None], items, times[pick][:, None])[valid]
    examined = _examination(slate)[None, :].repeat(len(pick), axis=0)[valid]
    random_click = 0.003
    click_bias = _solve_bias(u, examined, (ctr - random_click) / examined.mean())
    p_click = examined * _sigmoid(u + click_bias)
    cart_bias = _solve_bias(u, p_click, 0.3)
    purchase_bias = _solve_bias(u, p_click * _sigmoid(u + cart_bias), 0.5)
    return ClickModel(click_bias, cart_bias, purchase_bias, random_click, float(u.mean()), float(u.std()))


def _solve_bias(u: np.ndarray, weights: np.ndarray, target: float) -> float:
    """The b with weighted mean of sigmoid(u + b) = target, by bisection (the mean is increasing in b)."""
    lo, hi = -30.0, 30.0
    for _ in range(40):  # 60 / 2^40: far finer than any rate it is asked for
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.average(_sigmoid(u + mid), weights=weights) < target else (lo, mid)
    return (lo + hi) / 2


def _simulate(
    rng: np.random.Generator, truth: Truth, users: np.ndarray, times: np.ndarray, slate: int, span: tuple[float, float]
) -> EventLog:
    """Day by day: popularity seen by the slates is what earlier days' clicks and purchases made it.

    The log stops at the end of the span: a purchase that would come after it has not happened yet.
    """
    start, end = span
    popularity = np.zeros(len(truth.item_quality))
    day = np.floor((times - start) / DAY).astype(np.int64)
    bounds = np.searchsorted(day, np.arange(day.max(initial=0) + 2))
    parts: list[tuple[np.ndarray, ...]] = []
    decay = 0.5 ** (1.0 / POPULARITY_HALF_LIFE_DAYS)
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        popularity *= decay
        if lo == hi:
            continue
        sessions = np.arange(lo, hi)
        items, valid = _show(rng, truth, users[sessions], times[sessions], slate, popularity)
        part = _respond(rng, truth, sessions, users, times, items, valid)
        parts.append(part)
        weight = np.where(part[2] == PURCHASE, 3.0, part[2] == CLICK)
        popularity += np.bincount(part[1], weights=weight, minlength=len(popularity))
    columns = [np.concatenate(c) for c in zip(*parts, strict=True)] if parts else [np.zeros(0, np.int64)] * 7
    order = np.argsort(columns[3], kind="stable")
    order = order[columns[3][order] <= end]
    user, item, kind, time, position, session, value = (c[order] for c in columns)
    return EventLog(
        user.astype(np.int32),
        item.astype(np.int32),
        kind.astype(np.int8),
        time.astype(np.float64),
        position.astype(np.int16),
        session.astype(np.int32),
        value.astype(np.int8),
    )


def _show(
    rng: np.random.Generator,
    truth: Truth,
    users: np.ndarray,
    times: np.ndarray,
    slate: int,
    popularity: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Slates (sessions × slate) of distinct released items, and a mask of the filled places."""
    n_released = np.searchsorted(truth.item_released, times, side="right")
    width = slate + slate // 2 + 2  # spare candidates replace duplicates
    source = rng.choice(3, size=(len(users), width), p=truth.policy.mix)
    cand = (rng.random((len(users), width)) * n_released[:, None]).astype(np.int64)  # uniform over released
    if popularity is not None:
        cum = np.cumsum(popularity)
        total = cum[n_released - 1]
        draws = rng.random((len(users), width)) * total[:, None]
        popular = np.minimum(np.searchsorted(cum, draws, side="right"), n_released[:, None] - 1)
        cand = np.where((source == 0) & (total[:, None] > 0), popular, cand)
    rows, cols = np.nonzero(source == 1)
    if len(rows):
        near = _nearest(rng, truth, users, int(n_released.min()))
        cand[rows, cols] = near[rows, rng.integers(0, near.shape[1], size=len(rows))]
    return _first_distinct(cand, slate)


def _nearest(rng: np.random.Generator, truth: Truth, users: np.ndarray, n_released: int) -> np.ndarray:
    """Per session, NEAR_GROUPS items: each the nearest to the user's latent vector in its group of a random pool.

    One pool shared by the chunk makes this a matmul rather than a gather per session, and an argmax per group
    is far cheaper than a top-k; items released during the chunk wait for the next chunk's pool.
    """
    size = truth.policy.near_pool
    pool = (rng.random((NEAR_GROUPS, size)) * n_released).astype(np.int64)
    vectors = truth.item_vectors[pool.ravel()]
    near = np.empty((len(users), NEAR_GROUPS), dtype=np.int64)
    for b in range(0, len(users), 2048):  # bounds the sessions × pool score matrix
        latent = truth.user_latent[users[b : b + 2048]]
        # A BLAS matmul wakes its threads on every call, which on a busy machine costs far more than a
        # small product; einsum's single-threaded loop is the faster one below a few hundred rows.
        scores = np.einsum("rd,pd->rp", latent, vectors) if len(latent) < 256 else latent @ vectors.T
        near[b : b + 2048] = pool[np.arange(NEAR_GROUPS), scores.reshape(-1, NEAR_GROUPS, size).argmax(2)]
    return near


def _first_distinct(cand: np.ndarray, slate: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(cand, axis=1, kind="stable")  # stable: the first copy of a value is the one kept
    ranked = np.take_along_axis(cand, order, axis=1)
    dup = np.zeros_like(cand, dtype=bool)
    np.put_along_axis(dup, order[:, 1:], ranked[:, 1:] == ranked[:, :-1], axis=1)
    keep = np.argsort(dup * cand.shape[1] + np.arange(cand.shape[1]), axis=1)[:, :slate]
    return np.take_along_axis(cand, keep, axis=1), ~np.take_along_axis(dup, keep, axis=1)


def _respond(
    rng: np.random.Generator,
    truth: Truth,
    sessions: np.ndarray,
    users: np.ndarray,
    times: np.ndarray,
    items: np.ndarray,
    valid: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """The events one chunk of slates produces, as columns (user, item, kind, time, position, session, value)."""
    model = truth.clicks
    if model is None:
        raise ValueError("the truth has no click model yet: calibrate first")
    u = truth.utility(users[sessions][:, None], items, times[sessions][:, None])
    shape = items.shape
    position = np.broadcast_to(np.arange(shape[1]), shape)
    view_t = times[sessions][:, None] + 4.0 * position + 3.0 * rng.random(shape)
    examined = rng.random(shape) < _examination(shape[1])[None, :]
    click = valid & (
        (examined & (rng.random(shape) < _sigmoid(u + model.click_bias))) | (rng.random(shape) < model.random_click)
    )
    cart = click & (rng.random(shape) < _sigmoid(u + model.cart_bias))
    purchase = cart & (rng.random(shape) < _sigmoid(u + model.purchase_bias))
    rating = purchase & (rng.random(shape) < 0.3)
    click_t = view_t + 2.0 + rng.exponential(15.0, shape)
    cart_t = click_t + 5.0 + rng.exponential(60.0, shape)
    purchase_t = cart_t + 10.0 + rng.exponential(120.0, shape)
    rating_t = purchase_t + rng.exponential(0.5 * DAY, shape)
    z = (u - model.utility_mean) / model.utility_std
    stars = np.clip(np.rint(3.0 + z + 0.7 * rng.standard_normal(shape)), 1, 5)
    out: list[list[np.ndarray]] = [[] for _ in range(7)]
    session_grid = np.broadcast_to(sessions[:, None], shape)
    for kind, mask, t in (
        (VIEW, valid, view_t),
        (CLICK, click, click_t),
        (CART, cart, cart_t),
        (PURCHASE, purchase, purchase_t),
        (RATING, rating, rating_t),
    ):
        s = session_grid[mask]
        value = stars[mask] if kind == RATING else np.zeros(len(s))
        for col, values in zip(
            out, (users[s], items[mask], np.full(len(s), kind), t[mask], position[mask], s, value), strict=True
        ):
            col.append(values)
    return tuple(np.concatenate(c) for c in out)


def _examination(slate: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(slate) + 2.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def add_dirt(
    events: list[dict[str, Any]],
    seed: int = 0,
    *,
    duplicates: float = 0.01,
    unknown_items: float = 0.005,
    bad_times: float = 0.005,
) -> tuple[list[dict[str, Any]], Dirt]:
    """A copy of `events` with extra bad events scattered in (rates are fractions of len(events)).

    Exact duplicates of clean events; copies whose item is "ghost-<n>" (no such item); copies whose time is a
    string that is no time at all; copies whose time is 5–50 years after the original. Dropping exactly those gives
    back `events`, so a cleaner can be checked against the clean log.
    """
    rng = np.random.default_rng(seed)
    n = len(events)
    counts = [round(rate * n) for rate in (duplicates, unknown_items, bad_times / 2, bad_times / 2)]
    extra: list[dict[str, Any]] = []
    for kind, count in enumerate(counts):
        for k, source in enumerate(rng.integers(0, max(n, 1), size=count).tolist()):
            event = dict(events[source])
            if kind == 1:
                event["item"] = f"ghost-{k}"
            elif kind == 2:
                event["time"] = BAD_TIME_STRINGS[k % len(BAD_TIME_STRINGS)]
            elif kind == 3:
                event["time"] = float(event["time"]) + float(rng.uniform(5, 50)) * 365 * DAY
            extra.append(event)
    # Clean event i sorts at i; an extra one just before a random clean one, so the clean order is kept.
    keys = np.concatenate([np.arange(n, dtype=np.float64), rng.integers(0, n + 1, size=len(extra)) - 0.5])
    merged = [dict(e) for e in events] + extra
    dirty = [merged[i] for i in np.argsort(keys, kind="stable").tolist()]
    return dirty, Dirt(*counts)
