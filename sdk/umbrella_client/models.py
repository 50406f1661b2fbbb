"""What the client sends and gets back, as dataclasses; parsing ignores fields a newer server adds."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from umbrella_client.vectors import Vector, decode_vector

PointId = int | str
"""An unsigned integer or a string; it comes back exactly as given."""

Filter = Mapping[str, Any]
"""{"must": [...], "should": [...], "must_not": [...]} of {"key", "match" | "any" | "range"} conditions."""

T = TypeVar("T")


def _known(cls: type[T], data: Mapping[str, Any], **parsed: Any) -> T:
    """cls from the fields it declares (already parsed ones win); unknown fields are left out on purpose."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names}, **parsed)


# ---- collections -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class HnswParams:
    m: int = 16
    ef_construction: int = 200
    ef: int = 64


@dataclasses.dataclass(frozen=True)
class CollectionInfo:
    name: str
    dim: int
    metric: str
    hnsw: HnswParams
    payload_indexes: dict[str, str]
    count: int
    indexed_count: int
    index_state: str
    memory_bytes: int
    seq: int
    embedder: dict[str, Any] | None = None
    store_source: bool = False
    strict: bool = False  # filters on fields without a payload index are refused rather than scanned
    recommendation: dict[str, Any] = dataclasses.field(default_factory=dict)
    recall_estimate: float | None = None  # live recall@k of graph searches, from a sample re-run exactly
    recall_samples: int = 0
    lexical: dict[str, Any] | None = None  # the keyword index's fields ({"fields": [...], "source": bool})
    lexical_state: str = "off"  # off | building | ready | failed
    lexical_progress: float = 1.0
    payload_index_builds: dict[str, float] = dataclasses.field(default_factory=dict)  # field → share built
    shards: int | None = None  # sharded collections (on a Ray cluster): shards, copies of each, copies a write needs
    replicas: int | None = None
    write_quorum: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CollectionInfo:
        return _known(cls, {k: v for k, v in data.items() if k != "hnsw"}, hnsw=_known(HnswParams, data["hnsw"]))


def collection_list(data: Mapping[str, Any]) -> list[CollectionInfo]:
    return [CollectionInfo.from_json(c) for c in data["collections"]]


@dataclasses.dataclass(frozen=True)
class TuneTrial:
    ef: int
    recall: float  # mean recall@k of the graph against exact search
    ms_per_query: float


@dataclasses.dataclass(frozen=True)
class TuneReport:
    """What `tune` tried: recall@k per ef on the collection's own points, and the ef it chose."""

    target_recall: float
    k: int
    queries: int
    query_source: str  # "given", "searches" (recent unfiltered searches) or "points" (stored points)
    previous_ef: int
    chosen_ef: int
    reached: bool
    applied: bool
    trials: list[TuneTrial]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TuneReport:
        trials = [_known(TuneTrial, t) for t in data["trials"]]
        return _known(cls, {k: v for k, v in data.items() if k != "trials"}, trials=trials)


# ---- points ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class WriteResult:
    """An acknowledged write: it is on disk; `seq` is its batch's sequence number."""

    count: int
    seq: int
    status: str = "ok"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WriteResult:
        return _known(cls, data)


@dataclasses.dataclass(frozen=True)
class Point:
    id: PointId
    payload: dict[str, Any] | None = None
    vector: Any = None  # numpy float32 array (or a list without numpy), with with_vector=True
    source: dict[str, str] | None = None  # {"text": …}, {"sequence": …} or {"image": base64}, with with_source

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Point:
        return _known(cls, {k: v for k, v in data.items() if k != "vector"}, vector=decode_vector(data.get("vector")))


def point_list(data: Mapping[str, Any]) -> list[Point]:
    return [Point.from_json(p) for p in data["points"]]


@dataclasses.dataclass(frozen=True)
class ScrollPage:
    points: list[Point]
    next_offset: int | None  # pass as `offset` for the next page; None at the end

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScrollPage:
        return cls(points=point_list(data), next_offset=data.get("next_offset"))


