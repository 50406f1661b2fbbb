"""Collection requests and responses."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.schemas.common import Strict

FieldTypeName = Literal["keyword", "integer", "float", "bool"]


class HnswParams(Strict):
    m: int = Field(16, ge=2, le=128, description="Links per node; more is better recall, more memory.")
    ef_construction: int = Field(200, ge=4, le=4096, description="Beam width while inserting.")
    ef: int = Field(64, ge=1, le=10_000, description="Default beam width while searching.")


class CollectionCreate(Strict):
    dim: int = Field(ge=1, le=8192, description="Vector dimension.")
    metric: Literal["cosine", "ip", "l2"] = Field("cosine", description="cosine, inner product, or Euclidean.")
    hnsw: HnswParams = Field(default_factory=HnswParams, description="Graph parameters.")
    payload_indexes: dict[str, FieldTypeName] = Field(
        default_factory=dict, max_length=64, description="Payload fields to index for filtering, with their type."
    )


class CollectionInfo(Strict):
    name: str
    dim: int
    metric: str
    hnsw: HnswParams
    payload_indexes: dict[str, FieldTypeName]
    count: int = Field(description="Points stored.")
    indexed_count: int = Field(description="Points in the HNSW graph (0 while it is being built).")
    index_state: Literal["building", "ready", "failed"] = Field(
        description="Graph state; exact search serves until ready."
    )
    memory_bytes: int = Field(description="Approximate memory held by vectors, graph and payloads.")
    seq: int = Field(description="Sequence number of the last applied write batch.")


class CollectionList(Strict):
    collections: list[CollectionInfo]
