"""The search planner: exact scan or HNSW graph, decided per query."""

from __future__ import annotations

from typing import Literal

Plan = Literal["exact", "hnsw"]


def choose_plan(*, exact_requested: bool, graph_ready: bool, candidates: int, dim: int, exact_max_floats: int) -> Plan:
    """Exact when asked, when there is no graph yet, or when scanning the candidates is cheap.

    One rule covers both the small collection and the selective filter: an exact scan costs
    about candidates × dim multiply-adds, a graph search about the same at any size, so below
    `exact_max_floats` (measured in benchmarks/RESULTS.md) the scan wins and is exact besides.
    """
    if exact_requested or not graph_ready or candidates * dim <= exact_max_floats:
        return "exact"
    return "hnsw"


def filtered_ef(ef: int, k: int, selectivity: float, max_ef: int) -> int:
    """A wider beam for a filtered graph search: rejected nodes still cost steps, so look further."""
    widen = min(8.0, max(1.0, (0.5 / max(selectivity, 1e-9)) ** 0.5))
    return min(max_ef, int(max(ef, k) * widen))
