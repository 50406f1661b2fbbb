"""The search planner: exact scan or HNSW graph, decided per query."""

from __future__ import annotations

import math
from typing import Literal

Plan = Literal["exact", "hnsw"]


def choose_plan(*, exact_requested: bool, graph_ready: bool, candidates: int, dim: int, exact_max_floats: int) -> Plan:
    """Exact when asked, when there is no graph yet, or when scoring every candidate is cheap.

    An exact search costs about candidates × dim multiply-adds; a graph search costs nearly the
    same at any size without a filter, and much more with one (hnswlib calls back into Python
    for every node it visits, and a narrow filter makes it visit many). So the caller passes one
    threshold for plain queries and a larger one for filtered queries, both measured in
    benchmarks/RESULTS.md ("Planner threshold").
    """
    if exact_requested or not graph_ready or candidates * dim <= exact_max_floats:
        return "exact"
    return "hnsw"


POST_FILTER_OVERSAMPLE = 4  # a post-filtered list expects this many times k matches (RESULTS.md, planner section)


def post_filter_beam(ef: int, k: int, selectivity: float) -> tuple[int, int]:
    """(results to read, beam) for a graph search without the filter whose results are filtered afterwards.

    A list of k × OVERSAMPLE / selectivity nearest points holds about OVERSAMPLE × k matches (the filter
    being unrelated to the vectors; the caller falls back when it holds fewer than k). The beam widens
    like a filtered one's, at most twice: the matches sit deeper in the list than an unfiltered top k.
    """
    wide = math.ceil(POST_FILTER_OVERSAMPLE * k / max(selectivity, 1e-9))
    return wide, max(wide, _widened(ef, k, selectivity, at_most=2.0))


def filtered_ef(ef: int, k: int, selectivity: float, max_ef: int) -> int:
    """A wider beam for a filtered graph search: rejected nodes still cost steps, so look further."""
    return min(max_ef, _widened(ef, k, selectivity, at_most=8.0))


def _widened(ef: int, k: int, selectivity: float, *, at_most: float) -> int:
    """The beam max(ef, k) times 1/√selectivity, by at most `at_most`."""
    return int(max(ef, k) * min(at_most, max(1.0, max(selectivity, 1e-9) ** -0.5)))
