"""Running queries against one collection: plan each, batch the plain graph queries, build hits."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.core.errors import PointNotFound
from app.index.base import IncompleteResult, higher_is_better
from app.services.models import Hit, Query, SearchResult
from app.services.planner import Plan, choose_plan, filtered_ef

if TYPE_CHECKING:
    from app.services.collection import Collection


@dataclass
class _Planned:
    query: Query
    vector: np.ndarray  # shape (1, dim), prepared for the metric
    k: int  # one more than asked when the example point must be left out
    exclude: int | None
    mask: np.ndarray | None
    candidates: int
    plan: Plan


def run_queries(c: Collection, queries: list[Query]) -> list[SearchResult]:
    """Answer every query; the caller holds the collection's read lock."""
    planned = [_plan(c, q) for q in queries]
    results: list[SearchResult | None] = [None] * len(planned)
    # Unfiltered graph queries with the same k and ef go to hnswlib as one matrix: it spreads
    # them over its threads, which a loop of single queries cannot.
    groups: dict[tuple[int, int | None], list[int]] = defaultdict(list)
    for i, p in enumerate(planned):
        if p.plan == "hnsw" and p.mask is None:
            groups[(p.k, p.query.ef)].append(i)
        else:
            results[i] = _run_one(c, p)
    for (k, ef), members in groups.items():
        assert c.hnsw is not None
        try:
            slots, scores = c.hnsw.search(np.vstack([planned[i].vector for i in members]), k, ef=ef)
        except IncompleteResult:  # heavy deletes starved the graph: answer these one by one
            for i in members:
                results[i] = _run_one(c, planned[i])
            continue
        for row, i in enumerate(members):
            c.recall.offer(planned[i].vector, k, None, slots[row])
            results[i] = _result(c, planned[i], slots[row], scores[row], "hnsw")
    return results  # type: ignore[return-value]


def _plan(c: Collection, q: Query) -> _Planned:
    exclude = None
    vector = q.vector
    if q.id is not None:
        exclude = c.slot_of.get(q.id)
        if exclude is None:
            raise PointNotFound(f"point {q.id!r} not found", missing=[q.id])
        vector = c.exact.vectors(np.array([exclude]))[0]  # "more like this" leaves the example out
    vector = c.check_vectors(np.asarray(vector, dtype=np.float32).reshape(1, -1), expected=1)
    mask = c.mask(q.filter) if q.filter else None
    candidates = c.count if mask is None else int(np.count_nonzero(mask))
    plan = choose_plan(
        exact_requested=q.exact,
        graph_ready=c.hnsw is not None and c.pending is None,
        candidates=candidates,
        dim=c.config.dim,
        exact_max_floats=c.settings.exact_max_floats if mask is None else c.settings.filtered_exact_max_floats,
    )
    return _Planned(q, vector, q.k + (exclude is not None), exclude, mask, candidates, plan)


def _run_one(c: Collection, p: _Planned) -> SearchResult:
    if p.plan == "hnsw":
        assert c.hnsw is not None
        try:
            if p.mask is None:
                slots, scores = c.hnsw.search(p.vector, p.k, ef=p.query.ef)
            else:
                selectivity = p.candidates / max(c.count, 1)
                ef = filtered_ef(p.query.ef or c.config.ef, p.k, selectivity, c.settings.max_ef)
                slots, scores = c.hnsw.search(p.vector, p.k, ef=ef, allowed=bytearray(p.mask.view(np.uint8)))
            c.recall.offer(p.vector, p.k, p.mask, slots[0])
            return _result(c, p, slots[0], scores[0], "hnsw")
        except IncompleteResult:  # the graph ran dry under the filter: answer exactly instead
            pass
    slots, scores = c.exact.search(p.vector, p.k, None if p.mask is None else np.flatnonzero(p.mask))
    return _result(c, p, slots[0], scores[0], "exact")


def _result(c: Collection, p: _Planned, slots: np.ndarray, scores: np.ndarray, plan: Plan) -> SearchResult:
    q = p.query
    keep = slots >= 0
    if p.exclude is not None:
        keep &= slots != p.exclude
    if q.score_threshold is not None:
        keep &= scores >= q.score_threshold if higher_is_better(c.config.metric) else scores <= q.score_threshold
    slots, scores = slots[keep][: q.k], scores[keep][: q.k]
    vectors = c.exact.vectors(slots) if q.with_vector else None
    hits = [
        Hit(
            c.ids[slot],  # type: ignore[arg-type]
            score,
            c.payloads[slot] if q.with_payload else None,
            None if vectors is None else vectors[i],
        )
        for i, (slot, score) in enumerate(zip(slots.tolist(), scores.tolist(), strict=True))
    ]
    return SearchResult(hits, plan, p.candidates)
