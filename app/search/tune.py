"""Tune: the smallest search ef whose recall@k on real queries (or stored points) reaches a target."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from app.collections.view import Catalog, ReadView
from app.core.errors import InvalidInput, NotReady
from app.index.base import IncompleteResult
from app.index.hnsw import HnswIndex
from app.search.recall import RecallMonitor

# ef values tried, in order; each about 1.5× the last, so the answer is within 50 % of the smallest that works
LADDER = (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192)
EXACT_CHUNK = 32  # queries per exact search: a chunk's score matrix is chunk × points floats
MIN_SEARCHES = 50  # `auto` tunes on recent searches once this many are kept, else on stored points
GRAPH_WAIT_S = 30.0  # a graph still being built is waited for this long before the answer is a 503
QuerySource = Literal["given", "searches", "points"]


@dataclass(frozen=True)
class Trial:
    ef: int
    recall: float  # mean over the queries of |graph ∩ exact| / k
    ms_per_query: float  # the queries run as one batch on the index's threads


@dataclass
class TuneReport:
    target_recall: float
    k: int
    queries: int
    query_source: QuerySource
    previous_ef: int
    chosen_ef: int  # the first ef reaching the target, else the widest tried
    reached: bool
    applied: bool
    trials: list[Trial] = field(default_factory=list)


def tune(
    collection: Catalog,
    *,
    target_recall: float,
    k: int,
    queries: int,
    seed: int,
    apply: bool,
    source: Literal["auto", "searches", "points"] = "auto",
    vectors: np.ndarray | None = None,
) -> TuneReport:
    """Search a set of queries through the graph at growing ef, against exact search.

    The queries, best first: `vectors` sent with the request; the collection's recent searches (what
    users really ask, `auto` takes them once MIN_SEARCHES are kept); or stored points, each leaving
    itself out. Stored points flatter the graph, because each is in it, linked to its neighbours: on
    100k GloVe they reach recall 0.98 at ef 16, where new queries get 0.56 (benchmarks/RESULTS.md).
    Each step holds a quiesced view (writers wait, searches go on): the exact answers must describe the
    graph that is measured, so a step that finds the data changed since they were taken takes them again.
    Between steps writers go on, so a drop or restore never waits for a whole run.
    """
    rng = np.random.default_rng(seed)
    collection.wait_for_graph(GRAPH_WAIT_S)  # just created or restored: a small graph is up in moments
    monitor = collection.find_part(RecallMonitor)
    recent = monitor.recent_queries() if monitor is not None else np.empty((0, collection.config.dim), np.float32)
    with collection.quiesced() as view:
        _check_graph(view)
        live = view.live_slots()
        if len(live) < k + 1:
            raise InvalidInput(
                f"collection '{view.name}' holds {len(live)} points: tuning recall@{k} needs at least {k + 1}",
                count=len(live),
            )
        kind, qs, own = _queries(view, live, recent, rng, queries, source, vectors)
        want = k + (own is not None)  # a stored point finds itself first: ask one more, then drop it
        seq, expected = view.seq, _truth(view, qs, want, own, k)
        report = TuneReport(target_recall, k, len(qs), kind, view.config.ef, view.config.ef, False, False)
        ladder = [e for e in LADDER if want <= e <= view.settings.max_ef]
    for ef in ladder:
        with collection.quiesced() as view:
            graph = _check_graph(view)
            if view.seq != seq:  # written to since the truth was taken
                seq, expected = view.seq, _truth(view, qs, want, own, k)
            started = time.perf_counter()
            found = graph_answers(graph, qs, want, ef)[0]
            seconds = time.perf_counter() - started
        if record_trial(report, ef, _top(found, own, k), expected, seconds):
            break
    if apply:
        collection.set_default_ef(report.chosen_ef)
        if monitor is not None:
            monitor.reset()  # its samples describe the old ef
        report.applied = True
    return report


def record_trial(report: TuneReport, ef: int, got: list[list[Any]], expected: list[list[Any]], seconds: float) -> bool:
    """Add the trial at this ef (recall of the graph's answers against the exact ones, time per query) to the
    report, make its ef the one chosen so far, and say whether it reached the target."""
    recall = float(np.mean([len(set(g) & set(e)) / len(e) for g, e in zip(got, expected, strict=True) if e]))
    report.trials.append(Trial(ef, round(recall, 4), round(seconds / len(got) * 1e3, 4)))
    report.chosen_ef = ef
    report.reached = recall >= report.target_recall
    return report.reached


def graph_answers(graph: HnswIndex, qs: np.ndarray, want: int, ef: int) -> tuple[np.ndarray, np.ndarray]:
    """The graph's `want` best (slots, scores) per query at this ef. A graph starved by deletes cannot return
    `want` for some queries (hnswlib refuses the whole batch): those count as misses (slot -1), not an error."""
    try:
        return graph.search(qs, want, ef=ef)
    except IncompleteResult:
        slots, scores = [], []
        for q in qs:
            try:
                found = graph.search(q, want, ef=ef)
                slots.append(found[0][0])
                scores.append(found[1][0])
            except IncompleteResult:
                slots.append(np.full(want, -1, np.int64))
                scores.append(np.full(want, np.nan, np.float32))
        return np.vstack(slots), np.vstack(scores)


def _check_graph(view: ReadView) -> HnswIndex:
    if view.graph is None:
        raise NotReady(
            f"collection '{view.name}': its graph is not ready (being built, or its build failed: see index_state)"
        )
    return view.graph


def _truth(view: ReadView, qs: np.ndarray, want: int, own: np.ndarray | None, k: int) -> list[list[int]]:
    """Each query's exact top k, in chunks: a chunk's score matrix is chunk × points floats."""
    chunks = range(0, len(qs), EXACT_CHUNK)
    return _top(np.vstack([view.exact_search(qs[i : i + EXACT_CHUNK], want)[0] for i in chunks]), own, k)


def _queries(
    view: ReadView,
    live: np.ndarray,
    recent: np.ndarray,
    rng: np.random.Generator,
    n: int,
    source: str,
    vectors: np.ndarray | None,
) -> tuple[QuerySource, np.ndarray, np.ndarray | None]:
    """(where from, the query matrix, each query's own slot when the queries are stored points)."""
    if vectors is not None:
        return "given", view.check_vectors(vectors, expected=len(vectors)), None
    if source == "searches" or (source == "auto" and len(recent) >= MIN_SEARCHES):
        if len(recent) == 0:
            raise InvalidInput(f"collection '{view.name}' has no recent unfiltered graph searches to tune on")
        return "searches", recent[rng.choice(len(recent), size=min(n, len(recent)), replace=False)], None
    own = rng.choice(live, size=min(n, len(live)), replace=False)
    return "points", view.vectors(own), own


def _top(rows: np.ndarray, own: np.ndarray | None, k: int) -> list[list[int]]:
    """Each query's first k slots, other than its own when the queries are stored points."""
    owners = [-1] * len(rows) if own is None else own.tolist()
    return [[s for s in row if s != o and s >= 0][:k] for row, o in zip(rows.tolist(), owners, strict=True)]
