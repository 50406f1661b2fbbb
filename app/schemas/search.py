"""Search requests and responses."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from app.schemas.common import Filter, ImageIn, PointId, SequenceIn, Strict, TextIn, VectorIn, exactly_one_of


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

    @model_validator(mode="after")
    def _one_query(self) -> SearchRequest:
        if sum(x is not None for x in (self.vector, self.id, self.text, self.sequence, self.image)) != 1:
            raise ValueError("send exactly one of vector, id, text, sequence, image")
        return self


class BatchSearchRequest(Strict):
    searches: list[SearchRequest] = Field(min_length=1, description="Queries answered in one call, in order.")


class ScoredPoint(Strict):
    id: PointId
    score: float = Field(description="Cosine similarity, dot product, or Euclidean distance (l2: lower is better).")
    payload: dict[str, Any] | None = None
    vector: list[float] | None = None


class SearchResponse(Strict):
    results: list[ScoredPoint]
    plan: Literal["hnsw", "exact"] = Field(description="Which search ran.")
    candidates: int = Field(description="Points that passed the filter (all points when there is none).")


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
