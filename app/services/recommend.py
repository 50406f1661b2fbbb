"""Recommend by examples: items like the positive examples and unlike the negative ones."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from app.core.errors import InvalidInput, PointNotFound
from app.index.base import higher_is_better
from app.services.models import Hit, PointId, Query, SearchResult
from app.services.searcher import run_queries

if TYPE_CHECKING:
    from app.services.collection import Collection

Strategy = Literal["average", "best_score"]
Example = PointId | np.ndarray


@dataclass(frozen=True)
class Examples:
    vectors: np.ndarray  # (n, dim), prepared for the metric
    slots: set[int]  # the stored points among the examples: never recommended back


def recommend(
    c: Collection, positive: list[Example], negative: list[Example], strategy: Strategy, query: Query
) -> SearchResult:
    """`query` carries k, filter, ef, exact, score_threshold and what to return; its vector is ignored."""
    if not positive:
        raise InvalidInput("send at least one positive example")
    with c.rw.read():
        c._check_open()
        pos, neg = _resolve(c, positive), _resolve(c, negative)
        exclude = pos.slots | neg.slots
        if strategy == "average":
            return _average(c, pos, neg, exclude, query)
        return _best_score(c, pos, neg, exclude, query)


def _average(c: Collection, pos: Examples, neg: Examples, exclude: set[int], query: Query) -> SearchResult:
    """One query vector: the mean of the positives, moved away from the mean of the negatives by as much."""
    target = pos.vectors.mean(axis=0)
    if len(neg.vectors):
        target = 2 * target - neg.vectors.mean(axis=0)
    if not np.linalg.norm(target):
        raise InvalidInput("the examples cancel out: the positives and negatives average to a zero vector")
    widened = replace(query, vector=target, id=None, k=query.k + len(exclude), score_threshold=None)
    result = run_queries(c, [widened])[0]
    hits = [h for h in result.hits if c.slot_of[h.id] not in exclude]
    return SearchResult(_threshold(c, hits, query)[: query.k], result.plan, result.candidates)


def _best_score(c: Collection, pos: Examples, neg: Examples, exclude: set[int], query: Query) -> SearchResult:
    """Candidates near any positive, each scored by its best positive — or, when a negative is nearer,
    by minus its similarity to that negative, so it sinks below every candidate a positive wins.
    """
    wide = 2 * query.k + len(exclude)  # room for the candidates a negative sinks
    searches = [replace(query, vector=v, id=None, k=wide, score_threshold=None, with_vector=False) for v in pos.vectors]
    results = run_queries(c, searches)
    slots = np.array(sorted({c.slot_of[h.id] for r in results for h in r.hits} - exclude), np.int64)
    if not len(slots):
        return SearchResult([], results[0].plan, results[0].candidates)
    vectors = c.exact.vectors(slots)
    best_pos = _similarity(c, vectors, pos.vectors).max(axis=1)
    score = best_pos
    if len(neg.vectors):
        best_neg = _similarity(c, vectors, neg.vectors).max(axis=1)
        score = np.where(best_neg > best_pos, -best_neg, best_pos)
    order = np.argsort(-score, kind="stable")
    keep = order if query.score_threshold is None else order[score[order] >= query.score_threshold]
    keep = keep[: query.k]
    out_vectors = vectors[keep] if query.with_vector else None
    hits = [
        Hit(
            c.ids[s],  # type: ignore[arg-type]
            float(score[j]),
            c.payloads[s] if query.with_payload else None,
            None if out_vectors is None else out_vectors[n],
        )
        for n, (j, s) in enumerate(zip(keep.tolist(), slots[keep].tolist(), strict=True))
    ]
    return SearchResult(hits, results[0].plan, results[0].candidates)


def _similarity(c: Collection, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Higher is more alike, whatever the metric: dot products, or minus Euclidean distance for l2."""
    if higher_is_better(c.config.metric):
        return a @ b.T
    return -np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2), 0.0))


def _threshold(c: Collection, hits: list[Hit], query: Query) -> list[Hit]:
    if query.score_threshold is None:
        return hits
    if higher_is_better(c.config.metric):
        return [h for h in hits if h.score >= query.score_threshold]
    return [h for h in hits if h.score <= query.score_threshold]


def _resolve(c: Collection, examples: list[Example]) -> Examples:
    """Ids become their stored vectors (and are remembered, to be left out); vectors are checked."""
    ids = [e for e in examples if not isinstance(e, np.ndarray)]
    missing = [pid for pid in ids if pid not in c.slot_of]
    if missing:
        raise PointNotFound(f"example point(s) not found: {missing[:5]}", missing=missing[:20])
    slots = [c.slot_of[pid] for pid in ids]
    given = [e for e in examples if isinstance(e, np.ndarray)]
    parts = [c.exact.vectors(np.array(slots, np.int64))] if slots else []
    parts += [c.check_vectors(g.reshape(1, -1).astype(np.float32), expected=1) for g in given]
    vectors = np.vstack(parts) if parts else np.zeros((0, c.config.dim), np.float32)
    return Examples(vectors, set(slots))
