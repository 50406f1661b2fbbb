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


def added_up(parts: list[Facets], limit: int) -> Facets:
    """The counts of several parts of a collection (its shards) as one: summed per value, the `limit` largest
    first, ties by value as one collection orders them."""
    total: dict[Any, int] = {}
    for part in parts:
        for value, count in part.values:
            total[value] = total.get(value, 0) + count
    ranked = sorted(total.items(), key=lambda item: (-item[1], type(item[0]).__name__, item[0]))
    return Facets(parts[0].key, ranked[:limit], sum(part.candidates for part in parts))
