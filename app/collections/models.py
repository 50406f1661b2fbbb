"""Plain data of a collection: its config and its points as read back (no pydantic: wire-agnostic)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, get_args

import numpy as np

from app.core.errors import InvalidInput
from app.index.base import Metric
from app.index.payload import FieldType

PointId = int | str
Source = tuple[str, bytes]  # what a point was embedded from: ("text" | "sequence" | "image", UTF-8 or image bytes)

# HNSW defaults, here once: the REST schema and the stored config both take them from these.
DEFAULT_M = 16  # links per node: recall 0.95 at ef≈100 on GloVe 50-d (DESIGN §9)
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_EF = 64
# Bounds of the integer settings, here once: the REST schema and the check of a stored config use them.
MAX_DIM = 8192
LIMITS = {"dim": (1, MAX_DIM), "m": (2, 128), "ef_construction": (4, 4096), "ef": (1, 10_000)}


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
    lexical: dict[str, Any] | None = None  # {"fields": [payload keys], "source": bool}; None: no keyword index
    strict: bool = False  # a filter or facet on a field without a payload index is a 400, not a scan

    @property
    def lexical_fields(self) -> list[str]:
        return list(self.lexical["fields"]) if self.lexical else []

    @property
    def lexical_source(self) -> bool:
        """Whether the text each point was embedded from goes into its keyword index too."""
        return bool(self.lexical and self.lexical.get("source"))

    def with_index(self, key: str, kind: FieldType) -> CollectionConfig:
        """This config with the payload field `key` indexed as `kind` (a 400 for a field the recommendation
        settings read: retyping it would break them)."""
        self._refuse_if_recommendation_field(key, "retyped")
        return replace(self, payload_indexes={**self.payload_indexes, key: kind})

    def without_index(self, key: str) -> CollectionConfig:
        """This config with no payload index on `key` (a 400 when it has none, or the recommendation reads it)."""
        self._refuse_if_recommendation_field(key, "dropped")
        if key not in self.payload_indexes:
            raise InvalidInput(f"payload field '{key}' has no index", field=key)
        return replace(self, payload_indexes={k: v for k, v in self.payload_indexes.items() if k != key})

    def _refuse_if_recommendation_field(self, key: str, change: str) -> None:
        if key in (self.recommendation.get("category_field"), self.recommendation.get("price_field")):
            raise InvalidInput(f"payload index '{key}' feeds the recommendation settings: it cannot be {change}")

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, stored: Any) -> CollectionConfig:
        """A stored config (a collection's database, a snapshot's) checked as strictly as a create: a
        crafted or damaged one is a ValueError that says which field, never a crash later."""
        if not isinstance(stored, dict):
            raise ValueError("the collection config is not an object")
        unknown = set(stored) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"the collection config has unknown fields {sorted(unknown)}")
        config = cls(**stored)
        for name, (low, high) in LIMITS.items():
            value = getattr(config, name)
            if type(value) is not int or not low <= value <= high:
                raise ValueError(f"the collection config's {name} must be an integer from {low} to {high}")
        if config.metric not in get_args(Metric):
            raise ValueError(f"the collection config's metric must be one of {list(get_args(Metric))}")
        if not isinstance(config.name, str) or not all(
            isinstance(f, bool) for f in (config.store_source, config.strict)
        ):
            raise ValueError("the collection config's name must be text, store_source and strict true or false")
        indexes = config.payload_indexes
        if not isinstance(indexes, dict) or not all(
            isinstance(k, str) and v in get_args(FieldType) for k, v in indexes.items()
        ):
            raise ValueError(f"the collection config's payload_indexes must map fields to {list(get_args(FieldType))}")
        if config.embedder is not None and not (
            isinstance(config.embedder, dict) and isinstance(config.embedder.get("kind"), str)
        ):
            raise ValueError("the collection config's embedder must be null or an object with a kind")
        if not isinstance(config.recommendation, dict):
            raise ValueError("the collection config's recommendation must be an object")
        lexical = config.lexical
        if lexical is not None and not (
            isinstance(lexical, dict)
            and set(lexical) == {"fields", "source"}
            and isinstance(lexical["fields"], list)
            and all(isinstance(f, str) for f in lexical["fields"])
            and isinstance(lexical["source"], bool)
        ):
            raise ValueError("the collection config's lexical must be null or {fields: [text], source: bool}")
        return config


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
