"""ShardedCollection: the router's side of a collection split into shards, each kept in several copies on Ray.

Writes: a point goes to shard `shard_of(id)`; each shard numbers its batches, sends a batch to every copy that
holds all the shard's earlier batches (a "fresh" copy) and acknowledges it once `write_quorum` of them have
committed it (each commits to its own SQLite with fsync first). A copy that misses a batch (its node is gone,
it timed out) is no longer fresh: it gets no writes and serves no reads until `repair` has caught it up from a
fresh copy's rows by batch number. Reads ask one fresh copy per shard (round robin), falling over to the next;
a shard with no fresh copy that answers is a 503 shard_unavailable. Searches ask every shard for k and merge.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import orjson

from app.cluster.groups import Merged, asked_of_shards, fill_queries
from app.cluster.placement import shard_of
from app.collections.ingest import PointInput, embed_items, vectors_of
from app.collections.models import CollectionConfig, Page, Point, PointId, Source
from app.collections.reembed import brought_up_to_date
from app.collections.view import EventRow, QueriedEvent, WouldBlock, prepare_vectors
from app.core.config import Settings
from app.core.errors import InvalidInput, NotOnShards, NotReady, PointNotFound, ShardUnavailable, UmbrellaError
from app.embedding.base import Embedder, Modality
from app.index.payload import FieldType, PayloadIndex
from app.search.diversity import mmr_order
from app.search.examples import Example, Strategy, average_target, best_scores, threshold
from app.search.facets import Facets, added_up
from app.search.fusion import fuse
from app.search.groups import group
from app.search.models import Group, Hit, Query, SearchResult
from app.search.queries import embed_queries
from app.search.recall import RECENT
from app.search.searcher import LEXICAL_DEPTH, resolve_mode
from app.search.tune import GRAPH_WAIT_S, LADDER, MIN_SEARCHES, TuneReport, record_trial
from app.storage.sqlite_store import PointStore

log = logging.getLogger(__name__)
T = TypeVar("T")
FACET_DEPTH = 1000  # values each shard lists for a facet: the most a request may ask for
EVENTS_FILE = "events.sqlite"  # in the collection's folder on the router: its events and logged searches


@dataclass(frozen=True)
class Layout:
    """How a collection is spread: shards, copies of each, the copies a write needs, and where each copy is."""

    shards: int
    replicas: int
    write_quorum: int
    nodes: tuple[tuple[str, ...], ...]  # the node label of each copy, shard by shard
    generations: tuple[tuple[int, ...], ...] = ()  # how often each copy was made again elsewhere (none: all 0)

    def generation(self, shard: int, copy: int) -> int:
        return self.generations[shard][copy] if self.generations else 0

    def moved(self, shard: int, copy: int, label: str) -> Layout:
        """This layout with one copy made again on the node `label`."""
        nodes = [list(copies) for copies in self.nodes]
        generations = [[self.generation(s, c) for c in range(len(copies))] for s, copies in enumerate(self.nodes)]
        nodes[shard][copy] = label
        generations[shard][copy] += 1
        return replace(self, nodes=tuple(map(tuple, nodes)), generations=tuple(map(tuple, generations)))

    def to_json(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "nodes": [list(copies) for copies in self.nodes],
            "generations": [list(g) for g in self.generations],
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Layout:
        nodes = tuple(map(tuple, stored["nodes"]))
        generations = tuple(map(tuple, stored.get("generations") or ()))
        return cls(stored["shards"], stored["replicas"], stored["write_quorum"], nodes, generations)


class Shard:
    """The router's record of one shard: its copies, which hold every batch, and the number of the last batch."""

    def __init__(self, index: int, copies: list[Any]) -> None:
        self.index, self.copies = index, copies
        self.fresh = [False] * len(copies)
        self.seq: int | None = None  # unknown until a copy has answered
        self.lock = threading.RLock()  # numbers batches and hands them to the copies in that order
        self._turn = itertools.count()

    def readable(self, *, spread: bool = True) -> list[int]:
        """Fresh copies, starting from the next in turn so reads spread over them, or (not `spread`) always from
        the first: pages of one scroll must come from one copy, as each copy numbers its slots its own way."""
        fresh = [c for c, ok in enumerate(self.fresh) if ok]
        if not fresh:
            return []
        start = next(self._turn) % len(fresh) if spread else 0
        return fresh[start:] + fresh[:start]


