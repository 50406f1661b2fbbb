"""Hybrid search's merge: the candidates of both retrievers, each scored by both, fused by rank or by score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.search.models import Fusion, Rank


@dataclass(frozen=True)
class Fused:
    slot: int
    score: float
    dense: Rank | None
    lexical: Rank | None


def _ranks(scores: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Each candidate's 1-based rank by score, best (highest) first, ties by slot; 0 where the score is NaN."""
    order = np.lexsort((slots, -np.nan_to_num(scores, nan=-np.inf)))
    ranks = np.empty(len(scores), np.int64)
    ranks[order] = np.arange(1, len(scores) + 1)
    ranks[np.isnan(scores)] = 0
    return ranks


def fuse(slots: np.ndarray, dense: np.ndarray, lexical: np.ndarray, fusion: Fusion, dense_higher: bool) -> list[Fused]:
    """The candidates (the union of both retrievers' lists) best first by fused score.

    `dense` holds every candidate's similarity (or l2 distance when not `dense_higher`), `lexical` its BM25
    score (NaN: none of the words). Scoring every candidate by both retrievers, rather than only those each
    list happened to return, means a product found by its code alone still gets its real dense score.
    rrf sums 1/(k + rank) over both rankings; weighted adds alpha × the dense score min-max-normalised over the
    candidates and (1 − alpha) × BM25 divided by the best BM25 (0 is no match). Ties go to the better dense
    rank, then the lower slot, so the order is the same on every run.
    """
    oriented = dense if dense_higher else -dense
    dense_rank, lexical_rank = _ranks(oriented, slots), _ranks(lexical, slots)
    if fusion.method == "rrf":
        score = 1.0 / (fusion.k + dense_rank)
        score += np.where(lexical_rank > 0, 1.0 / (fusion.k + np.maximum(lexical_rank, 1)), 0.0)
    else:
        low, high = (oriented.min(), oriented.max()) if len(oriented) else (0.0, 0.0)
        d = (oriented - low) / (high - low) if high > low else np.ones(len(oriented))
        words = np.nan_to_num(lexical, nan=0.0)
        best = words.max() if len(words) else 0.0
        w = words / best if best > 0 else np.zeros(len(words))
        score = fusion.alpha * d + (1 - fusion.alpha) * w
    order = np.lexsort((slots, dense_rank, -score))
    return [
        Fused(
            int(slots[i]),
            float(score[i]),
            Rank(int(dense_rank[i]), float(dense[i])),
            Rank(int(lexical_rank[i]), float(lexical[i])) if lexical_rank[i] else None,
        )
        for i in order.tolist()
    ]