def count_of(data: Mapping[str, Any]) -> int:
    return int(data["count"])


# ---- search ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ScoredPoint:
    id: PointId
    score: float  # dense: similarity (l2: distance, lower is better); lexical: BM25; hybrid: the fused score
    payload: dict[str, Any] | None = None
    vector: Any = None
    dense: dict[str, float] | None = None  # lexical and hybrid searches: {"rank": …, "score": …} in each list
    lexical: dict[str, float] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScoredPoint:
        return _known(cls, {k: v for k, v in data.items() if k != "vector"}, vector=decode_vector(data.get("vector")))


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """Hits best first; iterate it, or read `results`."""

    results: list[ScoredPoint]
    plan: str  # "hnsw" or "exact": which search ran ("lexical" in a keyword-only search)
    candidates: int  # points that passed the filter
    mode: str = "dense"  # dense | lexical | hybrid
    groups: list[dict[str, Any]] | None = None  # with group_by: [{"value": …, "ids": [...]}], best first
    next_group_offset: int | None = None
    partial: bool = False  # a sharded collection answered without some shard (the query allowed it)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchResult:
        hits = [ScoredPoint.from_json(h) for h in data["results"]]
        return _known(cls, {k: v for k, v in data.items() if k != "results"}, results=hits)

    @property
    def ids(self) -> list[PointId]:
        return [h.id for h in self.results]

    def __iter__(self) -> Iterator[ScoredPoint]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)


def search_results(data: Mapping[str, Any]) -> list[SearchResult]:
    return [SearchResult.from_json(r) for r in data["results"]]


@dataclasses.dataclass(frozen=True)
class Facets:
    """How many of the points that passed the filter hold each value of a field, most frequent first."""

    key: str
    counts: dict[Any, int]  # value → count, in order
    candidates: int  # points that passed the filter

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Facets:
        counts = {v["value"]: int(v["count"]) for v in data["values"]}
        return cls(key=str(data["key"]), counts=counts, candidates=int(data["candidates"]))


@dataclasses.dataclass(frozen=True)
class SearchQuery:
    """One query of a batch search: exactly one of vector, id, text, sequence, image (bytes, file or path)."""

    vector: Vector | None = None
    id: PointId | None = None
    text: str | None = None
    sequence: str | None = None
    image: Any = None
    k: int = 10
    ef: int | None = None
    exact: bool = False
    filter: Filter | None = None
    score_threshold: float | None = None
    with_payload: bool = True
    with_vector: bool = False
    mode: str | None = None  # dense | lexical | hybrid; default: hybrid when the collection keeps keywords
    keywords: str | None = None  # words for the keyword index beside a vector, id, sequence or image
    fusion: Mapping[str, Any] | None = None  # {"method": "weighted" | "rrf", "k": 60, "alpha": 0.3}
    mmr: Mapping[str, Any] | None = None  # {"lambda": 0.5, "candidates": 100}: fewer near-copies in the top k
    group_by: str | None = None  # a payload field: the best hits per distinct value
    group_size: int | None = None
    groups: int | None = None
    group_offset: int | None = None
    log: bool = False  # keep the words and the ids shown, joined later with clicks that name the same query
    partial: bool = False  # a sharded collection: answer without a shard that has no copy up (not a 503)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A snapshot file on the server: the collection's database as of write batch `seq`."""

    name: str  # <collection>-<UTC yyyymmddThhmmssZ>-<seq>.snapshot
    size: int  # bytes
    created_at: str  # ISO 8601, UTC
    count: int | None  # points it holds; None when the server cannot read its manifest
    seq: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        return _known(cls, data)


def snapshot_list(data: Mapping[str, Any]) -> list[Snapshot]:
    return [Snapshot.from_json(s) for s in data["snapshots"]]


