"""Maximal marginal relevance: a top-k that covers more kinds of result at a small cost in relevance."""

from __future__ import annotations

import numpy as np

from app.collections.view import ReadView
from app.search.fusion import Fused
from app.search.models import Mmr


def mmr(view: ReadView, ranked: list[Fused], settings: Mmr, k: int, higher_is_better: bool) -> list[Fused]:
    """The k hits MMR picks from `ranked` (best first), in the order picked.

    Relevance is each candidate's score min-max-normalised over the candidates (so it works for similarities,
    distances, BM25 and fused scores alike); similarity between hits is the cosine of their stored vectors.
    """
    if len(ranked) <= 1 or settings.lambda_ >= 1.0:
        return ranked[:k]
    vectors = view.vectors(np.array([f.slot for f in ranked], np.int64))
    return [ranked[i] for i in mmr_order([f.score for f in ranked], vectors, settings, k, higher_is_better)]


def mmr_order(scores: list[float], vectors: np.ndarray, settings: Mmr, k: int, higher_is_better: bool) -> list[int]:
    """The rows MMR picks, in the order picked, from candidates given best first with their scores and vectors."""
    if len(scores) <= 1 or settings.lambda_ >= 1.0:
        return list(range(min(k, len(scores))))
    values = np.array(scores, np.float64)
    values = values if higher_is_better else -values
    low, high = values.min(), values.max()
    relevance = (values - low) / (high - low) if high > low else np.ones(len(values))
    unit = vectors.astype(np.float64)
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    closest = np.full(len(values), -np.inf)  # each candidate's greatest similarity to a pick so far
    taken = np.zeros(len(values), dtype=bool)
    picked: list[int] = []
    for _ in range(min(k, len(values))):
        redundancy = np.where(np.isfinite(closest), closest, 0.0)
        value = settings.lambda_ * relevance - (1 - settings.lambda_) * redundancy
        value[taken] = -np.inf
        best = int(np.argmax(value))  # ties: the better-ranked candidate
        picked.append(best)
        taken[best] = True
        closest = np.maximum(closest, similarity[:, best])
    return picked
