"""Plain data passed between the API and the services (no pydantic: services stay wire-agnostic)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.index.base import Metric
from app.index.payload import FieldType

PointId = int | str
Source = tuple[str, bytes]  # what a point was embedded from: ("text" | "sequence" | "image", UTF-8 or image bytes)


EVENT_TYPES = ("view", "click", "cart", "purchase", "rating")


@dataclass(frozen=True)
class RecommendConfig:
    """How events shape user profiles and popularity."""

    weights: dict[str, float] = field(
        default_factory=lambda: {"view": 0.2, "click": 1.0, "cart": 2.0, "purchase": 4.0, "rating": 2.0}
    )
    half_life_days: float = 30.0  # an interaction this old counts half as much as one just now
    category_field: str | None = "category"  # a keyword payload index: category affinity, top categories
    price_field: str | None = "price"  # a float/integer payload index: price relative to the user's usual

    def weight(self, event_type: str, value: float) -> float:
        """A rating of 5 pulls as hard as weights["rating"], 3 not at all, 1 pushes away."""
        if event_type == "rating":
            return self.weights["rating"] * (value - 3.0) / 2.0
        return self.weights[event_type]


@dataclass(frozen=True)
class CollectionConfig:
    name: str
    dim: int
    metric: Metric = "cosine"
    m: int = 16
    ef_construction: int = 200
    ef: int = 64
    payload_indexes: dict[str, FieldType] = field(default_factory=dict)
    embedder: dict[str, Any] | None = None  # e.g. {"kind": "kmer", "k": 4}; None for raw vectors
    store_source: bool = False  # keep the text/sequence/image each point was embedded from
    recommendation: dict[str, Any] = field(default_factory=dict)  # RecommendConfig's fields; defaults if empty

    def recommend_config(self) -> RecommendConfig:
        return RecommendConfig(**self.recommendation)

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
class Hit:
    id: PointId
    score: float
    payload_json: bytes | None = None
    vector: np.ndarray | None = None


@dataclass(frozen=True)
class Query:
    vector: np.ndarray | None = None
    id: PointId | None = None
    k: int = 10
    ef: int | None = None
    exact: bool = False
    filter: dict[str, Any] | None = None
    score_threshold: float | None = None
    with_payload: bool = True
    with_vector: bool = False


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    plan: str
    candidates: int


@dataclass(frozen=True)
class Page:
    points: list[Point]
    next_offset: int | None
