"""Fusion of a dense and a keyword ranking: both methods, ranks, ties, and points only one list found."""

from __future__ import annotations

import numpy as np
import pytest

from app.search.fusion import fuse
from app.search.models import Fusion

SLOTS = np.array([10, 11, 12, 13])
DENSE = np.array([0.9, 0.8, 0.3, 0.1], np.float32)  # cosine: higher is better
WORDS = np.array([np.nan, 2.0, 8.0, np.nan], np.float32)  # BM25; NaN: none of the words


def test_rrf_sums_reciprocal_ranks_and_leaves_the_unmatched_out_of_the_keyword_term() -> None:
    fused = fuse(SLOTS, DENSE, WORDS, Fusion(method="rrf", k=60), dense_higher=True)
    by_slot = {f.slot: f for f in fused}
    assert by_slot[11].score == pytest.approx(1 / 62 + 1 / 62)  # dense 2nd, keywords 2nd
    assert by_slot[12].score == pytest.approx(1 / 63 + 1 / 61)
    assert by_slot[10].score == pytest.approx(1 / 61) and by_slot[10].lexical is None
    assert [f.slot for f in fused] == [12, 11, 10, 13]
    assert (by_slot[12].dense.rank, by_slot[12].lexical.rank) == (3, 1)


def test_weighted_mixes_normalised_scores_by_alpha() -> None:
    words_only = fuse(SLOTS, DENSE, WORDS, Fusion(method="weighted", alpha=0.0), dense_higher=True)
    assert [f.slot for f in words_only][:2] == [12, 11] and words_only[0].score == pytest.approx(1.0)
    dense_only = fuse(SLOTS, DENSE, WORDS, Fusion(method="weighted", alpha=1.0), dense_higher=True)
    assert [f.slot for f in dense_only] == [10, 11, 12, 13]
    half = {f.slot: f.score for f in fuse(SLOTS, DENSE, WORDS, Fusion(method="weighted", alpha=0.5), True)}
    assert half[12] == pytest.approx(0.5 * (0.3 - 0.1) / 0.8 + 0.5 * 1.0)
    assert half[11] == pytest.approx(0.5 * (0.8 - 0.1) / 0.8 + 0.5 * 0.25)


def test_l2_distances_rank_the_smallest_first_and_ties_are_stable() -> None:
    distances = np.array([0.1, 0.5, 0.5, 2.0], np.float32)
    fused = fuse(SLOTS, distances, np.full(4, np.nan, np.float32), Fusion(method="rrf"), dense_higher=False)
    assert [f.slot for f in fused] == [10, 11, 12, 13]  # 11 and 12 tie: the lower slot first
    assert fuse(SLOTS[:0], DENSE[:0], WORDS[:0], Fusion(), dense_higher=True) == []
