"""Plain data of a collection: its config and its points as read back (no pydantic: wire-agnostic)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.index.base import Metric
from app.index.payload import FieldType

PointId = int | str
Source = tuple[str, bytes]  # what a point was embedded from: ("text" | "sequence" | "image", UTF-8 or image bytes)

# HNSW defaults, here once: the REST schema and the stored config both take them from these.
DEFAULT_M = 16  # links per node: recall 0.95 at ef≈100 on GloVe 50-d (DESIGN §9)
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_EF = 64


@dataclass(frozen=True)
class CollectionConfig:
    name: str
    dim: int
    metric: Metric = "cosine"
    m: int = DEFAULT_M
    ef_construction: int = DEFAULT_EF_CONSTRUCTION
    ef: int = DEFAULT_EF
    payload_indexes: dict[str, FieldType] = field(default_factory=dict)
    embedder: dict[str, Any] | None = None  # e.g. {"kind": "kmer", "k": 4}; None for raw vectors
    store_source: bool = False  # keep the text/sequence/image each point was embedded from
    recommendation: dict[str, Any] = field(default_factory=dict)  # personalization's settings; defaults if empty

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Point:
    """A stored point as read back; `payload_json` is the stored JSON text, served without re-parsing."""

    id: PointId
    payload_json: bytes | None = None
    vector: np.ndarray | None = None
    source: Source | None = None


@dataclass(frozen=True)
class Page:
    points: list[Point]
    next_offset: int | None