class ShardedCollection:
    """A collection over `layout.shards` shards; offers what the REST routes call on a single-node collection."""

    def __init__(
        self,
        config: CollectionConfig,
        layout: Layout,
        copies: list[list[Any]],
        embedder: Embedder | None,
        settings: Settings,
        folder: Path,
        keep: Callable[[CollectionConfig, Layout], None] = lambda _config, _layout: None,
        parts: tuple[Callable[[Any], Any], ...] = (),
        models: Callable[[dict[str, Any]], Embedder] | None = None,
    ) -> None:
        """`folder`: this collection's own folder on the router's disk (its events, ranker and tuned models);
        `parts`: made for it once it is up (personalization, fine-tuning), as the registry makes a single-node
        collection's; `models`: the embedder a spec names (a tuned version among this collection's models)."""
        import ray
        from ray.exceptions import GetTimeoutError, ObjectLostError, RayActorError, WorkerCrashedError

        self._ray = ray
        self._unreachable = (RayActorError, GetTimeoutError, ObjectLostError, WorkerCrashedError)
        self.config, self.layout, self.embedder, self.settings, self.folder = config, layout, embedder, settings, folder
        self.shards = [Shard(i, handles) for i, handles in enumerate(copies)]
        self._keep = keep  # stores a changed config or layout (the cluster's spec file), so a restart finds it
        self._checks = PayloadIndex(config.payload_indexes)  # the copies check too; a batch must pass everywhere
        folder.mkdir(parents=True, exist_ok=True)
        self._log = PointStore(folder / EVENTS_FILE, durable=settings.durability == "fsync")
        self._make_parts, self._parts, self._models = parts, {}, models
        self._recent: deque[np.ndarray] = deque(maxlen=RECENT)  # unfiltered graph searches' vectors, for tune
        self._recent_lock = threading.Lock()
        self.closed = False

    @property
    def name(self) -> str:
        return self.config.name

    def __getattr__(self, attr: str) -> Any:
        """Every other operation of a single-node collection (snapshots, events, tune, …): a clear 400, not a 500.
        Only called for names the class does not define."""
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise NotOnShards(
            f"collection '{self.config.name}' is sharded: this operation is not offered on sharded collections yet",
            operation=attr,
        )

    # ---- talking to copies ------------------------------------------------------------------------
    def _call(self, handle: Any, method: str, *args: Any, read: bool = False, **kwargs: Any) -> Any:
        fn = getattr(handle, method)
        if read:  # reads run beside each other on a copy; writes (and catch-ups) one at a time, in order
            fn = fn.options(concurrency_group="read")
        return fn.remote(*args, **kwargs)

    def _get(self, ref: Any) -> Any:
        """The answer of a call; a copy's own error (bad filter, disk full) is raised as itself."""
        try:
            return self._ray.get(ref, timeout=self.settings.shard_timeout_s)
        except self._ray.exceptions.RayTaskError as err:
            if isinstance(err.cause, UmbrellaError):
                raise err.cause from None
            raise

    def start(self) -> None:
        """Learn each shard's last batch from its copies (those that hold it are fresh), then make the parts."""
        for shard in self.shards:
            self._learn(shard)
        self._configure_fresh(self.config)  # a change of fields cut short by a stop
        self._attach_parts()

    def _attach_parts(self) -> None:
        for part in self._parts.values():
            part.close()
        self._parts = {}
        for make in self._make_parts:
            part = make(self)
            self._parts[type(part)] = part

    def _learn(self, shard: Shard) -> None:
        """Find where a shard stands from its copies, when no copy is known to hold every batch (at start, or after
        every copy fell behind). The copies with the highest batch number are fresh, but only when enough answer
        that one of them must hold every acknowledged write: replicas - write_quorum + 1 of them meet every set
        of write_quorum copies. With fewer, the shard stays unavailable rather than serve a copy that lacks one.
        A batch no write quorum took (never acknowledged) may be kept or dropped this way."""
        refs = [self._call(h, "state", read=True) for h in shard.copies]
        seqs: list[int | None] = []
        for ref in refs:
            try:
                seqs.append(self._get(ref)["seq"])
            except self._unreachable:
                seqs.append(None)
        known = [s for s in seqs if s is not None]
        if len(known) >= self.layout.replicas - self.layout.write_quorum + 1:
            shard.seq = max(known if shard.seq is None else [*known, shard.seq])
            top = max(known)
            shard.fresh = [s == top for s in seqs]

    def _read(
        self, shard: Shard, method: str, *args: Any, spread: bool = True, in_order: bool = False, **kwargs: Any
    ) -> Any:
        """Ask one fresh copy, falling over to the next when one does not answer. `in_order`: in the copy's write
        order, after every batch already sent to it (and always the first fresh copy)."""
        for copy in shard.readable(spread=spread and not in_order):
            try:
                return self._get(self._call(shard.copies[copy], method, *args, read=not in_order, **kwargs))
            except self._unreachable:
                self._lost(shard, copy)
        raise ShardUnavailable(
            f"shard {shard.index} of '{self.name}' has no copy that answers", shard=shard.index, collection=self.name
        )

    def _read_all(
        self, method: str, args_of: Callable[[int], tuple[Any, ...]], shards: list[int], *, every: bool = True
    ) -> dict[int, Any]:
        """One answer per shard, the shards asked at once (each from one fresh copy, falling over). A shard with no
        copy that answers is a ShardUnavailable, or (not `every`) has no answer."""
        pending: dict[int, list[int]] = {s: self.shards[s].readable() for s in shards}
        answers: dict[int, Any] = {}
        while pending:
            refs = {}
            for s, order in pending.items():
                if not order and not every:
                    continue
                if not order:
                    raise ShardUnavailable(
                        f"shard {s} of '{self.name}' has no copy that answers", shard=s, collection=self.name
                    )
                refs[s] = (order[0], self._call(self.shards[s].copies[order[0]], method, *args_of(s), read=True))
            retry = {}
            for s, (copy, ref) in refs.items():
                try:
                    answers[s] = self._get(ref)
                except self._unreachable:
                    self._lost(self.shards[s], copy)
                    retry[s] = pending[s][1:]
            pending = retry
        return answers

    def _lost(self, shard: Shard, copy: int) -> None:
        if shard.fresh[copy]:
            log.warning("copy %d of shard %d of %s does not answer: it takes no writes until repaired",
                        copy, shard.index, self.name)  # fmt: skip
        shard.fresh[copy] = False

    @contextmanager
    def _locked(self, shards: list[int]) -> Iterator[None]:
        held = [self.shards[s].lock for s in sorted(shards)]  # always in the same order: no deadlock
        for lock in held:
            lock.acquire()
        try:
            yield
        finally:
            for lock in reversed(held):
                lock.release()

    def _write(self, method: str, args_of: dict[int, tuple[Any, ...]]) -> dict[int, Any]:
        """Send one batch per shard to the shard's fresh copies; the answers of the shards that reached the write
        quorum. Raises ShardUnavailable naming, per shard, whether its part was stored."""
        sent: dict[int, list[tuple[int, Any]]] = {}
        with self._locked(list(args_of)):
            for s, args in args_of.items():
                shard = self.shards[s]
                if shard.seq is None:
                    self._learn(shard)
                if shard.seq is None:
                    sent[s] = []
                    continue
                shard.seq += 1  # never reused: a batch that failed may still be on a copy that took it
                sent[s] = [(c, self._call(h, method, shard.seq, *args)) for c, h in enumerate(shard.copies)
                           if shard.fresh[c]]  # fmt: skip
        answers: dict[int, Any] = {}
        failed: list[int] = []
        error: UmbrellaError | None = None
        refused: InvalidInput | None = None
        for s, refs in sent.items():
            acks = 0
            for copy, ref in refs:
                try:
                    answers[s] = self._get(ref)
                    acks += 1
                except self._unreachable:
                    self._lost(self.shards[s], copy)
                except InvalidInput as err:  # the request itself (a filter on a strict collection): every copy
                    refused = err  # refuses it alike before writing, so none falls behind
                except UmbrellaError as err:  # this copy could not take the batch (its disk is full)
                    self._lost(self.shards[s], copy)
                    error = err
            if acks < self.layout.write_quorum:
                failed.append(s)
                answers.pop(s, None)
        if refused is not None:
            raise refused
        if failed:
            raise ShardUnavailable(
                f"{len(failed)} of {len(args_of)} shard(s) of '{self.name}' could not store their part with "
                f"{self.layout.write_quorum} copies"
                + (f" ({error.message})" if error else "")
                + "; the other shards stored theirs; sending the same batch again is safe",
                failed_shards=failed,
                stored_shards=sorted(answers),
            )
        return answers

    # ---- writes -----------------------------------------------------------------------------------
    def upsert(
        self,
        ids: list[PointId],
        vectors: np.ndarray,
        payloads: list[dict[str, Any] | None],
        sources: list[Source | None] | None = None,
    ) -> int:
        """Insert or replace points; per shard all or nothing, and each shard's part on `write_quorum` copies."""
        vectors = prepare_vectors(self.config, vectors, expected=len(ids))
        for pid, payload in zip(ids, payloads, strict=True):  # refused here, so no shard stores half a batch
            try:
                self._checks.check(payload)
                orjson.dumps(payload)
            except InvalidInput as err:
                raise InvalidInput(f"point {pid!r}: {err.message}", id=pid) from None
            except orjson.JSONEncodeError as err:
                raise InvalidInput(f"point {pid!r}: payload cannot be stored: {err}", id=pid) from None
        rows = self._by_shard(ids)
        args = {
            s: (
                [ids[i] for i in at],
                vectors[at],
                [payloads[i] for i in at],
                None if sources is None else [sources[i] for i in at],
            )
            for s, at in rows.items()
        }
        self._write("upsert", args)
        return self._batch_number()

    def upsert_inputs(self, points: list[PointInput]) -> int:
        vectors, sources = vectors_of(self.embedder, self.name, self.config.dim, points)
        return self.upsert([p.id for p in points], vectors, [p.payload for p in points], sources)

    def delete(self, ids: list[PointId]) -> tuple[int, int]:
        answers = self._write("delete", {s: (held,) for s, held in self._ids_by_shard(ids).items()})
        return sum(count for count, _ in answers.values()), self._batch_number()

    def delete_by_filter(self, flt: dict[str, Any]) -> tuple[int, int]:
        answers = self._write("delete_by_filter", {s: (flt,) for s in range(self.layout.shards)})
        return sum(count for count, _ in answers.values()), self._batch_number()

    def _by_shard(self, ids: list[PointId]) -> dict[int, list[int]]:
        """The positions of the ids, by the shard each goes to."""
        rows: dict[int, list[int]] = {}
        for i, pid in enumerate(ids):
            rows.setdefault(shard_of(pid, self.layout.shards), []).append(i)
        return rows

    def _ids_by_shard(self, ids: list[PointId]) -> dict[int, list[PointId]]:
        return {s: [ids[i] for i in at] for s, at in self._by_shard(ids).items()}

    def _batch_number(self) -> int:
        """A write's number for the client: the sum of the shards' last batch numbers, which only grows."""
        return sum(shard.seq or 0 for shard in self.shards)

    def embed(self, modality: Modality, items: list[Any], ids: list[PointId] | None = None) -> np.ndarray:
        return embed_items(self.embedder, self.name, modality, items, ids)

    # ---- reads ------------------------------------------------------------------------------------
    def get(
        self, ids: list[PointId], *, with_payload: bool = True, with_vector: bool = False, with_source: bool = False
    ) -> list[Point]:
        found = {orjson.dumps(p.id): p for p in self.found(ids, with_payload=with_payload, with_vector=with_vector,
                                                            with_source=with_source)}  # fmt: skip
        missing = [pid for pid in ids if orjson.dumps(pid) not in found]
        if missing:
            raise PointNotFound(f"{len(missing)} point(s) not found", missing=missing[:20])
        return [found[orjson.dumps(pid)] for pid in ids]

    def found(
        self, ids: list[PointId], *, with_payload: bool, with_vector: bool, with_source: bool = False
    ) -> list[Point]:
        """The stored points among the ids, in no set order; each shard that holds some is asked once."""
        by_shard = self._ids_by_shard(ids)
        answers = self._read_all("get", lambda s: (by_shard[s], with_payload, with_vector, with_source), list(by_shard))
        return [p for points in answers.values() for p in points]

    def matching(self, ids: list[PointId], flt: dict[str, Any]) -> list[PointId]:
        """The stored points among the ids that pass the filter."""
        by_shard = self._ids_by_shard(ids)
        answers = self._read_all("matching", lambda s: (by_shard[s], flt), list(by_shard))
        return [pid for held in answers.values() for pid in held]

    def count_matching(self, flt: dict[str, Any] | None) -> int:
        return sum(self._read_all("count", lambda s: (flt,), list(range(self.layout.shards))).values())

    def scroll(
        self,
        flt: dict[str, Any] | None,
        limit: int,
        offset: int | None,
        *,
        with_payload: bool,
        with_vector: bool,
        with_source: bool = False,
    ) -> Page:
        """Shard after shard, each in its slot order. An offset is slot × shards + shard, so a page goes on where
        the last one stopped, in whichever shard that was. The pages come from each shard's first fresh copy; when
        that copy falls behind mid-scroll, the rest comes from another whose slots differ: points may be missed or
        repeated then (as when points are written during a scroll on one node)."""
        count = self.layout.shards
        shard, start = (offset or 0) % count, (offset or 0) // count
        points: list[Point] = []
        wanted = {"with_payload": with_payload, "with_vector": with_vector, "with_source": with_source}
        while shard < count:
            # asked for 0, a shard still says where its next match is: the page ends exactly at the last point
            page = self._read(
                self.shards[shard], "scroll", flt, limit - len(points), start or None, spread=False, **wanted
            )
            points.extend(page.points)
            if page.next_offset is not None:
                return Page(points, page.next_offset * count + shard)
            shard, start = shard + 1, 0
        return Page(points, None)

    def search(self, queries: list[Query]) -> list[SearchResult]:
        """Every shard answers every query for its k; the k best of their hits are the answer. A hybrid query is
        asked as its two halves (dense, keywords), each merged over the shards and then fused here, since a
        shard's own fusion normalises over its own candidates and its scores do not compare with another's."""
        asked = [self._by_vector(self._for_shards(q)) for q in embed_queries(self, queries)]
        hybrid = [resolve_mode(self.config, a) == "hybrid" for a in asked]
        self._remember([a for a, h in zip(asked, hybrid, strict=True) if not h])
        # group_by: exact over the shards' own groups for a plain ranking; over the merged candidates here when
        # they are re-ranked first (fused, or MMR), as one node groups its re-ranked candidates
        regrouped = [q.group_by is not None and (h or q.mmr is not None) for q, h in zip(queries, hybrid, strict=True)]
        asked = [
            _candidates_for_groups(a) if r else asked_of_shards(a, q.id) if a.group_by else a
            for q, a, r in zip(queries, asked, regrouped, strict=True)
        ]
        sent = [half for a, h in zip(asked, hybrid, strict=True) for half in (_halves(a) if h else [a])]
        every = not all(q.partial for q in queries)  # in a batch, one query that wants every shard decides
        answers = self._read_all("search", lambda s: (sent,), list(range(self.layout.shards)), every=every)
        if not answers:
            raise ShardUnavailable(f"no shard of '{self.name}' has a copy that answers", collection=self.name)
        partial, higher, at, results = len(answers) < self.layout.shards, self.config.metric != "l2", 0, []
        for q, a, h, r in zip(queries, asked, hybrid, regrouped, strict=True):
            parts = [[answers[s][at + i] for s in sorted(answers)] for i in range(2 if h else 1)]
            at += len(parts)
            if h:
                result = self._fused(q, a, *parts)
            elif q.group_by is not None and not r:
                result = self._grouped(q, a, dict(zip(sorted(answers), parts[0], strict=True)), higher)
            else:
                k = a.k - (q.id is not None) if q.mmr is not None or r else q.k
                result = self._diverse(merge(parts[0], k, higher, q.id), q, higher)
            results.append(replace(_regroup(result, q) if r else result, partial=partial))
        return results

    def _remember(self, asked: list[Query]) -> None:
        """Keep the vectors of unfiltered graph searches (as the shards are asked them) for tune, as one node's
        recall monitor keeps its own."""
        vectors = [
            a.vector for a in asked if a.vector is not None and not a.filter and not a.exact and a.mode != "lexical"
        ]
        if vectors:
            prepared = prepare_vectors(self.config, np.vstack(vectors).astype(np.float32), len(vectors))
            with self._recent_lock:
                self._recent.extend(prepared)

    def _fused(
        self, q: Query, a: Query, dense_answers: list[SearchResult], word_answers: list[SearchResult]
    ) -> SearchResult:
        """A hybrid answer as one node makes it (app/search/searcher._hybrid): the union of the best dense and the
        best keyword candidates, each scored by both (a keyword candidate's dense score computed from its
        vector, BM25 from the deep keyword list or none), fused, the k best kept."""
        higher, wanted = self.config.metric != "l2", max(a.k, a.fusion.candidates)
        dense = merge(dense_answers, wanted, higher, q.id)
        deep = merge(word_answers, LEXICAL_DEPTH * wanted, True, q.id)
        found: dict[bytes, Hit] = {}
        for hit in [*dense.hits, *deep.hits[:wanted]]:
            found.setdefault(orjson.dumps(hit.id), hit)
        if not found:
            return SearchResult([], dense.plan, dense.candidates, "hybrid")
        keys = list(found)
        similarity = {orjson.dumps(h.id): h.score for h in dense.hits}
        bm25 = {orjson.dumps(h.id): h.score for h in deep.hits}
        unscored = [key for key in keys if key not in similarity]
        if unscored:
            assert a.vector is not None
            similarity.update(
                zip(unscored, self._scores(a.vector, [found[key].vector for key in unscored]), strict=True)
            )
        fused = fuse(
            np.arange(len(keys)),
            np.array([similarity[key] for key in keys], np.float32),
            np.array([bm25.get(key, np.nan) for key in keys], np.float32),
            a.fusion,
            higher,
        )
        kept = [f for f in fused if q.score_threshold is None or f.score >= q.score_threshold]
        hits = [replace(found[keys[f.slot]], score=f.score, dense=f.dense, lexical=f.lexical) for f in kept]
        result = SearchResult(hits if q.mmr or q.group_by else hits[: q.k], dense.plan, dense.candidates, "hybrid")
        return self._diverse(result, q, True)  # fused scores: higher is better

    def _grouped(self, q: Query, a: Query, answers: dict[int, SearchResult], higher: bool) -> SearchResult:
        """The page of groups over the shards (app/cluster/groups.py): merged from each shard's own groups, then
        filled from the shards that may hold members of a chosen group they did not list."""
        assert q.group_by is not None
        first = next(iter(answers.values()))
        higher = higher or first.mode != "dense"
        merged = Merged(q.group_by, higher)
        for s, answer in answers.items():
            merged.add(s, answer)
        page = merged.page()
        missing = merged.missing(page)
        fill = {s: fill_queries(a, [merged.values[key] for key in keys]) for s, keys in missing.items()}
        for s, found in self._read_all("search", lambda s: (fill[s],), list(fill)).items():
            for key, answer in zip(missing[s], found, strict=True):
                merged.fill(key, answer)
        plans = Counter(answer.plan for answer in answers.values())
        candidates = sum(answer.candidates for answer in answers.values())
        return merged.result(page, plans.most_common(1)[0][0], candidates, first.mode)

    def _scores(self, query: np.ndarray, vectors: list[Any]) -> list[float]:
        """Dense scores as a shard reports them: dot products of prepared vectors, or Euclidean distance."""
        q = prepare_vectors(self.config, np.asarray(query, np.float32).reshape(1, -1), 1)[0]
        stored = np.stack(vectors).astype(np.float32)
        if self.config.metric == "l2":
            return np.sqrt(((stored - q) ** 2).sum(axis=1)).tolist()  # type: ignore[no-any-return]
        return (stored @ q).tolist()  # type: ignore[no-any-return]

    @staticmethod
    def _for_shards(q: Query) -> Query:
        """An MMR query asks every shard for its candidates with their vectors; the picking happens on merge."""
        if q.mmr is None:
            return q
        return replace(q, mmr=None, k=max(q.k, q.mmr.candidates), with_vector=True)

    @staticmethod
    def _diverse(result: SearchResult, q: Query, higher: bool) -> SearchResult:
        """The k hits MMR picks from the merged candidates (as one node picks from its own; all of them, in MMR's
        order, when they are grouped next), or the hits; vectors only where the query asked for them."""
        hits, k = result.hits, q.k if q.group_by is None else len(result.hits)
        if q.mmr is not None and hits:
            hits = [hits[i] for i in mmr_order([h.score for h in hits], np.stack([h.vector for h in hits]), q.mmr, k,
                                               higher)]  # fmt: skip
        if not q.with_vector and any(h.vector is not None for h in hits):  # asked of the shards for MMR only
            hits = [replace(h, vector=None) for h in hits]
        return replace(result, hits=hits)

    def recommend(
        self, positive: list[Example], negative: list[Example], strategy: Strategy, query: Query
    ) -> SearchResult:
        """Recommend by examples as a single node does (app/search/examples.py), the searches merged over shards."""
        if not positive:
            raise InvalidInput("send at least one positive example")
        pos, neg = self._examples(positive), self._examples(negative)
        exclude = {orjson.dumps(e) for e in [*positive, *negative] if not isinstance(e, np.ndarray)}
        wide = query.k + len(exclude)
        if strategy == "average":
            widened = replace(query, vector=average_target(pos, neg), k=wide, score_threshold=None)
            result = self.search([widened])[0]
            kept = [h for h in result.hits if orjson.dumps(h.id) not in exclude]
            return replace(result, hits=threshold(self.config.metric, kept, query)[: query.k])
        searches = [replace(query, vector=v, k=wide + query.k, score_threshold=None, with_vector=True) for v in pos]
        results = self.search(searches)
        found = {orjson.dumps(h.id): h for r in results for h in r.hits}
        candidates = [h for key, h in sorted(found.items()) if key not in exclude]
        if not candidates:
            return replace(results[0], hits=[])
        vectors = np.stack([h.vector for h in candidates])
        keep, score = best_scores(self.config.metric, vectors, pos, neg, query)
        chosen = [
            replace(candidates[i], score=float(score[i]), vector=candidates[i].vector if query.with_vector else None)
            for i in keep.tolist()
        ]
        return replace(results[0], hits=chosen)

    def _examples(self, examples: list[Example]) -> np.ndarray:
        """Ids as their stored vectors, given vectors checked; in one matrix."""
        ids = [e for e in examples if not isinstance(e, np.ndarray)]
        try:
            stored = [p.vector for p in self.get(ids, with_payload=False, with_vector=True)] if ids else []
        except PointNotFound as err:
            missing = err.details["missing"]
            raise PointNotFound(f"example point(s) not found: {missing[:5]}", missing=missing) from None
        given = [prepare_vectors(self.config, e.reshape(1, -1).astype(np.float32), 1)[0]
                 for e in examples if isinstance(e, np.ndarray)]  # fmt: skip
        rows = [*stored, *given]
        return np.stack(rows) if rows else np.zeros((0, self.config.dim), np.float32)

    def facets(self, key: str, flt: dict[str, Any] | None, limit: int) -> Facets:
        """Every shard's counts added up. Each shard lists up to FACET_DEPTH values, so the counts are exact for a
        field with at most that many distinct values in a shard (a shop's categories, brands, colours)."""
        answers = self._read_all(
            "facets", lambda s: (key, flt, max(limit, FACET_DEPTH)), list(range(self.layout.shards))
        )
        return added_up([answers[s] for s in sorted(answers)], limit)

    def _by_vector(self, q: Query) -> Query:
        """A query as every shard can answer it: "more like this point" as the point's vector, one more asked for
        (the point itself is dropped in the merge)."""
        if q.id is not None:
            (point,) = self.get([q.id], with_payload=False, with_vector=True)
            return replace(q, vector=point.vector, id=None, k=q.k + 1)
        return q

    def try_reading(self) -> Any:
        """No in-process read view here: the search route's quick path steps aside, and the query goes to
        `search` on a worker thread."""
        raise WouldBlock

    def find_part(self, kind: type[T]) -> T | None:
        return self._parts.get(kind)  # type: ignore[return-value]

    def part(self, kind: type[T]) -> T:
        """The part of this kind made for this collection; one sharded collections do not have is a 400."""
        found = self.find_part(kind)
        if found is None:
            raise NotOnShards(
                f"collection '{self.name}' is sharded: {kind.__name__} is not offered on sharded collections yet",
                operation=kind.__name__,
            )
        return found

    # ---- events and logged searches: kept by the router, in its own folder --------------------------
    def stored_events(self) -> Iterator[list[EventRow]]:
        return self._log.events()

    def add_events(self, rows: list[EventRow], queries: list[str | None] | None = None) -> list[bool]:
        """Store events durably on the router's disk (not in the shards: a user's events name items of every
        shard); True for each one that was new."""
        return self._log.add_events(rows, queries)

    def queried_events(self) -> list[QueriedEvent]:
        return self._log.queried_events()

    def log_searches(self, searches: list[tuple[str, list[PointId]]]) -> None:
        self._log.log_searches(searches, time.time())

    def search_log(self) -> list[tuple[float, str, list[PointId]]]:
        return self._log.search_log()

    # ---- a switch of model (fine-tuning's apply and rollback) ------------------------------------------
    def embedder_for(self, spec: dict[str, Any]) -> Embedder:
        if self._models is None:
            raise InvalidInput(f"collection '{self.name}' cannot load another model")
        return self._models(spec)

    def live_ids(self) -> tuple[dict[int, int], list[PointId]]:
        """(each shard's batch number, the id of every stored point as of it)."""
        answers = self._read_all("live_ids", lambda s: (), list(range(self.layout.shards)))
        return {s: seq for s, (seq, _) in answers.items()}, [pid for s in sorted(answers) for pid in answers[s][1]]

    def source_kinds(self, keys: list[str]) -> dict[str, str]:
        return self._by_key_shard("source_kinds", keys)

    def stored_sources(self, keys: list[str]) -> dict[str, Source]:
        return self._by_key_shard("stored_sources", keys)

    def _by_key_shard(self, method: str, keys: list[str]) -> dict[str, Any]:
        by_shard: dict[int, list[str]] = {}
        for key in keys:
            by_shard.setdefault(shard_of(orjson.loads(key), self.layout.shards), []).append(key)
        answers = self._read_all(method, lambda s: (by_shard[s],), list(by_shard))
        return {key: value for answer in answers.values() for key, value in answer.items()}

    def switch_embedder(
        self, spec: dict[str, Any], embedder: Embedder, vectors: dict[PointId, np.ndarray], as_of: dict[int, int]
    ) -> int:
        """As one node switches (Collection.switch_embedder), shard by shard: with every shard's writes waiting,
        the texts written since `as_of` (each shard's batch number when the re-embedding read it) are embedded
        again, each shard takes its new vectors in one batch (numbered as any write, so a copy that misses it
        catches up), then the router embeds with the new model. A search in the moment between the shards'
        batches may meet some shards on the new vectors and others not yet."""
        if embedder.dim != self.config.dim:
            raise InvalidInput(f"the new model makes {embedder.dim}-dimensional vectors, not {self.config.dim}")
        everything = list(range(self.layout.shards))
        with self._locked(everything):
            since = [key for s in everything
                     for key in self._read(self.shards[s], "ids_written_since", as_of[s], in_order=True)]  # fmt: skip
            vectors = brought_up_to_date(vectors, since, self.source_kinds, self.stored_sources, embedder)
            self._write("replace_vectors", {
                s: (held, np.stack([vectors[pid] for pid in held]).astype(np.float32))
                for s, held in self._ids_by_shard(list(vectors)).items()
            })  # fmt: skip
            self.embedder, self.config = embedder, replace(self.config, embedder=spec)
            self._keep(self.config, self.layout)
        return self._batch_number()

    # ---- tune -------------------------------------------------------------------------------------
    def tune(
        self,
        *,
        target_recall: float,
        k: int,
        queries: int,
        seed: int,
        apply: bool,
        source: str = "auto",
        vectors: np.ndarray | None = None,
    ) -> TuneReport:
        """As one node tunes (app/search/tune.py), over the shards: the smallest ef of the ladder at which the
        graphs' merged top k holds `target_recall` of the exact top k, on the vectors sent, the recent searches
        (`auto` once MIN_SEARCHES are kept) or stored points (each leaving itself out). `apply` sets it on every
        copy."""
        with self._recent_lock:
            recent = list(self._recent)
        if source == "searches" and not recent:
            raise InvalidInput(f"collection '{self.name}' has no recent unfiltered graph searches to tune on")
        deadline = time.monotonic() + GRAPH_WAIT_S
        while any(c["index_state"] != "ready" for c in self.copies_state() if c["fresh"]):
            if time.monotonic() > deadline:
                raise NotReady(f"collection '{self.name}': a shard's graph is not ready (see GET /cluster)")
            time.sleep(0.5)
        count = self.count_matching(None)
        if count < k + 1:
            raise InvalidInput(
                f"collection '{self.name}' holds {count} points: tuning recall@{k} needs at least {k + 1}", count=count
            )
        if vectors is not None:
            kind, qs, own = "given", prepare_vectors(self.config, vectors, len(vectors)), None
        elif source == "searches" or (source == "auto" and len(recent) >= MIN_SEARCHES):
            chosen = np.random.default_rng(seed).choice(len(recent), size=min(queries, len(recent)), replace=False)
            kind, qs, own = "searches", np.stack([recent[i] for i in chosen]), None
        else:
            drawn = self._read_all("sample", lambda s: (queries, seed + s), list(range(self.layout.shards)))
            ids = [pid for s in sorted(drawn) for pid in drawn[s][0]]
            pool = np.vstack([drawn[s][1] for s in sorted(drawn)])
            chosen = np.random.default_rng(seed).choice(len(ids), size=min(queries, len(ids)), replace=False)
            kind, qs, own = "points", pool[chosen], [ids[i] for i in chosen]
        want, higher = k + (own is not None), self.config.metric != "l2"
        exact = self.search([Query(vector=q, k=want, exact=True, with_payload=False) for q in qs])
        truth = _top([[h.id for h in r.hits] for r in exact], own, k)
        report = TuneReport(target_recall, k, len(qs), kind, self.config.ef, self.config.ef, False, False)  # type: ignore[arg-type]
        for ef in [e for e in LADDER if want <= e <= self.settings.max_ef]:
            started = time.perf_counter()
            answers = self._read_all("graph_search", lambda s, ef=ef: (qs, want, ef), list(range(self.layout.shards)))
            seconds = time.perf_counter() - started
            found = []
            for i in range(len(qs)):
                hits = [hit for s in sorted(answers) for hit in answers[s][i]]
                hits.sort(key=lambda h: (-h[0] if higher else h[0], orjson.dumps(h[1])))
                found.append([pid for _, pid in hits[:want]])
            if record_trial(report, ef, _top(found, own, k), truth, seconds):
                break
        if apply:
            for shard in self.shards:  # every copy that answers; one that is away keeps its ef until set again
                for copy, handle in enumerate(shard.copies):
                    try:
                        self._get(self._call(handle, "set_default_ef", report.chosen_ef))
                    except self._unreachable:
                        self._lost(shard, copy)
            self.config = replace(self.config, ef=report.chosen_ef)
            self._keep(self.config, self.layout)
            report.applied = True
        return report

    # ---- snapshots --------------------------------------------------------------------------------
    def backup(self, dest: Path) -> tuple[int, int, CollectionConfig]:
        """Every shard's points, and the events and logged searches, in one single-node database at `dest` (so a
        snapshot of a sharded collection is one file, and restores into a single node too); returns (the sum of
        the shards' batch numbers, count, config). Writes wait meanwhile: with every shard's lock held, each copy
        reads after the batches already sent."""
        everything = list(range(self.layout.shards))
        with self._locked(everything):
            parts = {}
            for s in everything:
                parts[s] = self._read(self.shards[s], "changes_since", 0, in_order=True)[1]
            seq = self._batch_number()
        store = PointStore(dest, durable=False)
        try:
            store.set_meta("config", self.config.to_json())
            slot = 0
            for points in parts.values():
                for start in range(0, len(points), 5_000):
                    chunk = points[start : start + 5_000]
                    keys = [orjson.dumps(p.id).decode() for p in chunk]
                    rows = [
                        (key, slot + i, np.asarray(p.vector, np.float32).tobytes(),
                         None if p.payload_json is None else p.payload_json.decode())
                        for i, (key, p) in enumerate(zip(keys, chunk, strict=True))
                    ]  # fmt: skip
                    sources = [
                        None if p.source is None else (key, *p.source) for key, p in zip(keys, chunk, strict=True)
                    ]
                    store.write_batch(rows, [], sources if self.config.store_source else None)
                    slot += len(chunk)
            store.take_log(self._log.path)
        finally:
            store.close()
        single_file(dest)
        return seq, slot, self.config

    def restore(self, db: Path) -> ShardedCollection:
        """Replace every point and event with those of a snapshot's database (of a sharded or a single-node
        collection of the same dimension and metric), the points spread over the shards again. Not atomic: a
        restore cut short leaves some of the points; restoring again finishes it."""
        store = PointStore(db, durable=False)
        try:
            stored = CollectionConfig.from_json(store.get_meta("config"))
            if (stored.dim, stored.metric) != (self.config.dim, self.config.metric):
                raise InvalidInput(
                    f"the snapshot holds {stored.dim}-dimensional {stored.metric} vectors; '{self.name}' holds "
                    f"{self.config.dim}-dimensional {self.config.metric} ones"
                )
            self._write("delete_by_filter", {s: ({},) for s in range(self.layout.shards)})  # every point
            for rows in store.points(chunk=2_000):
                keys = [row.id_json for row in rows]
                sources = store.sources(keys) if self.config.store_source else {}
                self.upsert(
                    [orjson.loads(key) for key in keys],
                    np.frombuffer(b"".join(row.vector for row in rows), np.float32).reshape(len(rows), -1),
                    [None if row.payload is None else orjson.loads(row.payload) for row in rows],
                    [sources.get(key) for key in keys] if self.config.store_source else None,
                )
        finally:
            store.close()
        self._log.take_log(db, replace=True)
        self._attach_parts()  # profiles and ranker made again from the snapshot's events
        return self

    # ---- state ------------------------------------------------------------------------------------
    def copies_state(self) -> list[dict[str, Any]]:
        """Each copy: where it is, whether it holds every batch, its last batch and count (None: no answer)."""
        out = []
        for shard in self.shards:
            refs = [self._call(h, "state", read=True) for h in shard.copies]
            for copy, ref in enumerate(refs):
                try:
                    state = self._get(ref)
                except self._unreachable:
                    self._lost(shard, copy)
                    state = {}
                out.append({
                    "shard": shard.index,
                    "copy": copy,
                    "node": self.layout.nodes[shard.index][copy],
                    "fresh": shard.fresh[copy],
                    "alive": bool(state),
                    "seq": state.get("seq"),
                    "count": state.get("count"),
                    "index_state": state.get("index_state"),
                    "lexical_state": state.get("lexical_state"),
                    "lexical_progress": state.get("lexical_progress"),
                    "payload_indexes": state.get("payload_indexes"),
                    "payload_index_builds": state.get("payload_index_builds"),
                    "lexical": state.get("lexical"),
                    "failures": state.get("failures") or {},
                    "node_id": state.get("node_id"),
                    "pid": state.get("pid"),
                })  # fmt: skip
        return out

    @property
    def failures(self) -> dict[str, int]:
        """Failures of the copies' background work (graph build, checkpoint), added up (for /metrics)."""
        out: Counter[str] = Counter({"build": 0, "checkpoint": 0})
        for copy in self.copies_state():
            out.update(copy["failures"])
        return dict(out)

    def info(self) -> dict[str, Any]:
        copies = self.copies_state()
        first = {c["shard"]: c for c in copies if c["fresh"] and c["alive"]}
        count = sum(c["count"] for c in first.values())
        states = {c["index_state"] for c in first.values()}
        return {
            **self.config.to_json(),
            "count": count,
            "indexed_count": count if states == {"ready"} else 0,
            "index_state": "ready" if states == {"ready"} and len(first) == self.layout.shards else "building",
            "memory_bytes": 0,  # the copies' memory is on their nodes: GET /cluster has it per copy
            "seq": self._batch_number(),
            "lexical_state": _slowest(c["lexical_state"] for c in first.values()) if self.config.lexical else "off",
            "lexical_progress": min((c["lexical_progress"] for c in first.values()), default=1.0),
            "payload_index_builds": {
                key: min(c["payload_index_builds"].get(key, 1.0) for c in first.values())
                for key in {key for c in first.values() for key in c["payload_index_builds"]}
            },
            "shards": self.layout.shards,
            "replicas": self.layout.replicas,
            "write_quorum": self.layout.write_quorum,
        }

    # ---- changes of payload indexes and keyword fields ---------------------------------------------
    def index_field(self, key: str, kind: FieldType) -> None:
        """Index a payload field on every copy (each builds it from its points in the background)."""
        if self.config.payload_indexes.get(key) == kind:
            return
        self._reconfigure(self.config.with_index(key, kind))

    def drop_field_index(self, key: str) -> None:
        self._reconfigure(self.config.without_index(key))

    def set_lexical(self, lexical: dict[str, Any] | None) -> None:
        """Keep a keyword index on these fields in every copy (None: none); each rewrites its points' words."""
        self._reconfigure(replace(self.config, lexical=lexical))

    def _reconfigure(self, config: CollectionConfig) -> None:
        """Send a changed config to every copy that holds every batch, in the write order (writes wait), then keep
        it; a copy that does not take it is behind, and gets it when it catches up (`_configure`)."""
        with self._locked(list(range(self.layout.shards))):
            self._configure_fresh(config)
            self.config, self._checks = config, PayloadIndex(config.payload_indexes)
            self._keep(config, self.layout)

    def _configure_fresh(self, config: CollectionConfig) -> None:
        """The config's fields on every fresh copy, all asked at once; one that does not answer falls behind."""
        sent = [(shard, c, self._configure(shard.copies[c], config)) for shard in self.shards
                for c in range(len(shard.copies)) if shard.fresh[c]]  # fmt: skip
        for shard, c, ref in sent:
            try:
                self._get(ref)
            except self._unreachable:
                self._lost(shard, c)

    def _configure(self, handle: Any, config: CollectionConfig) -> Any:
        return self._call(handle, "configure", config.payload_indexes, config.lexical)

    def repair(self) -> None:
        """Catch up every copy that missed batches and answers again, from a fresh copy of its shard: the points
        written after its last batch and the ids the fresh copy holds (not every vector). Writes to that shard
        wait meanwhile; the calls go in order with the writes already sent."""
        for shard in self.shards:
            if not any(shard.fresh):  # every copy fell behind or away: start over from those that answer
                with shard.lock:
                    self._learn(shard)
                continue
            for copy in [c for c, fresh in enumerate(shard.fresh) if not fresh]:
                try:  # asked outside the lock: a copy that is still away must not hold the shard's writes
                    self._get(self._call(shard.copies[copy], "state", read=True))
                except self._unreachable:
                    continue
                with shard.lock:
                    self._catch_up(shard, copy)

    def re_place(self, shard_index: int, copy: int, handle: Any, label: str) -> Any:
        """Put a new, empty copy on node `label` in place of one whose node is gone for good, fill it from a fresh
        copy (every point: it starts from batch 0; the repair loop finishes it if that does not complete now) and
        keep the new layout; returns the old copy's handle, for the caller to end."""
        shard = self.shards[shard_index]
        with shard.lock:
            old, shard.copies[copy], shard.fresh[copy] = shard.copies[copy], handle, False
            self.layout = self.layout.moved(shard_index, copy, label)
            self._keep(self.config, self.layout)
            self._catch_up(shard, copy)
        log.info("copy %d of shard %d of %s made again on %s (fresh: %s)",
                 copy, shard_index, self.name, label, shard.fresh[copy])  # fmt: skip
        return old

    def _catch_up(self, shard: Shard, copy: int) -> None:
        source = next((c for c, ok in enumerate(shard.fresh) if ok), None)
        if source is None:
            return
        try:  # in the write order of both copies: after every batch already sent to them
            behind = self._get(self._call(shard.copies[copy], "state"))["seq"]
            if behind < shard.seq:  # type: ignore[operator]
                seq, points, ids = self._get(self._call(shard.copies[source], "changes_since", behind))
                self._get(self._call(shard.copies[copy], "catch_up", seq, points, ids))
                log.info("copy %d of shard %d of %s caught up from batch %d to %d (%d points)",
                         copy, shard.index, self.name, behind, seq, len(points))  # fmt: skip
            self._get(self._configure(shard.copies[copy], self.config))  # a change of fields it missed
            shard.fresh[copy] = True
        except self._unreachable:
            pass  # still away: the next repair tries again

    def close(self) -> None:
        self.closed = True
        for part in self._parts.values():
            part.close()
        self._log.close()


