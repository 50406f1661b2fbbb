"""Running queries over a collection's read view: plan each, batch the plain graph queries, build hits."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from app.collections.view import Catalog, ReadView, WouldBlock
from app.core.errors import PointNotFound
from app.index.base import IncompleteResult, higher_is_better
from app.search.models import Hit, Query, SearchResult
from app.search.planner import Plan, choose_plan, filtered_ef
from app.search.queries import embed_queries
from app.search.recall import RecallMonitor


@dataclass
class _Planned:
    query: Query
    vector: np.ndarray  # shape (1, dim), prepared for the metric
    k: int  # one more than asked when the example point must be left out
    exclude: int | None
    mask: np.ndarray | None
    candidates: int
    plan: Plan


def search(collection: Catalog, queries: list[Query]) -> list[SearchResult]:
    """Embed what needs embedding, then answer every query under one read view. Blocking: run it in a thread."""
    queries = embed_queries(collection, queries)
    monitor = collection.find_part(RecallMonitor)
    with collection.reading() as view:
        return run_queries(view, queries, monitor)


def search_inline(collection: Catalog, query: Query) -> SearchResult | None:
    """The answer to a plain graph query (by vector or id, no filter, not exact) when it can be had at once;
    None for any other query, or when a writer is in the way: those go to a worker thread.

    A graph query takes a fraction of a millisecond, less than the hop to a thread; an exact or filtered
    search can take tens of milliseconds, which on the event loop would stall every other request.
    """
    if query.needs_embedding or query.filter or query.exact:
        return None
    try:
        with collection.try_reading() as view:
            planned = _plan(view, query)
            if planned.plan != "hnsw":
                return None
            return _answer(view, [planned], collection.find_part(RecallMonitor))[0]
    except WouldBlock:
        return None


def run_queries(view: ReadView, queries: list[Query], monitor: RecallMonitor | None = None) -> list[SearchResult]:
    """Answer vector and id queries within a read view the caller holds."""
    return _answer(view, [_plan(view, q) for q in queries], monitor)


def _answer(view: ReadView, planned: list[_Planned], monitor: RecallMonitor | None) -> list[SearchResult]:
    results: list[SearchResult | None] = [None] * len(planned)
    # Unfiltered graph queries with the same k and ef go to hnswlib as one matrix: it spreads
    # them over its threads, which a loop of single queries cannot.
    groups: dict[tuple[int, int | None], list[int]] = defaultdict(list)
    for i, p in enumerate(planned):
        if p.plan == "hnsw" and p.mask is None:
            groups[(p.k, p.query.ef)].append(i)
        else:
            results[i] = _run_one(view, p, monitor)
    for (k, ef), members in groups.items():
        assert view.graph is not None
        try:
            slots, scores = view.graph.search(np.vstack([planned[i].vector for i in members]), k, ef=ef)
        except IncompleteResult:  # heavy deletes starved the graph: answer these one by one
            for i in members:
                results[i] = _run_one(view, planned[i], monitor)
            continue
        for row, i in enumerate(members):
            if monitor is not None:
                monitor.offer(planned[i].vector, k, None, slots[row], view.seq)
            results[i] = _result(view, planned[i], slots[row], scores[row], "hnsw")
    return results  # type: ignore[return-value]


def _plan(view: ReadView, q: Query) -> _Planned:
    exclude = None
    vector = q.vector
    if q.id is not None:
        exclude = view.slot_of(q.id)
        if exclude is None:
            raise PointNotFound(f"point {q.id!r} not found", missing=[q.id])
        vector = view.vectors(np.array([exclude]))[0]  # "more like this" leaves the example out
    vector = view.check_vectors(np.asarray(vector, dtype=np.float32).reshape(1, -1), expected=1)
    mask = view.mask(q.filter) if q.filter else None
    candidates = view.count if mask is None else int(np.count_nonzero(mask))
    settings = view.settings
    plan = choose_plan(
        exact_requested=q.exact,
        graph_ready=view.graph is not None,
        candidates=candidates,
        dim=view.config.dim,
        exact_max_floats=settings.exact_max_floats if mask is None else settings.filtered_exact_max_floats,
    )
    return _Planned(q, vector, q.k + (exclude is not None), exclude, mask, candidates, plan)


def _run_one(view: ReadView, p: _Planned, monitor: RecallMonitor | None) -> SearchResult:
    if p.plan == "hnsw":
        assert view.graph is not None
        try:
            if p.mask is None:
                slots, scores = view.graph.search(p.vector, p.k, ef=p.query.ef)
            else:
                selectivity = p.candidates / max(view.count, 1)
                ef = filtered_ef(p.query.ef or view.config.ef, p.k, selectivity, view.settings.max_ef)
                slots, scores = view.graph.search(p.vector, p.k, ef=ef, allowed=bytearray(p.mask.view(np.uint8)))
            if monitor is not None:
                monitor.offer(p.vector, p.k, p.mask, slots[0], view.seq)
            return _result(view, p, slots[0], scores[0], "hnsw")
        except IncompleteResult:  # the graph ran dry under the filter: answer exactly instead
            pass
    slots, scores = view.exact_search(p.vector, p.k, None if p.mask is None else np.flatnonzero(p.mask))
    return _result(view, p, slots[0], scores[0], "exact")


def _result(view: ReadView, p: _Planned, slots: np.ndarray, scores: np.ndarray, plan: Plan) -> SearchResult:
    q = p.query
    keep = slots >= 0
    if p.exclude is not None:
        keep &= slots != p.exclude
    if q.score_threshold is not None:
        keep &= scores >= q.score_threshold if higher_is_better(view.config.metric) else scores <= q.score_threshold
    slots, scores = slots[keep][: q.k], scores[keep][: q.k]
    return SearchResult(hits(view, slots.tolist(), scores.tolist(), q.with_payload, q.with_vector), plan, p.candidates)


def hits(view: ReadView, slots: list[int], scores: list[float], with_payload: bool, with_vector: bool) -> list[Hit]:
    """Hits for the slots, with payloads and vectors as asked."""
    payloads = view.payloads(slots) if with_payload else [None] * len(slots)
    vectors = view.vectors(np.asarray(slots, np.int64)) if with_vector else None
    return [
        Hit(pid, score, payload, None if vectors is None else vectors[i])
        for i, (pid, score, payload) in enumerate(zip(view.ids(slots), scores, payloads, strict=True))
    ]
