"""Hybrid search's merge: two ranked lists (dense, keyword) become one, by reciprocal rank or weighted scores."""

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


def _ranks(slots: np.ndarray, scores: np.ndarray) -> dict[int, Rank]:
    return {int(s): Rank(i + 1, float(v)) for i, (s, v) in enumerate(zip(slots.tolist(), scores.tolist(), strict=True))}


def _normalised(ranks: dict[int, Rank], higher_is_better: bool) -> dict[int, float]:
    """Scores mapped onto [0, 1], 1 the best of the list (a list of one, or of equal scores: all 1)."""
    if not ranks:
        return {}
    values = [r.score for r in ranks.values()]
    low, high = min(values), max(values)
    if high == low:
        return dict.fromkeys(ranks, 1.0)
    return {
        slot: (r.score - low) / (high - low) if higher_is_better else (high - r.score) / (high - low)
        for slot, r in ranks.items()
    }


def fuse(
    dense: tuple[np.ndarray, np.ndarray],
    lexical: tuple[np.ndarray, np.ndarray],
    fusion: Fusion,
    dense_higher_is_better: bool,
) -> list[Fused]:
    """Every slot of either list with its fused score, best first; ties go to the better dense rank, then
    the better keyword rank, then the lower slot, so the order is the same on every run."""
    by_dense, by_lexical = _ranks(*dense), _ranks(*lexical)
    slots = list(dict.fromkeys([*by_dense, *by_lexical]))
    if fusion.method == "rrf":
        score = {
            s: sum(1.0 / (fusion.k + r.rank) for r in (by_dense.get(s), by_lexical.get(s)) if r is not None)
            for s in slots
        }
    else:
        d, w = _normalised(by_dense, dense_higher_is_better), _normalised(by_lexical, True)
        score = {s: fusion.alpha * d.get(s, 0.0) + (1 - fusion.alpha) * w.get(s, 0.0) for s in slots}
    last = len(slots) + 1

    def order(s: int) -> tuple[float, int, int, int]:
        d, w = by_dense.get(s), by_lexical.get(s)
        return (-score[s], d.rank if d else last, w.rank if w else last, s)

    return [Fused(s, score[s], by_dense.get(s), by_lexical.get(s)) for s in sorted(slots, key=order)]
