"""Plain data of a search: what to search by and how, and what comes back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np

from app.collections.models import PointId

Mode = Literal["dense", "lexical", "hybrid"]


@dataclass(frozen=True)
class Fusion:
    """How a hybrid search merges its two ranked lists (app/search/fusion.py): weighted scores or reciprocal
    ranks. Each list contributes its best `candidates` (at least the query's k).

    The defaults were chosen on the generated catalogue (benchmarks/RESULTS.md, "Keyword and hybrid search"):
    weighted beats rrf on the mix of query kinds on every seed, most on product codes, where rrf cannot see
    that an exact match stands far above the rest of the keyword list. Alphas 0.3 to 0.5 tie on the mix;
    0.3 keeps brand + model queries as good as keywords alone with a margin on every seed, 0.4 and 0.5 sat at
    the edge there.
    """

    method: Literal["rrf", "weighted"] = "weighted"
    k: int = 60
    alpha: float = 0.3
    candidates: int = 50


@dataclass(frozen=True)
class Mmr:
    """Maximal marginal relevance: pick each next hit by lambda × its relevance − (1 − lambda) × its greatest
    similarity to a hit already picked, among the best `candidates`; lambda 1 is the plain ranking."""

    lambda_: float = 0.5
    candidates: int = 100


@dataclass(frozen=True)
class Grouping:
    """Best hits per distinct value of a payload field: `groups` groups of up to `size` hits, after `offset`."""

    key: str
    size: int = 1
    groups: int = 10
    offset: int = 0


@dataclass(frozen=True)
class Query:
    """Search by exactly one of vector, text, sequence, image (bytes) or id; the rest says how.

    `mode` None means hybrid when the collection keeps a keyword index and the query has words (`text`,
    or `keywords` beside a vector, id, sequence or image), else dense. Embedding fills `vector` and keeps
    `text` for the keyword half.
    """

    vector: np.ndarray | None = None
    text: str | None = None
    sequence: str | None = None
    image: bytes | None = None
    id: PointId | None = None
    k: int = 10
    ef: int | None = None
    exact: bool = False
    filter: dict[str, Any] | None = None
    score_threshold: float | None = None
    with_payload: bool = True
    with_vector: bool = False
    mode: Mode | None = None
    keywords: str | None = None
    fusion: Fusion = Fusion()
    mmr: Mmr | None = None
    group_by: Grouping | None = None
    partial: bool = False  # a sharded collection may answer without a shard that has no copy up

    @property
    def words(self) -> str | None:
        """What the keyword index is searched with."""
        return self.keywords if self.keywords is not None else self.text

    @property
    def plain(self) -> bool:
        """No re-ranking after the search (MMR, groups): the k best are the answer."""
        return self.mmr is None and self.group_by is None

    @property
    def needs_embedding(self) -> bool:
        return self.vector is None and self.id is None and self.mode != "lexical"


@dataclass(frozen=True)
class Rank:
    rank: int  # 1-based place in one retriever's list
    score: float  # that retriever's score: similarity (or l2 distance), or BM25


@dataclass(frozen=True)
class Hit:
    id: PointId
    score: float
    payload_json: bytes | None = None
    vector: np.ndarray | None = None
    dense: Rank | None = None  # set in lexical and hybrid searches: where each retriever placed this hit
    lexical: Rank | None = None


class Hits(Sequence[Hit]):
    """A search's hits kept as columns, as the search found them: the answer is written out from the columns
    (app/api/codec.py), and a `Hit` is made only when one is read. A batch of 100 searches with k 10 otherwise
    made 1,000 objects (~0.7 µs each) only to turn them into JSON."""

    __slots__ = ("ids", "payloads", "scores", "vectors")

    def __init__(
        self,
        ids: list[PointId],
        scores: list[float],
        payloads: list[bytes | None] | None = None,
        vectors: np.ndarray | None = None,
    ) -> None:
        """`payloads` and `vectors` are None when not asked for; otherwise one per hit."""
        self.ids, self.scores, self.payloads, self.vectors = ids, scores, payloads, vectors

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, at: int) -> Hit: ...
    @overload
    def __getitem__(self, at: slice) -> list[Hit]: ...
    def __getitem__(self, at: int | slice) -> Hit | list[Hit]:
        if isinstance(at, slice):
            return [self[i] for i in range(*at.indices(len(self)))]
        payload = None if self.payloads is None else self.payloads[at]
        return Hit(self.ids[at], self.scores[at], payload, None if self.vectors is None else self.vectors[at])

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable columns, like a list

    def __repr__(self) -> str:
        return f"Hits({list(self)!r})"


@dataclass(frozen=True)
class Group:
    value: Any  # the payload value the group's hits share
    ids: list[PointId]  # its hits, best first (they are in the result's hits, in this order)


@dataclass(frozen=True)
class SearchResult:
    hits: Sequence[Hit]  # Hits from a search; a list where hits were merged or re-ranked afterwards
    plan: str
    candidates: int
    mode: Mode = "dense"
    groups: list[Group] | None = None  # with group_by: the groups, best first; hits holds theirs in this order
    next_group_offset: int | None = None  # with group_by: where the next page of groups starts (None: no more)
    partial: bool = False  # a sharded collection answered without some shard
