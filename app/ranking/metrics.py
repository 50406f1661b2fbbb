"""Offline ranking metrics: AUC and log-loss over scored rows, precision/recall/NDCG@k over ranked lists."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np

# Probabilities of exactly 0 or 1 give an infinite log-loss: one confident mistake would hide everything else.
PROB_EPS = 1e-15


def auc(y: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC of `scores` against binary labels `y`; None when `y` holds a single class (AUC is undefined)."""
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return None
    from sklearn import metrics as skm  # imported on use: see app/ranking/training.py

    return float(skm.roc_auc_score(y, np.asarray(scores, dtype=np.float64)))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities `p` for labels `y`, with `p` clipped to [1e-15, 1 - 1e-15]."""
    p = np.clip(np.asarray(p, dtype=np.float64), PROB_EPS, 1 - PROB_EPS)
    from sklearn import metrics as skm

    return float(skm.log_loss(np.asarray(y), p, labels=[0, 1]))


def precision_at_k(ranked: Sequence[Sequence[Hashable]], relevant: Sequence[set], k: int) -> float | None:
    """Mean over users of |top-k ∩ relevant| / k (a list shorter than k is still divided by k)."""
    return _macro(ranked, relevant, k, lambda top, rel: _hits(top, rel) / k)


def recall_at_k(ranked: Sequence[Sequence[Hashable]], relevant: Sequence[set], k: int) -> float | None:
    """Mean over users of |top-k ∩ relevant| / |relevant|."""
    return _macro(ranked, relevant, k, lambda top, rel: _hits(top, rel) / len(rel))


def ndcg_at_k(ranked: Sequence[Sequence[Hashable]], relevant: Sequence[set], k: int) -> float | None:
    """Mean over users of DCG@k / ideal DCG@k, binary relevance; the ideal list has min(k, |relevant|) hits."""

    def ndcg(top: Sequence[Hashable], rel: set) -> float:
        dcg = sum(1.0 / np.log2(i + 2) for i, item in enumerate(top) if item in rel)
        ideal = sum(1.0 / np.log2(i + 2) for i in range(min(k, len(rel))))
        return dcg / ideal

    return _macro(ranked, relevant, k, ndcg)


def mrr_at_k(ranked: Sequence[Sequence[Hashable]], relevant: Sequence[set], k: int) -> float | None:
    """Mean over users of 1 / the rank of the first relevant item in the top k (0 when none is there)."""

    def reciprocal(top: Sequence[Hashable], rel: set) -> float:
        return next((1.0 / (i + 1) for i, item in enumerate(top) if item in rel), 0.0)

    return _macro(ranked, relevant, k, reciprocal)


def _hits(top: Sequence[Hashable], rel: set) -> int:
    return sum(item in rel for item in top)


def _macro(
    ranked: Sequence[Sequence[Hashable]],
    relevant: Sequence[set],
    k: int,
    per_user: Callable[[Sequence[Hashable], set], float],
) -> float | None:
    """Average `per_user(top_k, relevant)` over users with at least one relevant item; None when there are none.

    Users with nothing relevant are skipped rather than scored 0: their recall and NDCG are undefined, and
    counting them would make the metric depend on how many inactive users the evaluation set happens to hold.
    Ranked lists are assumed to hold distinct items.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if len(ranked) != len(relevant):
        raise ValueError(f"ranked has {len(ranked)} users but relevant has {len(relevant)}")
    values = [per_user(list(top)[:k], rel) for top, rel in zip(ranked, relevant, strict=True) if rel]
    return float(np.mean(values)) if values else None
