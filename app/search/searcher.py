"""Running queries over a collection's read view: plan each, batch the plain graph queries, build hits."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from app.collections.models import CollectionConfig
from app.collections.view import Catalog, ReadView, WouldBlock
from app.core.errors import InvalidInput, NoLexicalIndex, PointNotFound, UmbrellaError
from app.index.base import IncompleteResult, higher_is_better
from app.index.tokens import match_expression
from app.search.diversity import mmr
from app.search.fusion import Fused, fuse
from app.search.groups import group
from app.search.models import Group, Grouping, Hits, Mode, Query, Rank, SearchResult
from app.search.planner import Plan, choose_plan, filtered_ef, post_filter_beam
from app.search.queries import embed_queries
from app.search.recall import RecallMonitor

# How much deeper than it contributes the keyword list of a hybrid search is read: asking SQLite for the BM25 of
# given rows (rowid IN …) re-ran the full-text query per row, 9 ms a search against 0.5 ms for reading deeper.
LEXICAL_DEPTH = 10
# Work a search may do on the event loop: an exact one over candidates × dim floats (20k × 50-d gathered from
# 399k: ~0.8 ms), a post-filtered graph search with a beam this wide (about 1.3 ms on 399k × 50-d).
INLINE_EXACT_FLOATS = 1_200_000
INLINE_BEAM = 1_000


class _NotQuick(Exception):
    """A query answered inline turned out slow (its post-filtered list held too few matches): a worker answers."""


@dataclass
class _Planned:
    query: Query
    vector: np.ndarray | None  # shape (1, dim), prepared for the metric; None in a keyword-only search
    k: int  # how many each retriever returns: one more than asked when the example point must be left out
    exclude: int | None
    mask: np.ndarray | None
    selected: np.ndarray | None  # the filter's slots when the indexes listed them (then mask only if read)
    candidates: int
    plan: Plan | Literal["lexical"]
    mode: Mode
    scans: bool  # the filter read payloads: the plan says so ("exact+scan")
    inline: bool = False  # answered on the event loop: a slow turn raises _NotQuick instead of taking it

    def named(self, plan: str) -> str:
        return f"{plan}+scan" if self.scans else plan


def search(collection: Catalog, queries: list[Query]) -> list[SearchResult]:
    """Embed what needs embedding, then answer every query under one read view. Blocking: run it in a thread."""
    queries = embed_queries(collection, queries)
    monitor = collection.find_part(RecallMonitor)
    with collection.reading() as view:
        return run_queries(view, queries, monitor)


def search_inline(collection: Catalog, query: Query) -> SearchResult | None:
    """The answer to a plain dense query (by vector or id, not exact) that is quick: a graph search, filtered
    afterwards when it has a filter, or an exact one over few candidates. None for any other query, or when a
    writer is in the way: those go to a worker thread.

    A quick query takes a fraction of a millisecond, less than the hop to a thread (about 0.5 ms on 2 cores,
    benchmarks/RESULTS.md, "Filtered search across the selectivity band"); a filter that reads payloads, an
    exact search over many points or a graph search with the filter inside can take tens of milliseconds,
    which on the event loop would stall every other request.
    """
    if (
        query.needs_embedding
        or query.exact
        or query.words is not None
        or query.mode not in (None, "dense")
        or not query.plain
    ):
        return None
    try:
        with collection.try_reading() as view:
            if query.filter and view.scans(query.filter):
                return None
            planned = _plan(view, query)
            planned.inline = True  # set on the plan made here, not copied into a new one (dataclasses.replace: 8 µs)
            quick = planned.plan == "hnsw" or planned.candidates * view.config.dim <= INLINE_EXACT_FLOATS
            if not quick:
                return None
            return _answer(view, [planned], collection.find_part(RecallMonitor))[0]
    except (WouldBlock, _NotQuick):
        return None


def run_queries(view: ReadView, queries: list[Query], monitor: RecallMonitor | None = None) -> list[SearchResult]:
    """Answer vector and id queries within a read view the caller holds."""
    prepared = _prepared_vectors(view, queries)
    return _answer(view, [_plan(view, q, prepared.get(i)) for i, q in enumerate(queries)], monitor)


def _prepared_vectors(view: ReadView, queries: list[Query]) -> dict[int, np.ndarray]:
    """The vectors of a batch's queries by vector, checked and normalised as one matrix, by query: one numpy
    pass instead of one per query (12 µs each; a row comes out bit for bit as it would alone). Empty for a
    single query, or when one vector is refused: each is then checked alone, so the error names its query."""
    dim = view.config.dim
    at = [i for i, q in enumerate(queries) if q.id is None and q.vector is not None and np.shape(q.vector) == (dim,)]
    if len(at) < 2:
        return {}
    try:
        matrix = view.check_vectors(np.asarray([queries[i].vector for i in at], dtype=np.float32), expected=len(at))
    except UmbrellaError:
        return {}
    return {i: matrix[row : row + 1] for row, i in enumerate(at)}


def _answer(view: ReadView, planned: list[_Planned], monitor: RecallMonitor | None) -> list[SearchResult]:
    results: list[SearchResult | None] = [None] * len(planned)
    # Unfiltered graph queries with the same k and ef go to hnswlib as one matrix: it spreads
    # them over its threads, which a loop of single queries cannot.
    groups: dict[tuple[int, int | None], list[int]] = defaultdict(list)
    for i, p in enumerate(planned):
        if p.plan == "hnsw" and p.mask is None and p.mode == "dense" and p.query.plain:
            groups[(p.k, p.query.ef)].append(i)
        else:
            results[i] = _run_one(view, p, monitor)
    for (k, ef), members in groups.items():
        assert view.graph is not None
        vectors = [planned[i].vector for i in members]
        try:  # one query's vector goes as it is: a copy into a matrix of one row costs a single search 5 µs
            slots, scores = view.graph.search(vectors[0] if len(vectors) == 1 else np.vstack(vectors), k, ef=ef)
        except IncompleteResult:  # heavy deletes starved the graph: answer these one by one
            for i in members:
                results[i] = _run_one(view, planned[i], monitor)
            continue
        if monitor is not None:
            for row, i in enumerate(members):
                monitor.offer(planned[i].vector, k, None, slots[row], view.seq)
        slot_rows, score_rows = slots.tolist(), scores.tolist()  # one call for the batch, not one per query
        for row, i in enumerate(members):
            results[i] = _plain(view, planned[i], slot_rows[row], score_rows[row], "hnsw")
    return results  # type: ignore[return-value]


def resolve_mode(config: CollectionConfig, q: Query) -> Mode:
    """The mode a query runs in: as asked, else hybrid when the collection keeps a keyword index and the
    query has words, else dense. 400 for a keyword mode the collection or the query cannot serve."""
    if q.mode is None:  # words that are all punctuation are no words
        return "hybrid" if config.lexical and q.words and match_expression(q.words) else "dense"
    if q.mode != "dense":
        if not config.lexical:
            raise NoLexicalIndex(
                f"collection '{config.name}' keeps no keyword index: create it with lexical fields, or "
                f"PUT /collections/{config.name}/lexical",
                mode=q.mode,
            )
        if not q.words:
            raise InvalidInput(f"a {q.mode} search needs words: send text, or keywords beside the query", mode=q.mode)
    return q.mode


def _plan(view: ReadView, q: Query, prepared: np.ndarray | None = None) -> _Planned:
    """How to answer one query; `prepared` is its vector already checked and normalised (a batch's)."""
    mode = resolve_mode(view.config, q)
    selected = view.selection(q.filter) if q.filter else None  # few points: listed, no mask over every slot
    mask = view.mask(q.filter) if q.filter and selected is None else None
    candidates = view.count if not q.filter else len(selected) if selected is not None else int(np.count_nonzero(mask))
    exclude = None
    if q.id is not None:
        exclude = view.slot_of(q.id)
        if exclude is None:
            raise PointNotFound(f"point {q.id!r} not found", missing=[q.id])
    wanted = q.k if mode == "dense" else max(q.k, q.fusion.candidates)
    if q.mmr is not None:
        wanted = max(wanted, q.mmr.candidates)
    k = wanted + (exclude is not None)  # "more like this" leaves the example out
    if selected is not None and mode != "dense":  # the keyword index reads a mask
        mask = view.mask_of(selected)
    if mode == "lexical":
        return _Planned(q, None, k, exclude, mask, selected, candidates, "lexical", mode, view.scans(q.filter))
    vector = q.vector if exclude is None else view.vectors(np.array([exclude]))[0]
    if prepared is None:
        vector = view.check_vectors(np.asarray(vector, dtype=np.float32).reshape(1, -1), expected=1)
    else:
        vector = prepared
    settings = view.settings
    plan = choose_plan(
        exact_requested=q.exact,
        graph_ready=view.graph is not None,
        candidates=candidates,
        dim=view.config.dim,
        exact_max_floats=settings.exact_max_floats if not q.filter else settings.filtered_exact_max_floats,
    )
    if selected is not None and mask is None and plan == "hnsw":
        mask = view.mask_of(selected)
    return _Planned(q, vector, k, exclude, mask, selected, candidates, plan, mode, view.scans(q.filter))


def _run_one(view: ReadView, p: _Planned, monitor: RecallMonitor | None) -> SearchResult:
    q = p.query
    if p.mode == "dense" and q.plain:
        slots, scores, plan = _dense(view, p, monitor)
        return _plain(view, p, slots.tolist(), scores.tolist(), plan)
    if q.group_by is not None:
        return _grouped(view, p, q.group_by, monitor)
    ranked, plan = _ranked(view, p, monitor)
    if q.mmr is not None:
        ranked = mmr(view, ranked, q.mmr, q.k, _higher(view, p))
    return _finish(view, p, ranked[: q.k], plan)


def _ranked(view: ReadView, p: _Planned, monitor: RecallMonitor | None) -> tuple[list[Fused], str]:
    """Up to p.k candidates best first in the query's mode, the example point and scores past the threshold left
    out; and the plan that found them."""
    q = p.query
    if p.mode == "dense":
        slots, scores, plan = _dense(view, p, monitor)
        fused = [Fused(s, v, None, None) for s, v in zip(slots.tolist(), scores.tolist(), strict=True) if s >= 0]
    elif p.mode == "lexical":
        assert q.words is not None  # resolve_mode saw to it
        slots, scores = view.lexical_search(q.words, p.k, p.mask)
        ranked = enumerate(zip(slots.tolist(), scores.tolist(), strict=True))
        fused, plan = [Fused(slot, score, None, Rank(i + 1, score)) for i, (slot, score) in ranked], "lexical"
    else:
        assert q.words is not None
        fused, plan = _hybrid(view, p, q.words, monitor)
    return _kept(view, p, fused), plan


def _kept(view: ReadView, p: _Planned, fused: list[Fused]) -> list[Fused]:
    """The candidates that are not the example point itself and score within the threshold."""
    return [f for f in fused if f.slot != p.exclude and _within(view, p, f.score)]


def _within(view: ReadView, p: _Planned, score: float) -> bool:
    """Whether a score passes the query's threshold (any does without one)."""
    limit = p.query.score_threshold
    if limit is None:
        return True
    return score >= limit if _higher(view, p) else score <= limit


def _higher(view: ReadView, p: _Planned) -> bool:
    """Whether a higher score is better: always, except for l2 distances in a dense search."""
    return p.mode != "dense" or higher_is_better(view.config.metric)


def _grouped(view: ReadView, p: _Planned, grouping: Grouping, monitor: RecallMonitor | None) -> SearchResult:
    """Search wider and wider until a group past the page shows up (so the page is full and another exists) or
    every candidate was seen."""
    wanted = grouping.offset + grouping.groups
    p = replace(p, k=max(p.k, min(4 * wanted * grouping.size, p.candidates)))
    while True:
        ranked, plan = _ranked(view, p, monitor)
        if p.query.mmr is not None:
            ranked = mmr(view, ranked, p.query.mmr, len(ranked), _higher(view, p))
        groups, more = group(ranked, view.payloads([f.slot for f in ranked]), grouping)
        if more or p.k >= p.candidates:  # a group past the page was seen (so the page is full), or all was
            break
        p = replace(p, k=min(2 * p.k, p.candidates))
    if p.k < p.candidates and p.query.mmr is None and p.mode != "hybrid":
        groups = [(key, _filled(view, p, grouping, key, members, monitor)) for key, members in groups]
    result = _finish(view, p, [hit for _, members in groups for hit in members], plan)
    ids, page, at = [h.id for h in result.hits], [], 0
    for key, members in groups:  # the hits come group by group, in this order
        page.append(Group(key, ids[at : at + len(members)]))
        at += len(members)
    return replace(result, groups=page, next_group_offset=wanted if more else None)


def _plain(view: ReadView, p: _Planned, slots: list[int], scores: list[float], plan: str) -> SearchResult:
    """The answer to a dense search with no re-ranking (the hot path): padding, the example point and scores past
    the threshold dropped, the k best kept. Most queries have none of those to drop and are a slice."""
    q = p.query
    if p.exclude is not None or q.score_threshold is not None or -1 in slots:
        kept = [
            (slot, score)
            for slot, score in zip(slots, scores, strict=True)
            if slot >= 0 and slot != p.exclude and _within(view, p, score)
        ]
        slots, scores = [slot for slot, _ in kept], [score for _, score in kept]
    found = hits(view, slots[: q.k], scores[: q.k], q.with_payload, q.with_vector)
    return SearchResult(found, p.named(plan), p.candidates)


def _filled(
    view: ReadView, p: _Planned, grouping: Grouping, key: object, members: list[Fused], monitor: RecallMonitor | None
) -> list[Fused]:
    """A group of the page with its best `size` hits: when fewer of them were among the candidates read, a search
    of the group's own points finds the rest (a group's members must not depend on how deep the page was read).
    Not for MMR (its picks depend on all candidates) nor hybrid (fused scores are normalised per search)."""
    if len(members) >= grouping.size:
        return members
    only = {"key": grouping.key, "match": key}
    q = p.query
    flt = {"must": [only]} if not q.filter else {"must": [q.filter, only]}
    own = _plan(view, replace(q, filter=flt, group_by=None, k=grouping.size))
    found, _ = _ranked(view, own, monitor)
    higher = _higher(view, p)
    merged = {f.slot: f for f in [*members, *found]}
    return sorted(merged.values(), key=lambda f: (-f.score if higher else f.score, f.slot))[: grouping.size]


def _finish(view: ReadView, p: _Planned, chosen: list[Fused], plan: str) -> SearchResult:
    q = p.query
    found = hits(view, [f.slot for f in chosen], [f.score for f in chosen], q.with_payload, q.with_vector)
    if p.mode != "dense":  # lexical and hybrid hits say where each list had them
        found = [replace(h, dense=f.dense, lexical=f.lexical) for h, f in zip(found, chosen, strict=True)]
    return SearchResult(found, p.named(plan), p.candidates, p.mode)


def _hybrid(view: ReadView, p: _Planned, words: str, monitor: RecallMonitor | None) -> tuple[list[Fused], Plan]:
    """Both retrievers' candidates, each scored by both (exact dense scores, BM25 of the words), fused.

    The keyword side is read LEXICAL_DEPTH times deeper than it contributes, so that dense candidates get their
    BM25 too; one beyond that depth counts as matching none of the words (its BM25 is below all of those).
    """
    assert p.vector is not None
    dense_slots, _, plan = _dense(view, p, monitor)
    deep_slots, deep_scores = view.lexical_search(words, LEXICAL_DEPTH * p.k, p.mask)
    union = list(dict.fromkeys([*dense_slots[dense_slots >= 0].tolist(), *deep_slots[: p.k].tolist()]))
    if not union:
        return [], plan
    slots, dense = view.exact_search(p.vector, len(union), np.array(union, np.int64))
    bm25 = dict(zip(deep_slots.tolist(), deep_scores.tolist(), strict=True))
    lexical = np.array([bm25.get(s, np.nan) for s in slots[0].tolist()], np.float32)
    return fuse(slots[0], dense[0], lexical, p.query.fusion, higher_is_better(view.config.metric)), plan


def _dense(view: ReadView, p: _Planned, monitor: RecallMonitor | None) -> tuple[np.ndarray, np.ndarray, Plan]:
    """(slots, scores, plan) of the graph or exact search for a planned vector query; slots -1 pad a short list."""
    assert p.vector is not None
    if p.plan == "hnsw":
        assert view.graph is not None
        try:
            if p.mask is None:
                slots, scores = view.graph.search(p.vector, p.k, ef=p.query.ef)
            else:
                slots, scores = _filtered_graph(view, p)
            if monitor is not None:
                monitor.offer(p.vector, p.k, p.mask, slots[0], view.seq)
            return slots[0], scores[0], "hnsw"
        except IncompleteResult:  # the graph ran dry under the filter: answer exactly instead
            if p.inline:
                raise _NotQuick from None
    slots, scores = view.exact_search(p.vector, p.k, _candidates(view, p))
    return slots[0], scores[0], "exact"


def _candidates(view: ReadView, p: _Planned) -> np.ndarray | None:
    """The slots an exact search reads: the filter's (None: every live point)."""
    if p.selected is not None:
        return p.selected
    return None if p.mask is None else view.selected(p.mask)


def _filtered_graph(view: ReadView, p: _Planned) -> tuple[np.ndarray, np.ndarray]:
    """A filtered graph search: an unfiltered one read wide enough to hold k matches, filtered afterwards.
    When it holds fewer (a filter that follows the vectors) or would need too wide a beam, the filter goes
    into the graph instead: hnswlib then calls back into Python for every node it visits, 10-30x slower
    in the 5-25 % band (benchmarks/RESULTS.md, planner section)."""
    assert view.graph is not None and p.mask is not None and p.vector is not None
    selectivity = p.candidates / max(view.count, 1)
    ef = p.query.ef or view.config.ef
    wide, beam = post_filter_beam(ef, p.k, selectivity)
    if p.inline and beam > INLINE_BEAM:
        raise _NotQuick
    if beam <= view.settings.max_ef:
        slots, scores = view.graph.search(p.vector, wide, ef=beam)
        keep = p.mask[slots[0]]
        if np.count_nonzero(keep) >= p.k:
            return slots[:, keep][:, : p.k], scores[:, keep][:, : p.k]
    if p.inline:
        raise _NotQuick
    beam = filtered_ef(ef, p.k, selectivity, view.settings.max_ef)
    return view.graph.search(p.vector, p.k, ef=beam, allowed=bytearray(p.mask.view(np.uint8)))


def hits(view: ReadView, slots: list[int], scores: list[float], with_payload: bool, with_vector: bool) -> Hits:
    """Hits for the slots, with payloads and vectors as asked."""
    return Hits(
        view.ids(slots),
        scores,
        view.payloads(slots) if with_payload else None,
        view.vectors(np.asarray(slots, np.int64)) if with_vector else None,
    )