def _candidates_for_groups(a: Query) -> Query:
    """A grouped query whose candidates are re-ranked here (fused or MMR) asks the shards for plain candidate lists
    as wide as a node first reads for its groups, with the payloads the groups are made from."""
    assert a.group_by is not None
    g = a.group_by
    return replace(a, group_by=None, with_payload=True, k=max(a.k, 4 * (g.offset + g.groups) * g.size))


def _regroup(result: SearchResult, q: Query) -> SearchResult:
    """The page of groups of re-ranked candidates (app/search/groups.group, as one node groups them)."""
    assert q.group_by is not None
    groups, more = group(result.hits, [h.payload_json for h in result.hits], q.group_by)
    hits = [h if q.with_payload else replace(h, payload_json=None) for _, members in groups for h in members]
    page = [Group(value, [h.id for h in members]) for value, members in groups]
    wanted = q.group_by.offset + q.group_by.groups
    return replace(result, hits=hits, groups=page, next_group_offset=wanted if more else None)


def _slowest(states: Any) -> str:
    """The keyword index is ready when every shard's is."""
    return "building" if "building" in set(states) else "ready"


def _top(rows: list[list[PointId]], own: list[PointId] | None, k: int) -> list[list[PointId]]:
    """Each query's first k ids, other than its own when the queries are stored points."""
    owners: list[Any] = [None] * len(rows) if own is None else own  # ids are ints or strings: 5 != "5" here too
    return [[pid for pid in row if own is None or pid != o][:k] for row, o in zip(rows, owners, strict=True)]


