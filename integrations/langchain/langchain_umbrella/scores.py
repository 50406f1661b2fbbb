"""The server's scores as LangChain relevance in [0, 1], and MMR computed here when the server cannot do it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from langchain_core.vectorstores.utils import maximal_marginal_relevance


def _from_similarity(score: float) -> float:
    # cosine similarity lies in [-1, 1]; a dot product of unit vectors too (clipped for vectors that are not)
    return min(1.0, max(0.0, (1.0 + score) / 2.0))


def _from_distance(distance: float) -> float:
    # For unit vectors d² = 2 − 2·cos, so 1 − d²/4 = (1 + cos)/2: the same relevance a cosine collection gives.
    # LangChain's default 1 − d/√2 goes below 0 for opposite vectors and ranks differently from cosine.
    return max(0.0, 1.0 - distance * distance / 4.0)


def relevance_fn(metric: str) -> Callable[[float], float]:
    """Relevance (1 best) from a dense score of the collection's metric: cosine and ip similarities (higher is
    better), l2 distances (lower is better)."""
    if metric in ("cosine", "ip"):
        return _from_similarity
    if metric == "l2":
        return _from_distance
    raise ValueError(f"no relevance function for metric {metric!r}")


def mmr_pick(query: Sequence[float], vectors: Sequence[Any], k: int, lambda_mult: float) -> list[int]:
    """Indexes of the k candidates LangChain's MMR picks, in order (raw cosine to the query, not normalised)."""
    if not vectors:
        return []
    rows = [np.asarray(v, dtype=np.float32).tolist() for v in vectors]
    return maximal_marginal_relevance(np.asarray(query, dtype=np.float32), rows, lambda_mult=lambda_mult, k=k)
