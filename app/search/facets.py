"""Facet counts: how many of the points that pass a filter hold each value of a field (a shop's left column)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.collections.view import Catalog
from app.index.payload import FacetValue


@dataclass(frozen=True)
class Facets:
    key: str
    values: list[tuple[FacetValue, int]]  # most frequent first
    candidates: int  # points that passed the filter


def facets(collection: Catalog, key: str, flt: dict[str, Any] | None, limit: int) -> Facets:
    """Counts from the payload index of `key`, or from the payloads when it has none (a 400 if strict)."""
    with collection.reading() as view:
        selected = view.mask(flt)
        return Facets(key, view.facet(key, selected, limit), int(np.count_nonzero(selected)))