def _halves(q: Query) -> list[Query]:
    """A hybrid query's two halves for the shards: its best dense candidates, and its keyword list read deep (with
    vectors, for the dense score of a candidate only the words found)."""
    wanted = max(q.k, q.fusion.candidates)
    return [
        replace(q, mode="dense", k=wanted, score_threshold=None),
        replace(q, mode="lexical", k=LEXICAL_DEPTH * wanted, score_threshold=None, with_vector=True),
    ]


def single_file(db: Path) -> None:
    """Fold SQLite's write-ahead log into the database file, so that the database is that one file."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()


def merge(answers: list[SearchResult], k: int, higher: bool, example: PointId | None = None) -> SearchResult:
    """The k best hits of the shards' answers, best first; equal scores ordered by id, so the answer does not
    depend on which shard a point is on; never the `example` point ("more like this"). The plan is the one most
    shards chose; candidates add up. Keyword and hybrid scores come from each shard's own statistics (BM25's
    document frequencies, the fusion's normalisation over its own candidates), as in Elasticsearch's default
    search: close to one node's ranking, not equal to it."""
    left_out = None if example is None else orjson.dumps(example)
    higher = higher or any(answer.mode != "dense" for answer in answers)  # BM25 and fused scores: higher is better
    hits: list[Hit] = [h for answer in answers for h in answer.hits if orjson.dumps(h.id) != left_out]
    hits.sort(key=lambda h: (-h.score if higher else h.score, orjson.dumps(h.id)))
    plans = Counter(answer.plan for answer in answers)
    return SearchResult(
        hits[:k],
        plans.most_common(1)[0][0],
        sum(answer.candidates for answer in answers),
        answers[0].mode if answers else "dense",
    )
