"""The VectorIndex protocol and the metric arithmetic both vector indexes share."""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np

Metric = Literal["cosine", "ip", "l2"]


class IncompleteResult(Exception):
    """The index found fewer neighbours than asked although enough exist (a narrow filter, many deletes)."""


class VectorIndex(Protocol):
    """Maps integer slots to vectors and answers k-nearest-neighbour queries, best first.

    Scores follow the metric: cosine similarity, dot product, or Euclidean distance (lower is better).
    Missing results are padded with slot -1.
    """

    dim: int
    metric: Metric

    def upsert(self, slots: np.ndarray, vectors: np.ndarray) -> None: ...

    def delete(self, slots: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


def higher_is_better(metric: Metric) -> bool:
    return metric != "l2"


def prepare(vectors: np.ndarray, metric: Metric) -> np.ndarray:
    """Float32, C-contiguous, and unit length for cosine so that cosine is a dot product."""
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    if metric == "cosine":
        norms = row_norms(out)
        out = out / np.where(norms == 0, 1, norms)
    return out


def row_norms(vectors: np.ndarray) -> np.ndarray:
    """Each row's length, keeping its axis: the very bits `np.linalg.norm(v, axis=-1, keepdims=True)` gives (the
    same reduction), without its argument handling, a third of a single query's preparation."""
    return np.sqrt(np.add.reduce(vectors * vectors, axis=-1, keepdims=True))


def top_k(scores: np.ndarray, k: int, metric: Metric) -> np.ndarray:
    """Column indices of the k best scores per row, best first (argpartition, then sort only k)."""
    keyed = -scores if higher_is_better(metric) else scores
    k = min(k, keyed.shape[1])
    if k == 0:
        return np.empty((keyed.shape[0], 0), dtype=np.int64)
    part = (
        np.argpartition(keyed, k - 1, axis=1)[:, :k]
        if k < keyed.shape[1]
        else np.tile(np.arange(keyed.shape[1]), (keyed.shape[0], 1))
    )
    order = np.argsort(np.take_along_axis(keyed, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)