# ---- recommendation --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Event:
    """An interaction; `time` is a datetime, ISO 8601 text or epoch seconds (now when None)."""

    user: str | int
    item: PointId
    type: str  # view, click, cart, purchase, rating
    value: float | None = None  # the rating (1–5) for type rating
    time: datetime | float | str | None = None
    query: str | None = None  # the search words that led to it (a click on a result): fine-tuning's pairs

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"user": self.user, "item": self.item, "type": self.type}
        if self.value is not None:
            out["value"] = self.value
        if self.time is not None:
            out["time"] = self.time.isoformat() if isinstance(self.time, datetime) else self.time
        if self.query is not None:
            out["query"] = self.query
        return out


@dataclasses.dataclass(frozen=True)
class EventsReport:
    received: int
    accepted: int  # new events stored (on disk)
    duplicates: int
    rejected: int
    reasons: dict[str, int]
    samples: list[dict[str, Any]]  # up to 10 rejected events: index, reason, message

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventsReport:
        return _known(cls, data)


@dataclasses.dataclass(frozen=True)
class UserProfile:
    user: str
    events: int
    counts: dict[str, int]
    first_activity: str | None
    last_activity: str | None
    items: int
    has_taste: bool
    top_categories: list[dict[str, Any]]
    taste: Any = None  # the taste vector, with with_vector=True

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UserProfile:
        return _known(cls, {k: v for k, v in data.items() if k != "taste"}, taste=decode_vector(data.get("taste")))


@dataclasses.dataclass(frozen=True)
class UserRecommendations:
    user: str
    path: str  # "ranker", "similarity" or "popular": how the list was made
    results: list[ScoredPoint]
    candidates: int
    excluded: int  # items the user already interacted with, left out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UserRecommendations:
        hits = [ScoredPoint.from_json(h) for h in data["results"]]
        return _known(cls, {k: v for k, v in data.items() if k != "results"}, results=hits)

    def __iter__(self) -> Iterator[ScoredPoint]:
        return iter(self.results)


@dataclasses.dataclass(frozen=True)
class FinetuneStatus:
    """A fine-tuning run of the collection's text model: while it runs (phase, progress, ETA, losses so far) and
    after (state done, cancelled or failed; base and tuned recall@10 and MRR on the newest pairs; the version)."""

    state: str  # running | done | cancelled | failed
    phase: str | None
    started_at: str
    finished_at: str | None
    seconds: float
    progress: float  # share of the planned training steps done
    eta_seconds: float | None
    model: dict[str, Any]  # {"base": the embedder it started from, "version": the tuned model's, once done}
    pairs: dict[str, Any]  # train, validation, test, with_negatives, source (feedback | given)
    grid: dict[str, Any]
    trials: list[dict[str, Any]]  # per grid point: learning_rate, warmup, epochs [{epoch, train_loss, val_loss}]
    chosen: int | None
    metrics: dict[str, Any] | None  # {"base": {"recall_at_10", "mrr"}, "tuned": {...}}
    error: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FinetuneStatus:
        return _known(cls, data)


@dataclasses.dataclass(frozen=True)
class EmbedderStatus:
    """The collection's model (a tuned one names its version), the tuned versions kept, and the last switch."""

    embedder: dict[str, Any] | None
    versions: list[str]
    switch: dict[str, Any] | None  # state (running, done, cancelled, failed, interrupted), target, progress, ...

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EmbedderStatus:
        return _known(cls, data)


@dataclasses.dataclass(frozen=True)
class RankerReport:
    """The trained ranker: events used, time split, chosen hyper-parameters, per-epoch losses, metrics."""

    trained_at: str
    seconds: float
    events: dict[str, Any]
    split: dict[str, Any]
    features: list[str]
    chosen: dict[str, Any]
    metrics: dict[str, dict[str, float | None]]
    evaluation: dict[str, int]
    training: dict[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RankerReport:
        return _known(cls, data)


# ---- health ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Readiness:
    ready: bool
    status: str  # "ready" or "not_ready"
    collections: dict[str, str]  # each collection's index state

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Readiness:
        return cls(ready=data.get("status") == "ready", status=data["status"], collections=data.get("collections", {}))


def status_of(data: Mapping[str, Any]) -> str:
    return str(data["status"])
