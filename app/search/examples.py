"""Recommend by examples: items like the positive examples and unlike the negative ones."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from app.collections.models import PointId
from app.collections.view import Catalog, ReadView
from app.core.errors import InvalidInput, PointNotFound
from app.index.base import Metric, higher_is_better
from app.search.models import Hit, Query, SearchResult
from app.search.recall import RecallMonitor
from app.search.searcher import hits, run_queries

Strategy = Literal["average", "best_score"]
Example = PointId | np.ndarray


@dataclass(frozen=True)
class Examples:
    vectors: np.ndarray  # (n, dim), prepared for the metric
    slots: set[int]  # the stored points among the examples: never recommended back


def recommend(
    collection: Catalog, positive: list[Example], negative: list[Example], strategy: Strategy, query: Query
) -> SearchResult:
    """`query` carries k, filter, ef, exact, score_threshold and what to return; its vector is ignored."""
    if not positive:
        raise InvalidInput("send at least one positive example")
    monitor = collection.find_part(RecallMonitor)
    with collection.reading() as view:
        pos, neg = _resolve(view, positive), _resolve(view, negative)
        exclude = pos.slots | neg.slots
        if strategy == "average":
            return _average(view, monitor, pos, neg, exclude, query)
        return _best_score(view, monitor, pos, neg, exclude, query)


def _average(
    view: ReadView, monitor: RecallMonitor | None, pos: Examples, neg: Examples, exclude: set[int], query: Query
) -> SearchResult:
    target = average_target(pos.vectors, neg.vectors)
    widened = replace(query, vector=target, id=None, k=query.k + len(exclude), score_threshold=None)
    result = run_queries(view, [widened], monitor)[0]
    kept = [h for h in result.hits if view.slot_of(h.id) not in exclude]
    return SearchResult(threshold(view.config.metric, kept, query)[: query.k], result.plan, result.candidates)


def average_target(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """One query vector: the mean of the positives, moved away from the mean of the negatives by as much."""
    target = positive.mean(axis=0)
    if len(negative):
        target = 2 * target - negative.mean(axis=0)
    if not np.linalg.norm(target):
        raise InvalidInput("the examples cancel out: the positives and negatives average to a zero vector")
    return target  # type: ignore[no-any-return]


def _best_score(
    view: ReadView, monitor: RecallMonitor | None, pos: Examples, neg: Examples, exclude: set[int], query: Query
) -> SearchResult:
    """Candidates near any positive, each scored by its best positive — or, when a negative is nearer,
    by minus its similarity to that negative, so it sinks below every candidate a positive wins.
    """
    wide = 2 * query.k + len(exclude)  # room for the candidates a negative sinks
    searches = [replace(query, vector=v, id=None, k=wide, score_threshold=None, with_vector=False) for v in pos.vectors]
    results = run_queries(view, searches, monitor)
    found = {view.slot_of(h.id) for r in results for h in r.hits}
    slots = np.array(sorted(s for s in found if s is not None and s not in exclude), np.int64)
    if not len(slots):
        return SearchResult([], results[0].plan, results[0].candidates)
    keep, score = best_scores(view.config.metric, view.vectors(slots), pos.vectors, neg.vectors, query)
    chosen = hits(view, slots[keep].tolist(), score[keep].tolist(), query.with_payload, query.with_vector)
    return SearchResult(chosen, results[0].plan, results[0].candidates)


def best_scores(
    metric: Metric, candidates: np.ndarray, positive: np.ndarray, negative: np.ndarray, query: Query
) -> tuple[np.ndarray, np.ndarray]:
    """(the rows of the k best candidates, best first, past the threshold; every candidate's score): its best
    positive's similarity, or minus its nearest negative's when that one is nearer."""
    best_pos = _similarity(metric, candidates, positive).max(axis=1)
    score = best_pos
    if len(negative):
        best_neg = _similarity(metric, candidates, negative).max(axis=1)
        score = np.where(best_neg > best_pos, -best_neg, best_pos)
    order = np.argsort(-score, kind="stable")
    keep = order if query.score_threshold is None else order[score[order] >= query.score_threshold]
    return keep[: query.k], score


def _similarity(metric: Metric, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Higher is more alike, whatever the metric: dot products, or minus Euclidean distance for l2."""
    if higher_is_better(metric):
        return a @ b.T
    return -np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2), 0.0))


def threshold(metric: Metric, found: list[Hit], query: Query) -> list[Hit]:
    if query.score_threshold is None:
        return found
    if higher_is_better(metric):
        return [h for h in found if h.score >= query.score_threshold]
    return [h for h in found if h.score <= query.score_threshold]


def _resolve(view: ReadView, examples: list[Example]) -> Examples:
    """Ids become their stored vectors (and are remembered, to be left out); vectors are checked."""
    ids = [e for e in examples if not isinstance(e, np.ndarray)]
    missing = [pid for pid in ids if pid not in view]
    if missing:
        raise PointNotFound(f"example point(s) not found: {missing[:5]}", missing=missing[:20])
    slots = [view.slot_of(pid) for pid in ids]
    given = [e for e in examples if isinstance(e, np.ndarray)]
    parts = [view.vectors(np.array(slots, np.int64))] if slots else []
    parts += [view.check_vectors(g.reshape(1, -1).astype(np.float32), expected=1) for g in given]
    vectors = np.vstack(parts) if parts else np.zeros((0, view.config.dim), np.float32)
    return Examples(vectors, {s for s in slots if s is not None})
