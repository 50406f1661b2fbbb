"""Plain data of a search: what to search by and how, and what comes back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.collections.models import PointId


@dataclass(frozen=True)
class Query:
    """Search by exactly one of vector, text, sequence, image (bytes) or id; the rest says how."""

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

    @property
    def needs_embedding(self) -> bool:
        return self.vector is None and self.id is None


@dataclass(frozen=True)
class Hit:
    id: PointId
    score: float
    payload_json: bytes | None = None
    vector: np.ndarray | None = None


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    plan: str
    candidates: int
