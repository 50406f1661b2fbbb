"""Search requests and responses."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from app.schemas.common import Filter, ImageIn, PointId, SequenceIn, Strict, TextIn, VectorIn, exactly_one_of
from app.search.models import Fusion

_FUSION = Fusion()  # the defaults, kept once in app/search/models.py


class FusionSpec(Strict):
    method: Literal["rrf", "weighted"] = Field(
        _FUSION.method,
        description="rrf: sum of 1/(k + rank) over both lists; weighted: alpha × dense + (1 − alpha) × BM25, "
        "each min-max normalised within its list.",
    )
    k: int = Field(_FUSION.k, ge=1, le=10_000, description="RRF's rank constant: larger flattens the top of each list.")
    alpha: float = Field(
        _FUSION.alpha, ge=0, le=1, description="Weight of the dense score in weighted fusion (1: dense only)."
    )
    candidates: int = Field(
        _FUSION.candidates,
        ge=1,
        le=1000,
        description="How many hits each list contributes before fusion (at least k of the search).",
    )


class MmrSpec(Strict):
    lambda_: float = Field(
        0.5, alias="lambda", ge=0, le=1, description="Weight of relevance against novelty: 1 is the plain ranking."
    )
    candidates: int = Field(100, ge=1, le=1000, description="How many of the best hits MMR picks the k from.")


class SearchRequest(Strict):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra=exactly_one_of("vector", "id", "text", "sequence", "image")
    )

    vector: VectorIn | None = Field(None, description="Query vector: numbers, or base64 float32.")
    id: PointId | None = Field(None, description="Search with a stored point's vector; the point itself is left out.")
    text: TextIn | None = Field(None, description="Query words, for a text or CLIP collection.")
    sequence: SequenceIn | None = Field(None, description="Query sequence, for a kmer collection.")
    image: ImageIn | None = Field(None, description="Query photo as base64 JPEG/PNG/WebP, for an image collection.")
    k: int = Field(10, ge=1, le=1000, description="Results to return.")
    ef: int | None = Field(
        None, ge=1, le=10_000, description="HNSW beam width for this query (default: the collection's)."
    )
    exact: bool = Field(False, description="Scan every candidate instead of walking the graph.")
    filter: Filter | None = Field(None, description="Only points whose payload matches.")
    score_threshold: float | None = Field(
        None, description="Drop results scoring worse: below it for cosine/ip, above it for l2 distance."
    )
    with_payload: bool = Field(True, description="Return payloads.")
    with_vector: bool = Field(False, description="Return vectors.")
    mode: Literal["dense", "lexical", "hybrid"] | None = Field(
        None,
        description="dense: vectors only; lexical: BM25 over the keyword index only; hybrid: both, fused. "
        "Default: hybrid when the collection keeps a keyword index and the query has words, else dense.",
    )
    keywords: TextIn | None = Field(
        None,
        description="Words for the keyword index beside a vector, id, sequence or image query "
        "(a text query's own words are used when this is absent).",
    )
    mmr: MmrSpec | None = Field(
        None, description="Re-rank by maximal marginal relevance: fewer near-copies in the top k."
    )
    group_by: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="A payload field (dotted: nested): return the best hits per distinct value, groups best first "
        "(one result per product when a product has several points). k is then ignored.",
    )
    group_size: int = Field(1, ge=1, le=100, description="With group_by: hits per group.")
    groups: int = Field(10, ge=1, le=1000, description="With group_by: groups per page.")
    group_offset: int = Field(0, ge=0, le=100_000, description="With group_by: groups to skip (paging).")
    fusion: FusionSpec | None = Field(
        None, description="How hybrid merges its two lists (default: weighted, alpha 0.3, candidates 50)."
    )
    log: bool = Field(
        False,
        description="Keep the query's words and the ids shown: clicks that later name the same words (events' "
        "query) teach fine-tuning which shown items were passed over. Needs text or keywords.",
    )
    partial: bool = Field(
        False,
        description="A sharded collection: when a shard has no copy that answers, answer from the others "
        "(the response says partial) instead of 503 shard_unavailable.",
    )

    @model_validator(mode="after")
    def _one_query(self) -> SearchRequest:
        if sum(x is not None for x in (self.vector, self.id, self.text, self.sequence, self.image)) != 1:
            raise ValueError(
                "send exactly one of vector, id, text, sequence, image (a keyword-only search: text with mode lexical;"
                " keywords go beside one of them)"
            )
        if self.log and self.words is None:
            raise ValueError("log keeps the query's words: send text or keywords with it")
        return self

    @property
    def words(self) -> str | None:
        """The words a shopper typed: the text, or the keywords beside another query."""
        return self.text if self.text is not None else self.keywords


class BatchSearchRequest(Strict):
    searches: list[SearchRequest] = Field(min_length=1, description="Queries answered in one call, in order.")


class RankScore(Strict):
    rank: int = Field(description="Place in this retriever's list, from 1.")
    score: float = Field(description="This retriever's score: similarity (l2: distance), or BM25 (higher is better).")


class ScoredPoint(Strict):
    id: PointId
    score: float = Field(
        description="dense: cosine similarity, dot product, or Euclidean distance (l2: lower is better); "
        "lexical: BM25; hybrid: the fused score (higher is better)."
    )
    payload: dict[str, Any] | None = None
    vector: list[float] | None = None
    dense: RankScore | None = Field(None, description="lexical and hybrid modes: the hit's dense rank and score.")
    lexical: RankScore | None = Field(None, description="lexical and hybrid modes: the hit's keyword rank and score.")


class GroupOut(Strict):
    value: str | int | float | bool = Field(description="The payload value the group's hits share.")
    ids: list[PointId] = Field(description="The group's hits, best first; they are in results in this order.")


class SearchResponse(Strict):
    results: list[ScoredPoint]
    plan: Literal["hnsw", "exact", "lexical", "hnsw+scan", "exact+scan", "lexical+scan"] = Field(
        description="Which search ran: the dense one (hnsw or exact), or lexical in a keyword-only search; "
        "+scan when the filter read payloads (a field without an index, is_null, text)."
    )
    mode: Literal["dense", "lexical", "hybrid"] = Field(description="The mode the search ran in.")
    candidates: int = Field(description="Points that passed the filter (all points when there is none).")
    groups: list[GroupOut] | None = Field(None, description="With group_by: the page of groups, best first.")
    next_group_offset: int | None = Field(
        None, description="With group_by: the group_offset of the next page; null when there is none."
    )
    partial: bool = Field(
        False, description="A sharded collection answered without some shard (the request allowed it)."
    )


class BatchSearchResponse(Strict):
    results: list[SearchResponse]


class FacetRequest(Strict):
    key: str = Field(
        min_length=1, max_length=200, description="An indexed payload field (keyword, integer, bool, float)."
    )
    filter: Filter | None = Field(None, description="Count only among the points that match.")
    limit: int = Field(20, ge=1, le=1000, description="Most values to return, most frequent first.")


class FacetValue(Strict):
    value: str | int | float | bool
    count: int = Field(description="Points (among those that passed the filter) holding this value.")


class FacetResponse(Strict):
    key: str
    values: list[FacetValue] = Field(description="Most frequent first; ties by value.")
    candidates: int = Field(description="Points that passed the filter (all points when there is none).")
